"""HTML plumbing shared by pages: templates and the signed per-visitor cookie."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.middleware.base import BaseHTTPMiddleware

from app.config import PROJECT_ROOT, Settings, get_settings

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))

VISITOR_COOKIE = "arena_visitor"


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="visitor")


def visitor_id(request: Request, settings: Settings) -> str | None:
    cookie = request.cookies.get(VISITOR_COOKIE)
    if not cookie:
        return None
    try:
        value = _signer(settings).loads(cookie)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


class VisitorCookieMiddleware(BaseHTTPMiddleware):
    """Gives every arena visitor a signed id cookie; routes read it from request.state."""

    async def dispatch(self, request: Request, call_next):
        settings = get_settings()
        existing = visitor_id(request, settings)
        request.state.visitor_id = existing or uuid.uuid4().hex
        response = await call_next(request)
        if existing is None and request.url.path.startswith(("/arena", "/rate")):
            response.set_cookie(
                VISITOR_COOKIE,
                _signer(settings).dumps(request.state.visitor_id),
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="lax",
                secure=settings.environment == "production",
            )
        return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"

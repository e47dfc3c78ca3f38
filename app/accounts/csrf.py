"""CSRF protection for every form: a double-submit token.

Each browser holds a random token in the `arena_csrf` cookie (set on its first request); pages
render it into their forms (a hidden `csrf_token` field) and into base.html's hx-headers, so
htmx sends it as the `X-CSRF-Token` header. A state-changing request to a page route must carry
the same value: another site can make a browser send the cookie, but cannot read it to put it in
the form. The JSON API under /api/ is exempt: it takes the admin token as a bearer header, and
no cookie gives it any right.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import get_settings
from app.errors import Forbidden

CSRF_COOKIE = "arena_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
EXEMPT_PREFIXES = ("/api/",)
NO_COOKIE_PREFIXES = ("/api/", "/static/")  # JSON and files: no form


def _valid(token: str | None) -> bool:
    return bool(token) and len(token) == 43 and token.replace("-", "").replace("_", "").isalnum()


class CsrfCookieMiddleware:
    """Gives every browser its token (request.state.csrf_token), set as a cookie once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        existing = request.cookies.get(CSRF_COOKIE)
        token = existing if _valid(existing) else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        if token == existing or request.url.path.startswith(NO_COOKIE_PREFIXES):
            await self.app(scope, receive, send)
            return
        secure = request.url.scheme == "https" or get_settings().environment == "production"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookie = f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
                headers.append("set-cookie", cookie + ("; Secure" if secure else ""))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def csrf_protect(request: Request) -> None:
    """An app-wide dependency: refuses a state-changing page request without the token."""
    if request.method in SAFE_METHODS or request.url.path.startswith(EXEMPT_PREFIXES):
        return
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not (expected and sent and hmac.compare_digest(expected.encode(), sent.encode())):
        raise Forbidden("this form was not sent from this arena's own page, or the page is "
                        "stale: reload the page and try again")

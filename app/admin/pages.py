"""Admin pages. Logging in with the admin token sets a signed, short-lived cookie; every form
post is also checked for a same-origin Origin header, so another site cannot post for an admin
whose cookie the browser holds."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.config import Settings, get_settings
from app.db.models import Job
from app.deps import SessionDep, SettingsDep
from app.errors import Conflict, Forbidden, Unauthorized
from app.inference import service as inference
from app.jobs import service as jobs
from app.speech_models import service as models
from app.web import is_htmx, templates

router = APIRouter(prefix="/admin", tags=["admin pages"], include_in_schema=False)

ADMIN_COOKIE = "arena_admin"
SESSION_SECONDS = 12 * 3600


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="admin")


def is_admin(request: Request, settings: Settings) -> bool:
    cookie = request.cookies.get(ADMIN_COOKIE)
    if not cookie:
        return False
    try:
        return _signer(settings).loads(cookie, max_age=SESSION_SECONDS) == "admin"
    except BadSignature:
        return False


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("this form can only be sent from the arena's own pages")


def _require_admin(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    if not is_admin(request, settings):
        raise Unauthorized("log in at /admin with the admin token first")
    if request.method == "POST":
        _same_origin(request)


AdminPage = Depends(_require_admin)


def _status(session, settings: Settings) -> dict:
    recent = session.scalars(select(Job).order_by(Job.id.desc()).limit(15)).all()
    return {
        "models": models.read(session, models.list_all(session)),
        "jobs": [jobs.as_json(job) for job in recent],
        "commands_allowed": settings.inference.allow_command_adapter,
    }


@router.get("", response_class=HTMLResponse)
def admin_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    if not is_admin(request, settings):
        return templates.TemplateResponse(request, "admin_login.html", {})
    template = "partials/admin_status.html" if is_htmx(request) else "admin.html"
    return templates.TemplateResponse(request, template, _status(session, settings))


@router.post("/login")
def login(request: Request, settings: SettingsDep,
          token: Annotated[str, Form(max_length=500)] = "") -> Response:
    _same_origin(request)
    expected = settings.admin_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return templates.TemplateResponse(
            request, "admin_login.html", {"error": "That is not the admin token."},
            status_code=401)
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(ADMIN_COOKIE, _signer(settings).dumps("admin"), max_age=SESSION_SECONDS,
                        httponly=True, samesite="strict",
                        secure=settings.environment == "production")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse("/admin", status_code=303)
    response.delete_cookie(ADMIN_COOKIE)
    return response


@router.post("/models/{model_id}/inference", response_class=HTMLResponse,
             dependencies=[AdminPage])
def run_inference(request: Request, model_id: int, session: SessionDep, settings: SettingsDep,
                  retry_failed: Annotated[bool, Form()] = False) -> Response:
    """The page's "Run inference" and "Retry failed" buttons: the same job as the REST call."""
    model = models.get(session, model_id)
    job, response_ids = inference.start_job(session, model, settings, retry_failed=retry_failed)
    try:
        session.commit()
    except IntegrityError as exc:  # a double click: the first job already has these prompts
        raise Conflict("an inference job for this model started at the same moment") from exc
    inference.enqueue(response_ids)
    return templates.TemplateResponse(request, "partials/admin_status.html",
                                      _status(session, settings))

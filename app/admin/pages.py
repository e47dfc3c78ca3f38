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

from app.accounts import identity, quality
from app.accounts import service as accounts
from app.config import Settings, get_settings
from app.db.models import Job
from app.deps import SessionDep, SettingsDep
from app.errors import ArenaError, Conflict, Forbidden, Unauthorized
from app.inference import service as inference
from app.jobs import service as jobs
from app.leaderboard.service import schedule_refresh
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


def _may_administer(request: Request, session, settings: Settings) -> bool:
    """The admin token's cookie, or the session of an account with the admin role."""
    if is_admin(request, settings):
        return True
    account = identity.signed_in(request, session, settings)
    return account is not None and account.role == "admin"


def _require_admin(request: Request, session: SessionDep,
                   settings: Annotated[Settings, Depends(get_settings)]) -> None:
    if not _may_administer(request, session, settings):
        raise Unauthorized("log in at /admin with the admin token, or with an admin account, "
                           "first")
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
    if not _may_administer(request, session, settings):
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
    identity.end_session(response)
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


# --- annotators: accounts, invite links, quality control -------------------------------------


def _annotators(request: Request, session, status_code: int = 200, **extra) -> Response:
    context = {"people": quality.rater_stats(session), "accounts": accounts.list_all(session),
               **extra}
    return templates.TemplateResponse(request, "admin_annotators.html", context,
                                      status_code=status_code)


@router.get("/annotators", response_class=HTMLResponse, dependencies=[AdminPage],
            name="admin_annotators")
def annotators_page(request: Request, session: SessionDep) -> Response:
    return _annotators(request, session)


@router.post("/annotators", response_class=HTMLResponse, dependencies=[AdminPage],
             name="admin_create_annotator")
def create_annotator(request: Request, session: SessionDep, settings: SettingsDep,
                     username: Annotated[str, Form(max_length=200)] = "",
                     role: Annotated[str, Form(max_length=32)] = "annotator") -> Response:
    """Create an account and show its invite link to copy."""
    try:
        annotator = accounts.create(session, username, role)
        token = accounts.new_invite(session, annotator, settings)
    except ArenaError as exc:
        session.rollback()
        return _annotators(request, session, error=exc.message, status_code=exc.status_code)
    session.commit()
    return _annotators(request, session, invite_for=annotator.username,
                       invite_url=_invite_url(request, token))


def _invite_url(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + accounts.invite_path(token)


@router.post("/annotators/{annotator_id}/invite", response_class=HTMLResponse,
             dependencies=[AdminPage], name="admin_invite")
def new_invite(request: Request, annotator_id: int, session: SessionDep,
               settings: SettingsDep) -> Response:
    annotator = accounts.get(session, annotator_id)
    token = accounts.new_invite(session, annotator, settings)
    session.commit()
    return _annotators(request, session, invite_for=annotator.username,
                       invite_url=_invite_url(request, token))


@router.post("/annotators/{annotator_id}/active", dependencies=[AdminPage],
             name="admin_set_active")
def set_active(annotator_id: int, session: SessionDep,
               active: Annotated[bool, Form()] = False) -> Response:
    accounts.update_account(session, accounts.get(session, annotator_id), active=active)
    session.commit()
    return RedirectResponse("/admin/annotators", status_code=303)


@router.post("/raters/{rater_id}/flag", dependencies=[AdminPage], name="admin_set_flag")
def set_flag(rater_id: int, session: SessionDep,
             flagged: Annotated[bool, Form()] = False) -> Response:
    """Flag a person or clear their flag; the leaderboard is recomputed either way."""
    quality.set_flag(session, rater_id, flagged)
    session.commit()
    schedule_refresh(0)
    return RedirectResponse("/admin/annotators", status_code=303)

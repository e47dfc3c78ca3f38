"""Logging in and out: with a password, or with a single-use invite link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts import identity, limits, service
from app.deps import SessionDep, SettingsDep
from app.errors import ArenaError
from app.web import templates

router = APIRouter(tags=["accounts pages"], include_in_schema=False)


def _next_path(next_path: str | None, default: str = "/arena") -> str:
    """Only a path on this site: never another site's address (an open redirect)."""
    if next_path and next_path.startswith("/") and not next_path.startswith(("//", "/\\")):
        return next_path
    return default


def _login_page(request: Request, status_code: int = 200, **context) -> Response:
    return templates.TemplateResponse(request, "login.html", context, status_code=status_code)


@router.get("/login", response_class=HTMLResponse, name="login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next=_next_path(next))


@router.post("/login", name="login_post")
def login(request: Request, session: SessionDep, settings: SettingsDep,
          username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=500)] = "",
          next: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        limits.take_login(request.client.host if request.client else None,
                          settings.accounts.logins_per_minute_per_ip)
        annotator = service.authenticate(session, username, password)
    except ArenaError as exc:
        page = _login_page(request, exc.status_code, error=exc.message, username=username,
                           next=_next_path(next))
        if isinstance(exc, limits.RateLimited):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    session.commit()
    default = "/admin" if annotator.role == "admin" else "/arena"
    response = RedirectResponse(_next_path(next, default), status_code=303)
    identity.start_session(request, response, annotator, settings)
    return response


@router.post("/logout", name="logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    identity.end_session(response)
    return response


@router.get("/invite/{token}", response_class=HTMLResponse, name="invite")
def invite_page(request: Request, token: str, session: SessionDep) -> Response:
    """The invite link: shows who it is for and a button to log in (a GET never uses it up,
    so a link preview cannot spend it)."""
    try:
        invite = service.open_invite(session, token)
    except ArenaError as exc:
        return _login_page(request, exc.status_code, error=exc.message)
    annotator = service.get(session, invite.annotator_id)
    return _login_page(request, invite=token, username=annotator.username,
                       has_password=annotator.password_hash is not None)


@router.post("/invite/{token}", name="invite_post")
def redeem(request: Request, token: str, session: SessionDep, settings: SettingsDep,
           password: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        annotator = service.redeem_invite(session, token, password or None)
    except ArenaError as exc:
        session.rollback()
        return _login_page(request, exc.status_code, error=exc.message, invite=token)
    session.commit()
    response = RedirectResponse("/admin" if annotator.role == "admin" else "/arena",
                                status_code=303)
    identity.start_session(request, response, annotator, settings)
    return response

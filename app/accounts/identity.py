"""Who is asking: an annotator signed in with a session cookie, or (in an open deployment) an
anonymous visitor under the signed per-visitor cookie. Either way, votes are keyed by a Rater.

The session cookie holds the account's id and session version, signed and timed; bumping the
version (deactivating the account, changing its password) logs out every session signed before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.arena.service import human_rater
from app.config import Settings
from app.db.models import Annotator, Rater
from app.deps import SessionDep, SettingsDep
from app.errors import Unauthorized

SESSION_COOKIE = "arena_session"


class LoginRequired(Unauthorized):
    """Raised on pages of a closed deployment; a page request is sent to /login instead."""

    code = "login_required"


@dataclass(frozen=True)
class Identity:
    rater: Rater
    annotator: Annotator | None = None  # None: an anonymous visitor

    @property
    def is_admin(self) -> bool:
        return self.annotator is not None and self.annotator.role == "admin"


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="annotator-session")


def secure_cookies(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.environment == "production"


def start_session(request: Request, response: Response, annotator: Annotator,
                  settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE, _signer(settings).dumps([annotator.id, annotator.session_version]),
        max_age=int(settings.accounts.session_hours * 3600), httponly=True, samesite="lax",
        secure=secure_cookies(request, settings),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)


def signed_in(request: Request, session: Session, settings: Settings) -> Annotator | None:
    """The active account whose current session cookie the request carries, if any."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        value = _signer(settings).loads(cookie, max_age=settings.accounts.session_hours * 3600)
        annotator_id, version = value
    except (BadSignature, TypeError, ValueError):
        return None
    annotator = session.scalars(select(Annotator).where(Annotator.id == annotator_id)).first()
    if annotator is None or not annotator.active or annotator.session_version != version:
        return None
    return annotator


def current_identity(request: Request, session: SessionDep, settings: SettingsDep) -> Identity:
    """The one identity dependency of the pages people vote and rate on."""
    annotator = signed_in(request, session, settings)
    if annotator is not None:
        return Identity(annotator.rater, annotator)
    if settings.accounts.mode == "closed":
        raise LoginRequired("this arena is for annotators with an account: log in at /login")
    return Identity(human_rater(session, "visitor:" + request.state.visitor_id))


def current_rater(identity: Annotated[Identity, Depends(current_identity)]) -> Rater:
    return identity.rater


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
CurrentRater = Annotated[Rater, Depends(current_rater)]

"""Annotator accounts: creating them, invite links, passwords (argon2), logging in."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.arena.service import human_rater
from app.config import Settings
from app.db.base import utcnow
from app.db.models import ANNOTATOR_ROLES, Annotator, AnnotatorInvite
from app.errors import Conflict, InvalidInput, NotFound, Unauthorized

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
_hasher = PasswordHasher()
# Checked against when the username is unknown, so that a wrong name takes as long as a wrong
# password and the reply's timing does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def rater_name(username: str) -> str:
    return "annotator:" + username


def clean_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput("a username is 2 to 64 characters: lowercase letters, digits, '.', "
                           "'_' or '-', starting with a letter or digit")
    return name


def _check_role(role: str) -> str:
    if role not in ANNOTATOR_ROLES:
        raise InvalidInput(f"role must be one of: {', '.join(ANNOTATOR_ROLES)}")
    return role


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return _hasher.hash(password)


def create(session: Session, username: str, role: str = "annotator",
           password: str | None = None) -> Annotator:
    name = clean_username(username)
    _check_role(role)
    password_hash = hash_password(password) if password else None
    if session.scalar(select(Annotator.id).where(Annotator.username == name)) is not None:
        raise Conflict(f"an annotator named {name!r} already exists")
    annotator = Annotator(username=name, role=role, password_hash=password_hash,
                          rater_id=human_rater(session, rater_name(name)).id, created_at=utcnow())
    session.add(annotator)
    try:
        session.flush()
    except IntegrityError as exc:  # created by someone else at the same moment
        session.rollback()
        raise Conflict(f"an annotator named {name!r} already exists") from exc
    return annotator


def get(session: Session, annotator_id: int) -> Annotator:
    annotator = session.get(Annotator, annotator_id)
    if annotator is None:
        raise NotFound(f"no annotator with id {annotator_id}")
    return annotator


def list_all(session: Session) -> list[Annotator]:
    return list(session.scalars(select(Annotator).order_by(Annotator.username)))


def update_account(session: Session, annotator: Annotator, *, role: str | None = None,
                   active: bool | None = None, password: str | None = None) -> Annotator:
    """Change the role, (de)activate, or set a password. Deactivating or a new password logs
    out the account's sessions."""
    if role is not None:
        annotator.role = _check_role(role)
    if password is not None:
        annotator.password_hash = hash_password(password)
        annotator.session_version += 1
    if active is not None and active != annotator.active:
        annotator.active = active
        if not active:
            annotator.session_version += 1
    session.flush()
    return annotator


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_invite(session: Session, annotator: Annotator, settings: Settings) -> str:
    """A single-use login link's token; only its hash is stored."""
    if not annotator.active:
        raise Conflict("this account is deactivated: activate it before inviting")
    token = secrets.token_urlsafe(32)
    session.add(AnnotatorInvite(
        annotator_id=annotator.id, token_hash=_token_hash(token), created_at=utcnow(),
        expires_at=utcnow() + timedelta(hours=settings.accounts.invite_hours)))
    session.flush()
    return token


def invite_path(token: str) -> str:
    return f"/invite/{token}"


def open_invite(session: Session, token: str) -> AnnotatorInvite:
    """The unused, unexpired invite behind a token (not yet redeemed)."""
    invite = session.scalars(
        select(AnnotatorInvite).where(AnnotatorInvite.token_hash == _token_hash(token))).first()
    if invite is None:
        raise NotFound("this invite link is not valid: ask an admin for a new one")
    if invite.used_at is not None:
        raise Conflict("this invite link has already been used: log in with your password, "
                       "or ask an admin for a new link")
    if invite.expires_at < utcnow():
        raise Conflict("this invite link has expired: ask an admin for a new one")
    return invite


def redeem_invite(session: Session, token: str, password: str | None) -> Annotator:
    """Use up an invite (once, even under concurrency) and return its account, setting the
    password when one is given."""
    invite = open_invite(session, token)
    annotator = session.get(Annotator, invite.annotator_id)
    if annotator is None or not annotator.active:
        raise Unauthorized("this account is deactivated")
    if password:
        hashed = hash_password(password)  # checked before the invite is used up
    used = session.execute(
        update(AnnotatorInvite)
        .where(AnnotatorInvite.id == invite.id, AnnotatorInvite.used_at.is_(None))
        .values(used_at=utcnow()).returning(AnnotatorInvite.id)).first()
    if used is None:
        raise Conflict("this invite link has already been used")
    if password:
        annotator.password_hash = hashed
        annotator.session_version += 1
    annotator.last_login_at = utcnow()
    session.flush()
    return annotator


def authenticate(session: Session, username: str, password: str) -> Annotator:
    failure = Unauthorized("the username or the password is wrong")
    annotator = session.scalars(
        select(Annotator).where(Annotator.username == username.strip().lower())).first()
    stored = annotator.password_hash if annotator is not None else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if annotator is None or stored is None:
        raise failure
    if not annotator.active:
        raise Unauthorized("this account is deactivated")
    if _hasher.check_needs_rehash(stored):
        annotator.password_hash = _hasher.hash(password)
    annotator.last_login_at = utcnow()
    session.flush()
    return annotator


def as_json(annotator: Annotator) -> dict:
    return {
        "id": annotator.id,
        "username": annotator.username,
        "role": annotator.role,
        "active": annotator.active,
        "has_password": annotator.password_hash is not None,
        "rater_id": annotator.rater_id,
        "created_at": annotator.created_at.isoformat(),
        "last_login_at": annotator.last_login_at.isoformat() if annotator.last_login_at else None,
    }

"""Admin JSON for annotator accounts, invite links, and the people's quality statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.accounts import quality, service
from app.accounts.schemas import AnnotatorCreate, AnnotatorUpdate, FlagUpdate
from app.deps import AdminAuth, SessionDep, SettingsDep
from app.leaderboard.service import schedule_refresh

router = APIRouter(prefix="/api/v1/annotators", tags=["annotators"], dependencies=[AdminAuth])
raters_router = APIRouter(prefix="/api/v1/raters", tags=["annotators"],
                          dependencies=[AdminAuth])


def _with_invite(request: Request, annotator, token: str) -> dict[str, Any]:
    return {**service.as_json(annotator),
            "invite_url": str(request.base_url).rstrip("/") + service.invite_path(token)}


@router.post("", status_code=201)
def create_annotator(request: Request, body: AnnotatorCreate, session: SessionDep,
                     settings: SettingsDep) -> dict[str, Any]:
    """Create an account and a single-use invite link to send to its person."""
    annotator = service.create(session, body.username, body.role, body.password)
    token = service.new_invite(session, annotator, settings)
    session.commit()
    return _with_invite(request, annotator, token)


@router.get("")
def list_annotators(session: SessionDep) -> list[dict[str, Any]]:
    return [service.as_json(a) for a in service.list_all(session)]


@router.patch("/{annotator_id}")
def update_annotator(annotator_id: int, body: AnnotatorUpdate,
                     session: SessionDep) -> dict[str, Any]:
    """Change the role, deactivate or reactivate, or set a password (deactivating and a new
    password log out the account's sessions)."""
    annotator = service.update_account(session, service.get(session, annotator_id),
                                       role=body.role, active=body.active, password=body.password)
    session.commit()
    return service.as_json(annotator)


@router.post("/{annotator_id}/invites", status_code=201)
def invite(request: Request, annotator_id: int, session: SessionDep,
           settings: SettingsDep) -> dict[str, Any]:
    """A new single-use invite link for an account (earlier unused links stay valid until
    they expire)."""
    annotator = service.get(session, annotator_id)
    token = service.new_invite(session, annotator, settings)
    session.commit()
    return _with_invite(request, annotator, token)


@raters_router.get("/quality")
def rater_quality(session: SessionDep) -> list[dict[str, Any]]:
    """Per person with an account or a vote: votes, median listening time (s), left-side rate,
    agreement with the other people's majority, attention-check accuracy, and the flag."""
    return quality.rater_stats(session)


@raters_router.put("/{rater_id}/flag")
def set_flag(rater_id: int, body: FlagUpdate, session: SessionDep,
             settings: SettingsDep) -> dict[str, Any]:
    """Flag a person (their votes leave the leaderboard) or clear the flag (they come back):
    the leaderboard is recomputed."""
    rater = quality.set_flag(session, rater_id, body.flagged)
    session.commit()
    schedule_refresh(0)
    return {"rater_id": rater.id, "flagged": rater.flagged_at is not None,
            "flag_reason": rater.flag_reason}

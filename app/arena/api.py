"""Admin JSON for the arena: broken-clip reports and the play log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.arena import plays
from app.deps import AdminAuth, SessionDep

router = APIRouter(prefix="/api/v1/arena", tags=["arena"], dependencies=[AdminAuth])


@router.get("/reports")
def list_reports(session: SessionDep,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Clips people reported as broken, newest first: the battle, who reported it and when,
    which clip (prompt, a or b), their note, the prompt's key, and the answer's id and model."""
    return plays.reports(session, limit)


@router.get("/plays")
def list_plays(session: SessionDep, rater_id: int | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """How people listened to the battles served to them, newest first: per battle its status
    (voted, skipped, reported, abandoned once expired without an ending, or open), the share of
    each clip heard and whether it reached its end, seconds listened, and the time to vote."""
    return plays.log(session, rater_id=rater_id, limit=limit)

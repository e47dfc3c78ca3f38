from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from app.db.models import Job
from app.deps import AdminAuth, SessionDep
from app.leaderboard import service

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])


@router.get("/leaderboard")
def get_leaderboard(session: SessionDep) -> dict[str, Any]:
    """Every model with the S2S-Arena paper's online Elo (init 1000, K = 32, votes in log
    order), wins, losses, ties, matches and win rate, from the latest snapshot."""
    snapshot = service.latest(session)
    session.commit()
    return service.as_json(snapshot)


@router.post("/leaderboard/recompute", status_code=status.HTTP_202_ACCEPTED,
             dependencies=[AdminAuth])
def recompute(session: SessionDep) -> dict[str, Any]:
    """Recompute the leaderboard from the whole log now, and return the new snapshot."""
    snapshot = service.compute_elo(session)
    session.commit()
    return service.as_json(snapshot)


@router.get("/jobs/{job_id}", dependencies=[AdminAuth])
def get_job(job_id: int, session: SessionDep) -> dict[str, Any]:
    from app.errors import NotFound

    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "total": job.total,
        "done": job.done, "failed": job.failed, "pending": job.total - job.done - job.failed,
        "errors": job.errors, "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }

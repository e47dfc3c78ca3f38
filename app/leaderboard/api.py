from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from app.deps import AdminAuth, SessionDep
from app.jobs import service as jobs
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
def recompute(session: SessionDep) -> dict[str, int]:
    """Recompute the leaderboard from the whole vote log in a worker; follow the job at
    GET /api/v1/jobs/{job_id}."""
    job = jobs.create(session, "leaderboard_recompute", total=1)
    session.commit()
    service.enqueue_recompute(job.id)
    return {"job_id": job.id}

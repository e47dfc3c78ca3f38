from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from app.deps import AdminAuth, SessionDep, SettingsDep
from app.jobs import service as jobs
from app.leaderboard import service
from app.leaderboard.service import Slice

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])


def slice_filter(
    domain: Annotated[str | None, Query(description="education, social companionship, ...")] = None,
    level: Annotated[str | None, Query(description="L1, L2, L3 or L4")] = None,
    task: str | None = None,
    language: str | None = None,
    dataset: str | None = None,
    rater: Annotated[str, Query(description='"all", "human", or the name of a judge')] = "all",
) -> Slice:
    return service.parse_slice(domain=domain, level=level, task=task, language=language,
                               dataset=dataset, rater=rater)


SliceDep = Annotated[Slice, Depends(slice_filter)]


@router.get("/leaderboard")
def get_leaderboard(session: SessionDep, settings: SettingsDep, chosen: SliceDep) -> dict[str, Any]:
    """The leaderboard of a slice of the log: per model the Bradley–Terry rating with its 95%
    bootstrap interval and Rank (UB), the S2S-Arena paper's online Elo (init 1000, K = 32, votes
    in log order), wins, losses, ties, matches, win rate and whether it is provisional; the
    pairwise win-rate and battle-count matrices; whether the comparison graph is connected; and
    the ranking's bootstrap stability (Spearman mean ± sd)."""
    snapshot = service.latest(session, chosen, settings.leaderboard)
    session.commit()
    return service.as_json(snapshot, chosen)


@router.post("/leaderboard/recompute", status_code=status.HTTP_202_ACCEPTED,
             dependencies=[AdminAuth])
def recompute(session: SessionDep) -> dict[str, int]:
    """Recompute every standard slice from the whole vote log in a worker; follow the job at
    GET /api/v1/jobs/{job_id}."""
    job = jobs.create(session, "leaderboard_recompute", total=1)
    session.commit()
    service.enqueue_recompute(job.id)
    return {"job_id": job.id}

from __future__ import annotations

from app.config import get_settings
from app.db.models import Job
from app.db.session import session_scope
from app.leaderboard import service
from app.redis_client import get_redis
from workers.celery_app import celery_app


@celery_app.task(name="leaderboard.refresh")
def refresh() -> int:
    """Recompute the standard slices from the vote log (debounced after votes)."""
    get_redis().delete(service.REFRESH_PENDING_KEY)  # votes after this point schedule anew
    with session_scope() as session:
        snapshots = service.compute(session, service.standard_slices(session),
                                    get_settings().leaderboard)
        return snapshots[0].max_vote_id


@celery_app.task(name="leaderboard.recompute")
def recompute(job_id: int) -> None:
    """The same recompute, asked for over REST and followed as a job."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.status in ("done", "failed"):
            return
        job.status = "running"
    try:
        with session_scope() as session:
            snapshots = service.compute(session, service.standard_slices(session),
                                        get_settings().leaderboard)
            job = session.get(Job, job_id)
            job.status, job.done = "done", 1
            job.params = {**job.params, "max_vote_id": snapshots[0].max_vote_id,
                          "slices": [s.slice_key for s in snapshots]}
    except Exception as exc:
        with session_scope() as session:
            job = session.get(Job, job_id)
            job.status, job.failed = "failed", 1
            job.errors = [f"{type(exc).__name__}: {exc}"]
        raise

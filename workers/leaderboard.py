from __future__ import annotations

from app.db.models import Job
from app.db.session import session_scope
from app.leaderboard import service
from app.redis_client import get_redis
from workers.celery_app import celery_app


@celery_app.task(name="leaderboard.refresh")
def refresh() -> int:
    """Recompute the leaderboard from the vote log and store a snapshot (debounced after votes)."""
    get_redis().delete(service.REFRESH_PENDING_KEY)  # votes after this point schedule anew
    with session_scope() as session:
        return service.compute_elo(session).max_vote_id


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
            snapshot = service.compute_elo(session)
            job = session.get(Job, job_id)
            job.status, job.done = "done", 1
            job.params = {**job.params, "max_vote_id": snapshot.max_vote_id}
    except Exception as exc:
        with session_scope() as session:
            job = session.get(Job, job_id)
            job.status, job.failed = "failed", 1
            job.errors = [f"{type(exc).__name__}: {exc}"]
        raise

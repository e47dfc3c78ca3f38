from __future__ import annotations

from app.db.session import session_scope
from app.leaderboard import service
from app.redis_client import get_redis
from workers.celery_app import celery_app


@celery_app.task(name="leaderboard.refresh")
def refresh() -> int:
    """Recompute the leaderboard from the vote log and store a snapshot."""
    get_redis().delete(service.REFRESH_PENDING_KEY)  # votes after this point schedule anew
    with session_scope() as session:
        return service.compute_elo(session).max_vote_id

"""The Celery application: Redis broker, one queue per kind of work."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from app.config import get_settings

settings = get_settings()

celery_app = Celery("s2s_arena", broker=settings.redis_url,
                    include=["workers.leaderboard", "workers.inference", "workers.judging"])
celery_app.conf.update(
    task_default_queue="default",
    task_routes={"leaderboard.*": {"queue": "leaderboard"}, "inference.*": {"queue": "inference"},
                 "judging.*": {"queue": "judging"}},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """Each forked worker process builds its own database engine and Redis client."""
    from app.db.session import dispose_engine
    from app.redis_client import reset_redis

    dispose_engine()
    reset_redis()


# A task that meets a database error (a connection lost when Postgres restarted, say) runs
# again after a backoff; its claim and lease make a second run safe.
DATABASE_RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 10,
}

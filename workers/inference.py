"""The inference queue: one task per (prompt, model) response row, and the recovery of tasks
the broker lost."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from app.config import get_settings
from app.db.session import autocommit
from app.inference import runner, service
from workers.celery_app import DATABASE_RETRY, celery_app

log = logging.getLogger(__name__)
QUEUE = "inference"


@celery_app.task(name="inference.generate", bind=True, **DATABASE_RETRY)
def generate(self, response_id: int, attempt: int = 0) -> str:
    """Fill in one model's answer to one prompt (see app.inference.runner)."""

    def again(countdown: float, next_attempt: int) -> None:
        self.apply_async(args=[response_id, next_attempt], countdown=max(countdown, 0.0),
                         queue=QUEUE)

    return runner.run(response_id, attempt, again)


def recover_lost() -> int:
    """Queue again the task of every response whose task was lost: a message the broker
    dropped (Redis flushed or restarted without its data, say) or a worker that vanished with
    it. Safe beside the lost task's own redelivery: whichever comes second finds the response
    claimed or finished (app/inference/service.py). Returns how many were queued."""
    with autocommit() as conn:
        lost = service.take_back_lost(conn, get_settings().inference.lost_after_s)
    if lost:
        ids, attempts = zip(*lost)
        service.enqueue(list(ids), list(attempts))
        log.warning("queued again the lost inference tasks of %s responses: %s", len(ids),
                    ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else ""))
    return len(lost)


_stop = threading.Event()


def _recovering() -> None:
    while not _stop.wait(get_settings().inference.recovery_interval_s):
        try:
            recover_lost()
        except Exception:  # the database away for a moment: look again next time
            log.exception("looking for lost inference tasks failed")


@worker_ready.connect
def _start_recovery(sender=None, **_: object) -> None:
    """A worker that consumes the inference queue looks for lost tasks on a timer of its own
    (no scheduler process needed); several such workers at once are harmless."""
    queues = {queue.name for queue in celery_app.amqp.queues.consume_from.values()}
    if QUEUE in queues:
        _stop.clear()
        threading.Thread(target=_recovering, name="inference-recovery", daemon=True).start()


@worker_shutdown.connect
def _stop_recovery(**_: object) -> None:
    _stop.set()

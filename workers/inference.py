"""The inference queue: one task per (prompt, model) response row."""

from __future__ import annotations

from app.inference import runner
from workers.celery_app import DATABASE_RETRY, celery_app


@celery_app.task(name="inference.generate", bind=True, **DATABASE_RETRY)
def generate(self, response_id: int, attempt: int = 0) -> str:
    """Fill in one model's answer to one prompt (see app.inference.runner)."""

    def again(countdown: float, next_attempt: int) -> None:
        self.apply_async(args=[response_id, next_attempt], countdown=max(countdown, 0.0),
                         queue="inference")

    return runner.run(response_id, attempt, again)

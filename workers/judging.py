"""The judging queue: one task per battle served to an automatic judge."""

from __future__ import annotations

from app.judges import runner
from workers.celery_app import DATABASE_RETRY, celery_app


@celery_app.task(name="judging.judge", bind=True, **DATABASE_RETRY)
def judge(self, judgement_id: int, attempt: int = 0) -> str:
    """Have the judge vote on one battle (see app.judges.runner)."""

    def again(countdown: float, next_attempt: int) -> None:
        self.apply_async(args=[judgement_id, next_attempt], countdown=max(countdown, 0.0),
                         queue="judging")

    return runner.run(judgement_id, attempt, again)


@celery_app.task(name="judging.score", bind=True, **DATABASE_RETRY)
def score(self, score_id: int, attempt: int = 0) -> str:
    """Have a pointwise judge score one response (see app.judges.runner)."""

    def again(countdown: float, next_attempt: int) -> None:
        self.apply_async(args=[score_id, next_attempt], countdown=max(countdown, 0.0),
                         queue="judging")

    return runner.run_score(score_id, attempt, again)

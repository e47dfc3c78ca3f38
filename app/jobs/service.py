"""Jobs: long batches (imports, inference, judging runs, recomputes) and their progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Job
from app.errors import NotFound


def create(session: Session, kind: str, *, total: int, params: dict[str, Any] | None = None) -> Job:
    job = Job(kind=kind, status="pending", total=total, params=params or {}, errors=[])
    session.add(job)
    session.flush()
    return job


def counted_cte(error_entry: str) -> str:
    """The SQL of a CTE `counted` that counts one finished item in its job, for statements
    whose CTE `finished` returns the item's `job_id`. Parameters: :ok (1 done, 0 failed),
    :cap (most errors kept), :error; `error_entry` is the SQL of the jsonb error entry. The job
    is done when every item is counted, and failed when none succeeded."""
    return f"""counted AS (
    UPDATE jobs SET
        done = done + :ok,
        failed = failed + 1 - :ok,
        status = CASE WHEN done + failed + 1 >= total
                      THEN (CASE WHEN done + :ok > 0 THEN 'done' ELSE 'failed' END)
                      ELSE 'running' END,
        errors = CASE WHEN :ok = 1 OR jsonb_array_length(errors) >= :cap THEN errors
                      ELSE errors || jsonb_build_array({error_entry}) END,
        updated_at = now()
    WHERE id = (SELECT job_id FROM finished)
)"""


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def as_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "pending": max(job.total - job.done - job.failed, 0),
        "errors": job.errors,
        "params": job.params,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }

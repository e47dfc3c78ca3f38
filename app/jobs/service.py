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

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import AdminAuth, SessionDep
from app.jobs import service

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], dependencies=[AdminAuth])


@router.get("/{job_id}")
def get_job(job_id: int, session: SessionDep) -> dict[str, Any]:
    """A job's progress: status (pending, running, done, failed), total, done, failed, pending,
    and the errors of the items that failed."""
    return service.as_json(service.get(session, job_id))

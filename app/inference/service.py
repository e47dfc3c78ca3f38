"""Inference jobs and the life of one response row while a task works on it.

A response row is the unit of work: one per (prompt, model), created "pending" when a job asks
for it. A task claims it by writing a fresh claim token with a lease; only the holder of that
token can finish it, so a task redelivered after its worker died neither writes twice nor
waits forever (the lease runs out). The job's counters move in the same transaction as the
row's final state, so each response is counted once whatever the redeliveries.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, exists, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.base import utcnow
from app.db.models import Job, Prompt, Response, SpeechModel
from app.errors import Conflict, InvalidInput
from app.inference.configs import AdapterConfig
from app.jobs import claims
from app.jobs import service as jobs

MAX_JOB_ERRORS = 100
_adapter_config = TypeAdapter(AdapterConfig)


def parse_adapter(data: dict[str, Any]) -> Any:
    """The validated config of a stored adapter dict."""
    return _adapter_config.validate_python(data)


def check_runnable(model: SpeechModel, settings: Settings) -> Any:
    """The model's adapter config, or a clear refusal when the arena cannot call it."""
    config = parse_adapter(model.adapter)
    if config.kind == "upload":
        raise Conflict(
            f"model {model.name!r} has no inference adapter (its adapter kind is \"upload\"): "
            "upload its responses, or PATCH it with an adapter first"
        )
    if not model.active:
        raise Conflict(f"model {model.name!r} is inactive; activate it before running inference")
    if config.kind == "command" and not settings.inference.allow_command_adapter:
        raise Conflict(
            "the \"command\" adapter runs programs on the workers and is switched off; set "
            "ARENA_INFERENCE__ALLOW_COMMAND_ADAPTER=true to allow it"
        )
    return config


def start_job(session: Session, model: SpeechModel, settings: Settings, *,
              retry_failed: bool = False,
              prompt_keys: list[str] | None = None) -> tuple[Job, list[int]]:
    """Create the job and its pending response rows; the caller commits, then enqueues.

    Covers every active prompt without a response from this model, and with `retry_failed`
    those whose response failed. `prompt_keys` narrows both to the named prompts.
    """
    config = check_runnable(model, settings)
    wanted = [Prompt.active]
    if prompt_keys is not None:
        known = set(session.scalars(select(Prompt.key).where(Prompt.key.in_(prompt_keys),
                                                             Prompt.active)))
        if unknown := [key for key in prompt_keys if key not in known]:
            raise InvalidInput(f"no active prompt with id: {', '.join(unknown)}")
        wanted.append(Prompt.key.in_(prompt_keys))
    job = jobs.create(session, "inference", total=0,
                      params={"model_id": model.id, "model": model.name, "adapter": config.kind})
    unanswered = select(Prompt.id, literal(model.id), literal("pending"), literal(config.kind),
                        literal(job.id), literal(0), func.now()).where(
        *wanted, ~exists().where(Response.prompt_id == Prompt.id, Response.model_id == model.id))
    ids = list(session.scalars(
        insert(Response)
        .from_select(["prompt_id", "model_id", "status", "source", "job_id", "attempts",
                      "created_at"], unanswered)
        .returning(Response.id)
    ))
    if retry_failed:
        ids += session.scalars(
            update(Response)
            .where(Response.model_id == model.id, Response.status == "failed",
                   Response.prompt_id.in_(select(Prompt.id).where(*wanted)))
            .values(status="pending", job_id=job.id, attempts=0, source=config.kind)
            .returning(Response.id)
        ).all()
    job.total = len(ids)
    if not ids:
        job.status = "done"
    session.flush()
    return job, ids


def enqueue(response_ids: list[int], attempts: list[int] | None = None) -> None:
    """Queue a task per response; `attempts`: the attempts each has made already (none)."""
    from workers.celery_app import celery_app

    for response_id, attempt in zip(response_ids, attempts or [0] * len(response_ids)):
        celery_app.send_task("inference.generate", args=[response_id, attempt],
                             queue="inference")


# --- one response, as a task works on it --------------------------------------------------
# Each step is one statement (data-modifying CTEs), so a task costs two short transactions:
# claim-and-read, then finish-and-count.

_CLAIM = text("""
WITH claimed AS (
    UPDATE responses SET status = 'running', claim_token = :token,
        claimed_until = now() + make_interval(secs => :margin + COALESCE(
            (SELECT (adapter->>'timeout_s')::float FROM speech_models
             WHERE speech_models.id = responses.model_id), 120))
    WHERE id = :id
      AND (status = 'pending' OR (status = 'running' AND claimed_until < now()))
    RETURNING id, job_id, model_id, prompt_id
), started AS (
    UPDATE jobs SET status = 'running', updated_at = now()
    WHERE id = (SELECT job_id FROM claimed) AND status = 'pending'
)
SELECT c.id AS response_id, c.job_id, m.id AS model_id, m.name AS model_name, m.adapter,
       m.updated_at, m.input_sample_rate, m.outage_since, m.outage_probe_at,
       p.key AS prompt_key, p.text AS prompt_text, p.audio_key AS prompt_audio_key
FROM claimed c JOIN speech_models m ON m.id = c.model_id JOIN prompts p ON p.id = c.prompt_id
""")


@dataclass(frozen=True)
class Claimed:
    """A claimed response row with what the task needs to know about its model and prompt."""

    token: str
    response_id: int
    job_id: int | None
    model_id: int
    model_name: str
    adapter: dict
    updated_at: datetime
    input_sample_rate: int
    outage_since: datetime | None
    outage_probe_at: datetime | None
    prompt_key: str
    prompt_text: str
    prompt_audio_key: str


def claim(conn: Connection, response_id: int, margin_s: float) -> Claimed | None:
    """Take the row for this task: a fresh token when it was pending, or when the task that
    held it let its lease (the adapter's timeout plus `margin_s`) run out because its worker
    died. None when someone else holds it or it is finished."""
    token = secrets.token_hex(16)
    row = conn.execute(_CLAIM, {"id": response_id, "token": token,
                                "margin": margin_s}).one_or_none()
    return None if row is None else Claimed(token, *row)


_FINISH = """
WITH finished AS (
    UPDATE responses SET {assignments}, claim_token = NULL, claimed_until = NULL,
        attempts = :attempt + 1, updated_at = now()
    WHERE id = :id AND claim_token = :token
    RETURNING job_id, prompt_id
), {counted}
SELECT count(*) FROM finished
"""
_COUNTED = jobs.counted_cte(
    "jsonb_build_object('prompt_id', (SELECT key FROM prompts WHERE id = "
    "(SELECT prompt_id FROM finished)), 'error', CAST(:error AS text))")
_READY = text(_FINISH.format(counted=_COUNTED, assignments=(
    "status = 'ready', error = NULL, audio_key = :audio_key, duration_s = :duration_s, "
    "transcript = :transcript, model_version = :model_version, latency_ms = :latency_ms, "
    "usage = CAST(:usage AS jsonb)")))
_FAILED = text(_FINISH.format(counted=_COUNTED, assignments="status = 'failed', error = :error"))


def finish_ready(conn: Connection, claimed: Claimed, *, attempt: int, audio_key: str,
                 duration_s: float, transcript: str | None, model_version: str | None,
                 latency_ms: float, usage: dict | None) -> bool:
    """Store the answer and count it in its job, if this task still holds the claim."""
    return bool(conn.execute(_READY, {
        "id": claimed.response_id, "token": claimed.token, "attempt": attempt, "ok": 1,
        "cap": MAX_JOB_ERRORS, "error": None, "audio_key": audio_key,
        "duration_s": duration_s, "transcript": transcript, "model_version": model_version,
        "latency_ms": latency_ms, "usage": json.dumps(usage) if usage else None,
    }).scalar())


def finish_failed(conn: Connection, claimed: Claimed, *, attempt: int, error: str) -> bool:
    """Mark the response failed with its reason and count it, if this task holds the claim."""
    return bool(conn.execute(_FAILED, {
        "id": claimed.response_id, "token": claimed.token, "attempt": attempt, "ok": 0,
        "cap": MAX_JOB_ERRORS, "error": error,
    }).scalar())


def lease_left(conn: Connection, response_id: int) -> tuple[str | None, float]:
    return claims.lease_left(conn, "responses", response_id)


def release(conn: Connection, claimed: Claimed, *, due_in: float, error: str | None = None,
            attempt: int | None = None) -> bool:
    return claims.release(conn, "responses", claimed.response_id, claimed.token, error=error,
                          attempt=attempt, due_in=due_in)


def take_back_lost(conn: Connection, lost_after_s: float) -> list[tuple[int, int]]:
    """Responses whose task was lost (see app/jobs/claims.py): (id, attempts made) of each."""
    return claims.take_back_lost(conn, "responses", lost_after_s)


# --- the outage breaker ---------------------------------------------------------------------


def open_outage(conn: Connection, model_id: int, reason: str, cooldown_s: float) -> bool:
    return conn.execute(text(
        "UPDATE speech_models SET outage_since = now(), outage_reason = :reason, "
        "outage_probe_at = now() + make_interval(secs => :cooldown) "
        "WHERE id = :id AND outage_since IS NULL RETURNING id"
    ), {"id": model_id, "reason": reason, "cooldown": cooldown_s}).one_or_none() is not None


def postpone_probe(conn: Connection, model_id: int, reason: str, cooldown_s: float) -> None:
    conn.execute(text(
        "UPDATE speech_models SET outage_reason = :reason, "
        "outage_probe_at = now() + make_interval(secs => :cooldown) "
        "WHERE id = :id AND outage_since IS NOT NULL"
    ), {"id": model_id, "reason": reason, "cooldown": cooldown_s})


def close_outage(conn: Connection, model_id: int) -> bool:
    return conn.execute(text(
        "UPDATE speech_models SET outage_since = NULL, outage_reason = NULL, "
        "outage_probe_at = NULL WHERE id = :id AND outage_since IS NOT NULL RETURNING id"
    ), {"id": model_id}).one_or_none() is not None


def seconds_until(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return max((moment - utcnow()).total_seconds(), 0.0)

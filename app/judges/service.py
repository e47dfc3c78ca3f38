"""Judges as raters: creating them, starting runs over battles, and each judgement's life.

A run serves battles to the judge's own rater exactly as the arena serves them to people (the
same pairing strategy, sides at random) and queues one judgement per battle. A judgement, like
an inference response row, is claimed with a fencing token and a lease; its vote (if any) and
its job's count are written in the same statement that finishes it, so a redelivered task
never votes twice.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from app.arena import service as arena
from app.config import Settings
from app.db.models import Judge, Judgement, Rater, Score
from app.errors import Conflict, NotFound
from app.jobs import claims
from app.jobs import service as jobs
from app.judges.agreement import first_position_rate
from app.judges.configs import JudgeConfig

MAX_JOB_ERRORS = 100
JUDGE_BATTLE_DAYS = 30  # a judge's battle waits in its queue; it does not expire like a person's
_config = TypeAdapter(JudgeConfig)


def parse_config(data: dict[str, Any]) -> Any:
    return _config.validate_python(data)


def create(session: Session, config: Any) -> Judge:
    """A judge and the rater its votes are cast under (kind "judge", the judge's name)."""
    if session.scalar(select(Judge.id).where(Judge.name == config.name)):
        raise Conflict(f"a judge named {config.name!r} already exists")
    rater = session.scalar(select(Rater).where(Rater.kind == "judge", Rater.name == config.name))
    rater = rater or Rater(kind="judge", name=config.name)
    judge = Judge(name=config.name, kind=config.kind, config=config.model_dump(), rater=rater)
    session.add(judge)
    session.flush()
    return judge


def get(session: Session, judge_id: int) -> Judge:
    judge = session.get(Judge, judge_id)
    if judge is None:
        raise NotFound(f"no judge with id {judge_id}")
    return judge


def read(session: Session, judges: list[Judge]) -> list[dict[str, Any]]:
    """Judges as the API shows them: config, judgements by status, and position bias."""
    ids = [judge.id for judge in judges]
    counts: dict[tuple[int, str], int] = {
        (judge_id, status): n for judge_id, status, n in session.execute(
            select(Judgement.judge_id, Judgement.status, func.count())
            .where(Judgement.judge_id.in_(ids)).group_by(Judgement.judge_id, Judgement.status))
    }
    picks: dict[int, list[str]] = {judge_id: [] for judge_id in ids}
    for judge_id, forward, reverse in session.execute(
            select(Judgement.judge_id, Judgement.forward, Judgement.reverse)
            .where(Judgement.judge_id.in_(ids))):
        picks[judge_id] += [v for v in (forward, reverse) if v is not None]
    scored: dict[tuple[int, str], int] = {
        (judge_id, status): n for judge_id, status, n in session.execute(
            select(Score.judge_id, Score.status, func.count())
            .where(Score.judge_id.in_(ids)).group_by(Score.judge_id, Score.status))
    }
    shown = []
    for judge in judges:
        if judge.kind == "pipeline_pointwise":
            shown.append({
                "id": judge.id, "name": judge.name, "kind": judge.kind, "config": judge.config,
                "active": judge.active, "created_at": judge.created_at.isoformat(),
                "scores": {status: scored.get((judge.id, status), 0) for status in
                           ("pending", "running", "scored", "invalid", "failed")},
            })
            continue
        bias = first_position_rate(picks[judge.id])
        shown.append({
            "id": judge.id, "name": judge.name, "kind": judge.kind, "config": judge.config,
            "active": judge.active, "created_at": judge.created_at.isoformat(),
            "judgements": {status: counts.get((judge.id, status), 0) for status in
                           ("pending", "running", "voted", "inconsistent", "invalid", "failed")},
            "first_position": {
                "picked_first": bias.successes, "verdicts": bias.n,
                "rate": round(bias.rate, 4) if bias.n else None,
                "ci_lower": round(bias.interval.low, 4) if bias.n else None,
                "ci_upper": round(bias.interval.high, 4) if bias.n else None,
                "p_value": round(bias.p_value, 6) if bias.n else None,
            },
        })
    return shown


def start_run(session: Session, judge: Judge, battles: int,
              settings: Settings) -> tuple[Any, list[int]]:
    """Serve `battles` battles to the judge by the arena's pairing strategy and queue a
    judgement for each; the caller commits, then enqueues."""
    if not judge.active:
        raise Conflict(f"judge {judge.name!r} is inactive")
    job = jobs.create(session, "judging", total=0,
                      params={"judge_id": judge.id, "judge": judge.name, "battles": battles})
    ids = []
    for _ in range(battles):
        battle = arena.serve_battle(session, judge.rater, settings)
        if battle is None:
            break
        battle.expires_at = battle.served_at + timedelta(days=JUDGE_BATTLE_DAYS)
        judgement = Judgement(battle_id=battle.id, judge_id=judge.id, job_id=job.id,
                              status="pending", replies=[])
        session.add(judgement)
        session.flush()
        ids.append(judgement.id)
    if not ids:
        raise Conflict("no battle can be served yet: the arena needs at least two active "
                       "models that answered a common prompt")
    job.total = len(ids)
    session.flush()
    return job, ids


def enqueue(judgement_ids: list[int]) -> None:
    from workers.celery_app import celery_app

    with celery_app.producer_or_acquire() as producer:
        for judgement_id in judgement_ids:
            celery_app.send_task("judging.judge", args=[judgement_id, 0], queue="judging",
                                 producer=producer)


# --- one judgement, as a task works on it ----------------------------------------------------

_CLAIM = text("""
WITH claimed AS (
    UPDATE judgements SET status = 'running', claim_token = :token,
        claimed_until = now() + make_interval(secs => :margin + COALESCE(
            (SELECT (config->>'timeout_s')::float
                    * CASE WHEN (config->>'both_orders')::boolean THEN 2 ELSE 1 END
             FROM judges WHERE judges.id = judgements.judge_id), 240))
    WHERE id = :id
      AND (status = 'pending' OR (status = 'running' AND claimed_until < now()))
    RETURNING id, job_id, judge_id, battle_id
), started AS (
    UPDATE jobs SET status = 'running', updated_at = now()
    WHERE id = (SELECT job_id FROM claimed) AND status = 'pending'
)
SELECT c.id, c.job_id, j.id, j.name, j.config, j.updated_at, j.rater_id, b.id,
       p.audio_key, ra.audio_key, rb.audio_key
FROM claimed c
JOIN judges j ON j.id = c.judge_id
JOIN battles b ON b.id = c.battle_id
JOIN prompts p ON p.id = b.prompt_id
JOIN responses ra ON ra.id = b.response_a_id
JOIN responses rb ON rb.id = b.response_b_id
""")


@dataclass(frozen=True)
class Claimed:
    token: str
    judgement_id: int
    job_id: int | None
    judge_id: int
    judge_name: str
    config: dict
    updated_at: datetime
    rater_id: int
    battle_id: int
    prompt_audio_key: str
    audio_a_key: str
    audio_b_key: str


def claim(conn: Connection, judgement_id: int, margin_s: float) -> Claimed | None:
    token = secrets.token_hex(16)
    row = conn.execute(_CLAIM, {"id": judgement_id, "token": token,
                                "margin": margin_s}).one_or_none()
    return None if row is None else Claimed(token, *row)


def lease_left(conn: Connection, judgement_id: int) -> tuple[str | None, float]:
    return claims.lease_left(conn, "judgements", judgement_id)


_FINISH = text("""
WITH finished AS (
    UPDATE judgements SET status = :status, forward = :forward, reverse = :reverse,
        outcome = :outcome, reason = :reason, replies = CAST(:replies AS jsonb),
        prompt_version = :prompt_version, model_version = :model_version,
        usage = CAST(:usage AS jsonb), error = :error, attempts = :attempt + 1,
        claim_token = NULL, claimed_until = NULL, updated_at = now()
    WHERE id = :id AND claim_token = :token
    RETURNING battle_id, job_id
), voted AS (
    INSERT INTO votes (battle_id, rater_id, outcome, created_at)
    SELECT battle_id, :rater, :outcome, now() FROM finished
    WHERE CAST(:outcome AS text) IS NOT NULL
    ON CONFLICT (battle_id, rater_id) DO NOTHING
    RETURNING id
), """ + jobs.counted_cte(
    "jsonb_build_object('battle_id', (SELECT battle_id FROM finished), "
    "'error', CAST(:error AS text))") + """
SELECT (SELECT count(*) FROM finished), (SELECT count(*) FROM voted)
""")


@dataclass
class Result:
    """What a judgement came to. `status` is voted, inconsistent, invalid or failed."""

    status: str
    forward: str | None = None
    reverse: str | None = None
    outcome: str | None = None
    reason: str | None = None
    replies: list[str] | None = None
    prompt_version: str | None = None
    model_version: str | None = None
    usage: dict | None = None
    error: str | None = None


def finish(conn: Connection, claimed: Claimed, result: Result, *, attempt: int) -> tuple[bool, bool]:
    """Store the judgement, cast its vote if it has one, and count it in its job, if this task
    still holds the claim. Returns (stored, voted)."""
    stored, voted = conn.execute(_FINISH, {
        "id": claimed.judgement_id, "token": claimed.token, "attempt": attempt,
        "rater": claimed.rater_id, "status": result.status, "forward": result.forward,
        "reverse": result.reverse, "outcome": result.outcome, "reason": result.reason,
        "replies": json.dumps(result.replies or []), "prompt_version": result.prompt_version,
        "model_version": result.model_version,
        "usage": json.dumps(result.usage) if result.usage else None, "error": result.error,
        "ok": 0 if result.status == "failed" else 1, "cap": MAX_JOB_ERRORS,
    }).one()
    return bool(stored), bool(voted)


def release(conn: Connection, claimed: Claimed, *, error: str | None = None,
            attempt: int | None = None) -> bool:
    return claims.release(conn, "judgements", claimed.judgement_id, claimed.token,
                          error=error, attempt=attempt)


# --- pointwise scores (ParaS2S's pipeline judge) -----------------------------------------------

STYLES = ("emotion", "sarcasm", "age", "gender")


def start_scoring(session: Session, judge: Judge, limit: int | None) -> tuple[Any, list[int]]:
    """Queue a score for every ready response this judge has not scored (the first `limit`
    of them, oldest first); the caller commits, then enqueues."""
    if not judge.active:
        raise Conflict(f"judge {judge.name!r} is inactive")
    job = jobs.create(session, "scoring", total=0,
                      params={"judge_id": judge.id, "judge": judge.name, "responses": limit})
    query = text("""
        INSERT INTO scores (response_id, judge_id, job_id, status, replies, attempts, created_at)
        SELECT r.id, :judge, :job, 'pending', '[]'::jsonb, 0, now()
        FROM responses r JOIN prompts p ON p.id = r.prompt_id
        WHERE r.status = 'ready' AND p.active
          AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.response_id = r.id
                          AND s.judge_id = :judge)
        ORDER BY r.id LIMIT :limit
        ON CONFLICT (response_id, judge_id) DO NOTHING
        RETURNING id""")
    ids = list(session.execute(query, {"judge": judge.id, "job": job.id,
                                       "limit": limit}).scalars())
    if not ids:
        raise Conflict("every ready response already has a score from this judge")
    job.total = len(ids)
    session.flush()
    return job, ids


def enqueue_scores(score_ids: list[int]) -> None:
    from workers.celery_app import celery_app

    with celery_app.producer_or_acquire() as producer:
        for score_id in score_ids:
            celery_app.send_task("judging.score", args=[score_id, 0], queue="judging",
                                 producer=producer)


_CLAIM_SCORE = text("""
WITH claimed AS (
    UPDATE scores SET status = 'running', claim_token = :token,
        claimed_until = now() + make_interval(secs => :margin + 3 * COALESCE(
            (SELECT (config->>'timeout_s')::float FROM judges
             WHERE judges.id = scores.judge_id), 120))
    WHERE id = :id
      AND (status = 'pending' OR (status = 'running' AND claimed_until < now()))
    RETURNING id, job_id, judge_id, response_id
), started AS (
    UPDATE jobs SET status = 'running', updated_at = now()
    WHERE id = (SELECT job_id FROM claimed) AND status = 'pending'
)
SELECT c.id, c.job_id, j.id, j.config, r.audio_key, p.text, p.emotion, p.sarcasm, p.age,
       p.gender
FROM claimed c
JOIN judges j ON j.id = c.judge_id
JOIN responses r ON r.id = c.response_id
JOIN prompts p ON p.id = r.prompt_id
""")


@dataclass(frozen=True)
class ClaimedScore:
    token: str
    score_id: int
    job_id: int | None
    judge_id: int
    config: dict
    audio_key: str
    prompt_text: str
    emotion: str | None
    sarcasm: str | None
    age: str | None
    gender: str | None


def claim_score(conn: Connection, score_id: int, margin_s: float) -> ClaimedScore | None:
    token = secrets.token_hex(16)
    row = conn.execute(_CLAIM_SCORE, {"id": score_id, "token": token,
                                      "margin": margin_s}).one_or_none()
    return None if row is None else ClaimedScore(token, *row)


def score_lease_left(conn: Connection, score_id: int) -> tuple[str | None, float]:
    return claims.lease_left(conn, "scores", score_id)


_FINISH_SCORE = text("""
WITH finished AS (
    UPDATE scores SET status = :status, score = :score, reason = :reason,
        transcript = :transcript, caption = :caption, replies = CAST(:replies AS jsonb),
        prompt_version = :prompt_version, usage = CAST(:usage AS jsonb), error = :error,
        attempts = :attempt + 1, claim_token = NULL, claimed_until = NULL, updated_at = now()
    WHERE id = :id AND claim_token = :token
    RETURNING response_id, job_id
), """ + jobs.counted_cte(
    "jsonb_build_object('response_id', (SELECT response_id FROM finished), "
    "'error', CAST(:error AS text))") + """
SELECT count(*) FROM finished
""")


def finish_score(conn: Connection, claimed: ClaimedScore, *, attempt: int, status: str,
                 **fields: Any) -> bool:
    values = {"score": None, "reason": None, "transcript": None, "caption": None,
              "replies": [], "prompt_version": None, "usage": None, "error": None, **fields}
    return bool(conn.execute(_FINISH_SCORE, {
        **values, "id": claimed.score_id, "token": claimed.token, "attempt": attempt,
        "status": status, "replies": json.dumps(values["replies"]),
        "usage": json.dumps(values["usage"]) if values["usage"] else None,
        "ok": 0 if status == "failed" else 1, "cap": MAX_JOB_ERRORS,
    }).scalar())


def release_score(conn: Connection, claimed: ClaimedScore, *, error: str | None = None,
                  attempt: int | None = None) -> bool:
    return claims.release(conn, "scores", claimed.score_id, claimed.token, error=error,
                          attempt=attempt)


def score_table(session: Session, judge: Judge) -> dict[str, Any]:
    """Mean score per model, overall and per style label of the prompts (ParaS2S Table 3)."""
    rows = session.execute(text("""
        SELECT m.name, p.emotion, p.sarcasm, p.age, p.gender, s.score
        FROM scores s JOIN responses r ON r.id = s.response_id
        JOIN speech_models m ON m.id = r.model_id JOIN prompts p ON p.id = r.prompt_id
        WHERE s.judge_id = :judge AND s.status = 'scored'
        ORDER BY m.name"""), {"judge": judge.id}).all()
    models: dict[str, dict[str, Any]] = {}
    for name, *styles, score in rows:
        entry = models.setdefault(name, {"model": name, "scores": [], "by_style": {}})
        entry["scores"].append(score)
        for category, label in zip(STYLES, styles):
            if label:
                entry["by_style"].setdefault(f"{category}: {label}", []).append(score)

    def mean(values: list[int]) -> dict[str, Any]:
        return {"mean": round(sum(values) / len(values), 3), "n": len(values)}

    table = [{"model": e["model"], **mean(e["scores"]),
              "by_style": {k: mean(v) for k, v in sorted(e["by_style"].items())}}
             for e in models.values()]
    table.sort(key=lambda e: -e["mean"])
    return {"judge": judge.name, "models": table,
            "styles": sorted({k for e in table for k in e["by_style"]})}

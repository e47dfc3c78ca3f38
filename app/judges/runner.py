"""One judgement from start to end: the judge hears the prompt and both answers (in both
orders when asked), its replies are parsed, and a vote is cast only when the verdict is valid
and, with both orders, consistent. Retrying, backoff and per-judge limits follow the inference
tasks' rules (app.inference.runner)."""

from __future__ import annotations

import logging
import random

from sqlalchemy import Connection

from app.audio.storage import AudioStorage, get_storage
from app.config import Outcomes, Settings, get_settings
from app.db.session import autocommit
from app.inference.adapters.base import PermanentError, TransientError
from app.inference.limits import ModelLimits
from app.inference.runner import Reschedule, backoff
from app.judges import pointwise, service
from app.judges.audio import judge_audio
from app.judges.clients import ask
from app.judges.parsing import parse_pairwise
from app.redis_client import get_redis

log = logging.getLogger(__name__)


def run(judgement_id: int, attempt: int, reschedule: Reschedule, *,
        settings: Settings | None = None, storage: AudioStorage | None = None) -> str:
    settings = settings or get_settings()
    storage = storage or get_storage()
    with autocommit() as conn:
        return _run(conn, judgement_id, attempt, reschedule, settings, storage)


def _run(conn: Connection, judgement_id: int, attempt: int, reschedule: Reschedule,
         settings: Settings, storage: AudioStorage) -> str:
    policy = settings.inference
    claimed = service.claim(conn, judgement_id, policy.lease_margin_s)
    if claimed is None:
        status, left = service.lease_left(conn, judgement_id)
        if status == "running":
            reschedule(left + 1.0, attempt)
            return "held by another task"
        return "finished already" if status else "gone"
    config = service.parse_config(claimed.config)
    calls = 2 if config.both_orders else 1
    limits = ModelLimits(get_redis(), scope="judging")
    slot, wait = limits.try_acquire(
        claimed.judge_id, max_concurrency=config.max_concurrency,
        lease_s=calls * config.timeout_s + policy.lease_margin_s,
        requests_per_minute=config.requests_per_minute)
    if slot is None:
        if service.release(conn, claimed):
            reschedule(wait * random.uniform(1.0, 1.5), attempt)
        return "waiting for a slot"
    try:
        result = _judge(claimed, config, storage, settings)
    except TransientError as exc:
        if attempt + 1 >= policy.max_attempts:
            result = service.Result("failed", error=f"{exc.message} (gave up after "
                                    f"{attempt + 1} attempts)")
        else:
            if service.release(conn, claimed, error=exc.message, attempt=attempt):
                reschedule(backoff(attempt, exc.retry_after, policy), attempt + 1)
            return "retrying"
    except PermanentError as exc:
        # A reply with no verdict (blocked, empty, cut off) is the judge's answer: invalid.
        # An error with a status code (a bad request, a missing key) is a failure to judge.
        status = "failed" if exc.status is not None or "environment variable" in exc.message \
            else "invalid"
        result = service.Result(status, reason=exc.message if status == "invalid" else None,
                                error=exc.message if status == "failed" else None)
    except Exception as exc:
        log.exception("judgement %s failed", judgement_id)
        result = service.Result("failed", error=f"internal error: {type(exc).__name__}: {exc}")
    finally:
        limits.release(slot)
    stored, voted = service.finish(conn, claimed, result, attempt=attempt)
    if voted:
        from app.leaderboard.service import schedule_refresh

        schedule_refresh(settings.arena.leaderboard_debounce_seconds)
    return result.status if stored else "finished by another task"


def _judge(claimed: service.Claimed, config, storage: AudioStorage,
           settings: Settings) -> service.Result:
    """Ask the judge about A then B (and, with both orders, B then A); decide the vote."""
    prompt = storage.get(claimed.prompt_audio_key)
    a, b = storage.get(claimed.audio_a_key), storage.get(claimed.audio_b_key)
    audio = judge_audio(prompt, a, b)
    first = ask(config, audio)
    forward = parse_pairwise(first.text)
    replies, usage = [first.text], dict(first.usage or {})
    reverse = None
    if config.both_orders:
        second = ask(config, audio.swapped())
        reverse = parse_pairwise(second.text)
        replies.append(second.text)
        for key, value in (second.usage or {}).items():
            usage[key] = usage.get(key, 0) + value
    common = {"forward": forward.winner, "reverse": reverse.winner if reverse else None,
              "replies": replies, "prompt_version": first.prompt_version,
              "model_version": first.model_version, "usage": usage or None}
    invalid = [v.invalid for v in (forward, reverse) if v is not None and not v.valid]
    if invalid:
        return service.Result("invalid", reason="; ".join(i or "no verdict" for i in invalid),
                              **common)
    winner = "a" if forward.winner == "first" else "b"
    reason = forward.reason
    if reverse is not None and ("b" if reverse.winner == "first" else "a") != winner:
        tie_allowed = settings.arena.outcomes != Outcomes.strict
        return service.Result(
            "inconsistent", outcome="tie" if tie_allowed else None,
            reason="the two orders disagree: the judge preferred whichever answer came "
                   f"{forward.winner}" + (" (counted as a tie)" if tie_allowed else ""),
            **common)
    return service.Result("voted", outcome=winner, reason=reason, **common)


def run_score(score_id: int, attempt: int, reschedule: Reschedule, *,
              settings: Settings | None = None, storage: AudioStorage | None = None) -> str:
    """One pointwise score: transcript, style caption and a 1–5 score of one response."""
    settings = settings or get_settings()
    storage = storage or get_storage()
    policy = settings.inference
    with autocommit() as conn:
        claimed = service.claim_score(conn, score_id, policy.lease_margin_s)
        if claimed is None:
            status, left = service.score_lease_left(conn, score_id)
            if status == "running":
                reschedule(left + 1.0, attempt)
                return "held by another task"
            return "finished already" if status else "gone"
        config = service.parse_config(claimed.config)
        limits = ModelLimits(get_redis(), scope="judging")
        slot, wait = limits.try_acquire(
            claimed.judge_id, max_concurrency=config.max_concurrency,
            lease_s=3 * config.timeout_s + policy.lease_margin_s,
            requests_per_minute=config.requests_per_minute)
        if slot is None:
            if service.release_score(conn, claimed):
                reschedule(wait * random.uniform(1.0, 1.5), attempt)
            return "waiting for a slot"
        try:
            result = pointwise.score(
                config, response_audio=storage.get(claimed.audio_key),
                prompt_transcript=claimed.prompt_text,
                prompt_styles={"emotion": claimed.emotion, "sarcasm": claimed.sarcasm,
                               "age": claimed.age, "gender": claimed.gender})
            status = "scored" if result.score is not None else "invalid"
            fields = {"score": result.score, "reason": result.reason or result.invalid,
                      "transcript": result.transcript, "caption": result.caption,
                      "replies": result.replies, "prompt_version": result.prompt_version,
                      "usage": result.usage or None}
        except TransientError as exc:
            if attempt + 1 < policy.max_attempts:
                if service.release_score(conn, claimed, error=exc.message, attempt=attempt):
                    reschedule(backoff(attempt, exc.retry_after, policy), attempt + 1)
                return "retrying"
            status, fields = "failed", {"error": f"{exc.message} (gave up after "
                                                 f"{attempt + 1} attempts)"}
        except PermanentError as exc:
            status, fields = "failed", {"error": exc.message}
        except Exception as exc:
            log.exception("score %s failed", score_id)
            status, fields = "failed", {"error": f"internal error: {type(exc).__name__}: {exc}"}
        finally:
            limits.release(slot)
        stored = service.finish_score(conn, claimed, attempt=attempt, status=status, **fields)
    return status if stored else "finished by another task"

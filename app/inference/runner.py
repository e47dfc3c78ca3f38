"""One inference task from start to end: wait for the model's limits and breaker, claim the
response row, call the adapter once, store the answer or the reason it failed, and decide
whether and when to try again.

Retrying is decided here and nowhere else (the SDKs' own retries are off): transient errors
(429, 408, 5xx, timeouts) come back after an exponential backoff with jitter that is never
shorter than the server's Retry-After or retryDelay; other errors fail the response at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from sqlalchemy import Connection

from app.audio import model_input
from app.audio.codec import canonicalise
from app.audio.storage import AudioStorage, get_storage
from app.config import InferenceSettings, Settings, get_settings
from app.db.session import autocommit
from app.errors import ArenaError
from app.inference import adapters, service
from app.inference.adapters.base import (
    Adapter,
    Generated,
    PermanentError,
    PromptAudio,
    TransientError,
    pcm16_to_wav,
)
from app.inference.limits import ModelLimits, Slot
from app.redis_client import get_redis

log = logging.getLogger(__name__)

# reschedule(countdown_seconds, attempt): run this task again later
Reschedule = Callable[[float, int], None]


def backoff(attempt: int, retry_after: float | None, settings: InferenceSettings,
            rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter (half to all of base·2^attempt, capped), never shorter
    than what the server asked for."""
    ceiling = min(settings.backoff_max_s, settings.backoff_base_s * 2 ** attempt)
    delay = ceiling * (rng or random).uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def run(response_id: int, attempt: int, reschedule: Reschedule, *,
        settings: Settings | None = None, storage: AudioStorage | None = None) -> str:
    """Work on one response; returns a short word on what happened (for logs and tests)."""
    settings = settings or get_settings()
    storage = storage or get_storage()
    # One connection for the whole task (autocommit: no transaction stays open while the
    # model thinks), so the pool checks it only once.
    with autocommit() as conn:
        return _run(conn, response_id, attempt, reschedule, settings, storage)


def _run(conn: Connection, response_id: int, attempt: int, reschedule: Reschedule,
         settings: Settings, storage: AudioStorage) -> str:
    policy = settings.inference
    claimed = service.claim(conn, response_id, policy.lease_margin_s)
    if claimed is None:
        status, left = service.lease_left(conn, response_id)
        if status == "running":  # another delivery of this task holds it
            reschedule(left + 1.0, attempt)
            return "held by another task"
        return "finished already" if status else "gone"

    adapter, config = _adapter(claimed)
    refusal = ("the model has no inference adapter (kind upload)" if adapter is None else
               "the \"command\" adapter is switched off on this worker "
               "(ARENA_INFERENCE__ALLOW_COMMAND_ADAPTER)"
               if config.kind == "command" and not policy.allow_command_adapter else None)
    if refusal:
        service.finish_failed(conn, claimed, attempt=attempt, error=refusal)
        return "failed"
    lease = config.timeout_s + policy.lease_margin_s
    limits = _limits()
    probe = False
    if claimed.outage_since is not None:
        wait = service.seconds_until(claimed.outage_probe_at)
        if wait > 0:
            return _wait(conn, claimed, reschedule, attempt, wait + random.uniform(0, 1),
                         "waiting for the outage probe")
        if not limits.claim_probe(claimed.model_id, lease):
            return _wait(conn, claimed, reschedule, attempt,
                         min(policy.breaker_cooldown_s, 5.0) * random.uniform(1, 1.5),
                         "waiting for the outage probe")
        probe = True
    slot, wait = limits.try_acquire(claimed.model_id, max_concurrency=config.max_concurrency,
                                    lease_s=lease, requests_per_minute=config.requests_per_minute)
    if slot is None:
        if probe:
            limits.end_probe(claimed.model_id)
        return _wait(conn, claimed, reschedule, attempt, wait * random.uniform(1.0, 1.5),
                     "waiting for a slot")
    try:
        ok, error = _call(conn, claimed, adapter, attempt, settings, storage, reschedule)
    except BaseException:
        limits.release(slot)
        raise
    finally:
        if probe:
            limits.end_probe(claimed.model_id)
    _breaker(conn, limits, slot, claimed, ok, error, policy)
    return "ready" if ok else ("failed" if error else "retrying")


def _wait(conn: Connection, claimed: service.Claimed, reschedule: Reschedule, attempt: int,
          countdown: float, why: str) -> str:
    """Hand the row back without spending an attempt, and come back later."""
    if service.release(conn, claimed, due_in=countdown):
        reschedule(countdown, attempt)
    return why


def _call(conn: Connection, claimed: service.Claimed, adapter: Adapter, attempt: int,
          settings: Settings, storage: AudioStorage,
          reschedule: Reschedule) -> tuple[bool, str | None]:
    """Call the adapter once. Returns (succeeded, error of a request that failed)."""
    policy = settings.inference
    try:
        prompt = prompt_audio(storage, claimed.prompt_audio_key, claimed.input_sample_rate,
                              claimed.prompt_key, claimed.prompt_text)
        started = time.perf_counter()
        generated = adapter.generate(prompt)
        latency_ms = (time.perf_counter() - started) * 1000
        clip = _canonical(generated, settings)
    except TransientError as exc:
        if attempt + 1 >= policy.max_attempts:
            message = f"{exc.message} (gave up after {attempt + 1} attempts)"
            service.finish_failed(conn, claimed, attempt=attempt, error=message)
            return False, message
        delay = backoff(attempt, exc.retry_after, policy)
        if service.release(conn, claimed, due_in=delay, error=exc.message, attempt=attempt):
            reschedule(delay, attempt + 1)
        return False, exc.message
    except PermanentError as exc:
        service.finish_failed(conn, claimed, attempt=attempt, error=exc.message)
        return False, exc.message
    except Exception as exc:  # a bug or an outage of our own: fail this row, keep the reason
        log.exception("inference of response %s failed", claimed.response_id)
        service.finish_failed(conn, claimed, attempt=attempt,
                              error=f"internal error: {type(exc).__name__}: {exc}")
        return False, None  # not the model's fault: the breaker does not count it

    key = storage.put(clip.data)
    try:
        stored = service.finish_ready(
            conn, claimed, attempt=attempt, audio_key=key, duration_s=clip.duration_s,
            transcript=generated.transcript, model_version=generated.model_version,
            latency_ms=latency_ms, usage=generated.usage or None)
    except BaseException:
        storage.delete(key)
        raise
    if not stored:  # the lease ran out and another delivery finished it: keep theirs
        storage.delete(key)
    return True, None


def _canonical(generated: Generated, settings: Settings):
    audio = generated.audio
    if generated.pcm_rate is not None and audio[:4] != b"RIFF":
        audio = pcm16_to_wav(audio, generated.pcm_rate)
    try:
        return canonicalise(audio, settings.audio, name="the reply's audio")
    except ArenaError as exc:
        raise PermanentError(f"the reply is not usable audio: {exc.message}") from exc


def _breaker(conn: Connection, limits: ModelLimits, slot: Slot, claimed: service.Claimed,
             ok: bool, error: str | None, policy: InferenceSettings) -> None:
    """Give the slot back and count this request (one Redis round trip); open the outage
    breaker when most recent requests failed, close it when a request succeeds again. An
    error of our own (`error` None on failure) is not the model's and is not counted."""
    model_id = claimed.model_id
    counted = ok or error is not None
    requests, failures = limits.release(slot, outcome=ok if counted else None,
                                        window=policy.breaker_window)
    if not counted:
        return
    if claimed.outage_since is not None:
        if ok and service.close_outage(conn, model_id):
            limits.forget_outcomes(model_id)
            log.warning("model %s recovered", claimed.model_name)
        elif not ok:  # the probe failed: wait another cooldown
            service.postpone_probe(conn, model_id, error, policy.breaker_cooldown_s)
        return
    if not ok and requests >= policy.breaker_min_requests and (
            failures / requests >= policy.breaker_failure_ratio):
        if service.open_outage(conn, model_id, f"{failures} of the last {requests} requests "
                               f"failed; last error: {error}", policy.breaker_cooldown_s):
            log.warning("model %s is out of pairing: %s of the last %s requests failed",
                        claimed.model_name, failures, requests)


_adapters: dict[int, tuple[object, Adapter | None, object]] = {}


def _adapter(claimed: service.Claimed) -> tuple[Adapter | None, object]:
    """One adapter per model per process, rebuilt when the model's row changes. None for a
    model whose responses only come from uploads."""
    cached = _adapters.get(claimed.model_id)
    if cached is None or cached[0] != claimed.updated_at:
        config = service.parse_adapter(claimed.adapter)
        adapter = None if config.kind == "upload" else adapters.build(config)
        cached = (claimed.updated_at, adapter, config)
        _adapters[claimed.model_id] = cached
    return cached[1], cached[2]


_limits_of: dict[int, ModelLimits] = {}


def _limits() -> ModelLimits:
    client = get_redis()
    found = _limits_of.get(id(client))
    if found is None:
        _limits_of.clear()
        found = _limits_of[id(client)] = ModelLimits(client)
    return found


def prompt_audio(storage: AudioStorage, audio_key: str, rate: int, key: str,
                 text: str | None = None) -> PromptAudio:
    """The prompt as the model hears it: converted once per input rate and kept in the audio
    store for every other model that takes that rate (app/audio/model_input.py)."""
    return PromptAudio(key=key, wav=model_input.prompt_wav(storage, audio_key, rate),
                       sample_rate=rate, text=text)

"""The per-model limits and the breaker's memory, against the real Redis every worker shares."""

from __future__ import annotations

import random
import time

import pytest

from app.config import InferenceSettings
from app.inference.limits import ModelLimits
from app.inference.runner import backoff


@pytest.fixture
def limits(arena_env):
    from app.redis_client import get_redis

    client = get_redis()
    client.flushdb()
    return ModelLimits(client)


def test_no_more_than_max_concurrency_slots_at_once(limits):
    first, _ = limits.try_acquire(7, max_concurrency=2, lease_s=30, requests_per_minute=None)
    second, _ = limits.try_acquire(7, max_concurrency=2, lease_s=30, requests_per_minute=None)
    third, wait = limits.try_acquire(7, max_concurrency=2, lease_s=30, requests_per_minute=None)
    assert first and second and third is None and 0 < wait <= 1.0
    other_model, _ = limits.try_acquire(8, max_concurrency=2, lease_s=30,
                                        requests_per_minute=None)
    assert other_model is not None  # limits are per model
    limits.release(first)
    again, _ = limits.try_acquire(7, max_concurrency=2, lease_s=30, requests_per_minute=None)
    assert again is not None and limits.in_flight(7) == 2


def test_a_slot_held_by_a_dead_worker_frees_itself_when_its_lease_ends(limits):
    held, _ = limits.try_acquire(7, max_concurrency=1, lease_s=0.3, requests_per_minute=None)
    assert held is not None
    assert limits.try_acquire(7, max_concurrency=1, lease_s=0.3, requests_per_minute=None)[0] is None
    time.sleep(0.35)
    assert limits.try_acquire(7, max_concurrency=1, lease_s=0.3, requests_per_minute=None)[0]


def test_requests_per_minute_allows_a_minutes_worth_then_paces(limits):
    taken = []
    for _ in range(30):
        slot, _ = limits.try_acquire(7, max_concurrency=100, lease_s=30, requests_per_minute=30)
        taken.append(slot is not None)
    assert all(taken)
    slot, wait = limits.try_acquire(7, max_concurrency=100, lease_s=30, requests_per_minute=30)
    assert slot is None and 1.5 < wait <= 2.0  # one more every 60/30 s
    assert limits.in_flight(7) == 30


def outcome(limits, ok: bool, window: int = 6) -> tuple[int, int]:
    slot, _ = limits.try_acquire(7, max_concurrency=1, lease_s=30, requests_per_minute=None)
    return limits.release(slot, outcome=ok, window=window)


def test_the_breaker_remembers_the_last_window_of_outcomes(limits):
    for ok in [True] * 5 + [False] * 3:
        seen = outcome(limits, ok)
    assert seen == (6, 3)
    slot, _ = limits.try_acquire(7, max_concurrency=1, lease_s=30, requests_per_minute=None)
    assert limits.release(slot) == (0, 0)  # a request that is not the model's to count
    limits.forget_outcomes(7)
    assert outcome(limits, True) == (1, 0)


def test_one_probe_at_a_time(limits):
    assert limits.claim_probe(7, ttl_s=5)
    assert not limits.claim_probe(7, ttl_s=5)
    limits.end_probe(7)
    assert limits.claim_probe(7, ttl_s=5)


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after():
    policy = InferenceSettings(backoff_base_s=1, backoff_max_s=60)
    rng = random.Random(0)
    delays = [backoff(n, None, policy, rng) for n in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(60, 2 ** n)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff(0, 7.0, policy, rng) == 7.0
    assert backoff(6, 7.0, policy, rng) >= 32

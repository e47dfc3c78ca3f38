"""Per-model limits that hold across every worker, kept in Redis: how many requests may be in
flight at once, how many may start per minute, and the record of recent outcomes that the
outage breaker reads.

Both limits are decided in one Lua script against Redis's own clock, so workers on machines
whose clocks disagree still share one limit, and a check-then-take race cannot let an extra
request through.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

# KEYS: slots (sorted set of token -> lease expiry), rate (GCRA theoretical arrival time)
# ARGV: token, max_concurrency, lease seconds, requests_per_minute (0: none)
# Returns {1, 0} when taken, or {0, wait_ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local wait = math.min(tonumber(first[2]) - now, 1.0)
    return {0, math.max(math.floor(wait * 1000), 50)}
end
local rpm = tonumber(ARGV[4])
if rpm > 0 then
    local interval = 60.0 / rpm
    local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
    if tat < now then tat = now end
    local allowed_at = tat - (60.0 - interval)
    if allowed_at > now then
        return {0, math.max(math.floor((allowed_at - now) * 1000), 1)}
    end
    redis.call('SET', KEYS[2], tostring(tat + interval), 'PX', 61000)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[3]) * 1000) + 1000)
return {1, 0}
"""


# KEYS: slots, outcomes; ARGV: token, outcome ("1" succeeded, "0" failed, "" none), window
# Gives the slot back and records the outcome. Returns {requests, failures} among the last
# `window` outcomes ({0, 0} when none was recorded).
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '' then return {0, 0} end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
local outcomes = redis.call('LRANGE', KEYS[2], 0, -1)
local failures = 0
for _, outcome in ipairs(outcomes) do
    if outcome == '0' then failures = failures + 1 end
end
return {#outcomes, failures}
"""


@dataclass(frozen=True)
class Slot:
    model_id: int
    key: str
    token: str


class ModelLimits:
    """The concurrency and rate limits of one kind of caller (inference, judging) per model."""

    def __init__(self, client: redis.Redis, scope: str = "inference") -> None:
        self.redis = client
        self.scope = scope
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def _key(self, model_id: int, what: str) -> str:
        return f"arena:{self.scope}:{model_id}:{what}"

    def try_acquire(self, model_id: int, *, max_concurrency: int, lease_s: float,
                    requests_per_minute: int | None) -> tuple[Slot | None, float]:
        """A slot, or None and how many seconds to wait before asking again. A slot expires
        after `lease_s` by itself, so a worker that dies holding one does not leak it."""
        token = uuid.uuid4().hex
        slots = self._key(model_id, "slots")
        taken, wait_ms = self._acquire(
            keys=[slots, self._key(model_id, "rate")],
            args=[token, max_concurrency, lease_s, requests_per_minute or 0],
        )
        if taken:
            return Slot(model_id, slots, token), 0.0
        return None, int(wait_ms) / 1000

    def release(self, slot: Slot, *, outcome: bool | None = None,
                window: int = 20) -> tuple[int, int]:
        """Give a slot back and, when `outcome` is given, remember that request's outcome for
        the breaker, in one round trip. Returns (requests, failures) among the last `window`
        outcomes ((0, 0) when none was recorded)."""
        requests, failures = self._release(
            keys=[slot.key, self._key(slot.model_id, "outcomes")],
            args=[slot.token, "" if outcome is None else "1" if outcome else "0", window])
        return int(requests), int(failures)

    def in_flight(self, model_id: int) -> int:
        return int(self.redis.zcard(self._key(model_id, "slots")))


    def forget_outcomes(self, model_id: int) -> None:
        self.redis.delete(self._key(model_id, "outcomes"))

    def claim_probe(self, model_id: int, ttl_s: float) -> bool:
        """Let exactly one task be the probe of a model in outage."""
        return bool(self.redis.set(self._key(model_id, "probe"), b"1", nx=True,
                                   px=max(int(ttl_s * 1000), 1)))

    def end_probe(self, model_id: int) -> None:
        self.redis.delete(self._key(model_id, "probe"))

"""Votes per minute, per person and per IP address (and login attempts per address), kept in
Redis so every web process shares them. One Lua script checks every limit against Redis's own clock and takes from all of them
only when all allow (GCRA: a minute's allowance may come in a burst, then one per interval)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.accounts.identity import current_rater
from app.db.models import Rater
from app.deps import SettingsDep
from app.errors import ArenaError
from app.redis_client import get_redis

# KEYS: one GCRA key per limit; ARGV: the limits (per minute), in the same order.
# Returns 0 when every limit allowed the vote (and it was counted), else the wait in ms.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
local next_tat = {}
for i, key in ipairs(KEYS) do
    local interval = 60.0 / tonumber(ARGV[i])
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local allowed_at = tat - (60.0 - interval)
    if allowed_at > now then wait = math.max(wait, allowed_at - now) end
    next_tat[i] = tat + interval
end
if wait > 0 then return math.max(math.floor(wait * 1000), 1) end
for i, key in ipairs(KEYS) do
    redis.call('SET', key, tostring(next_tat[i]), 'PX', 61000)
end
return 0
"""


class RateLimited(ArenaError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def take(limits: dict[str, int], too_many: str) -> None:
    """Count one request against every limit (Redis key -> requests per minute), or raise
    RateLimited with `too_many` and the wait."""
    keys = list(limits)
    wait_ms = int(get_redis().eval(_TAKE, len(keys), *keys, *limits.values()))
    if wait_ms:
        seconds = max(1, -(-wait_ms // 1000))
        raise RateLimited(f"{too_many}: wait {seconds} s and try again", retry_after=seconds)


def take_vote(rater_id: int, ip: str | None, per_minute: int, per_ip_per_minute: int) -> None:
    """Count one vote against the person's and the address's limits, or raise RateLimited."""
    limits = {f"ratelimit:votes:rater:{rater_id}": per_minute}
    if ip:
        limits[f"ratelimit:votes:ip:{ip}"] = per_ip_per_minute
    take(limits, "too many votes in a minute")


def take_login(ip: str | None, per_minute: int) -> None:
    """Count one login attempt from an address (password guessing is slow and loud)."""
    take({f"ratelimit:logins:ip:{ip or 'unknown'}": per_minute},
         "too many login attempts in a minute")


def vote_limit(request: Request, settings: SettingsDep,
               rater: Annotated[Rater, Depends(current_rater)]) -> None:
    """A route dependency for the vote and rate POSTs."""
    ip = request.client.host if request.client else None
    take_vote(rater.id, ip, settings.arena.votes_per_minute,
              settings.arena.votes_per_minute_per_ip)


VoteLimit = Depends(vote_limit)

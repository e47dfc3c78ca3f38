from __future__ import annotations

import os

import redis

from app.config import get_settings

_client: redis.Redis | None = None
_pid: int | None = None


def get_redis() -> redis.Redis:
    """One Redis client per process."""
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client = redis.Redis.from_url(
            get_settings().require_redis_url(), socket_timeout=5, socket_connect_timeout=2
        )
        _pid = os.getpid()
    return _client


def reset_redis() -> None:
    global _client, _pid
    _client = _pid = None

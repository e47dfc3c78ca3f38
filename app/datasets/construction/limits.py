"""The limits every remote call of the dataset commands waits for.

With Redis configured (ARENA_REDIS_URL), a call takes a slot from the workers' own limiter
(`app.inference.limits.ModelLimits`, scope "remote"), keyed by the remote service: its kind,
model and endpoint. Every process calling the same service (two dataset runs at once, or a
run and a second one resumed by mistake) then shares one budget of requests in flight and
requests started per minute, decided in Redis as the workers' limits are: a burst of up to a
minute's budget, then one request per interval.

Without a reachable Redis the limits hold in this process only (requests spaced evenly by a
`Pacer`), and the command says so once on stderr; a run never fails because Redis is away.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import redis

from app.inference.limits import ModelLimits, Slot

SCOPE = "remote"
DEFAULT_CONCURRENCY = 4  # requests in flight per service, across processes (as a model's default)


class Limiter(Protocol):
    def turn(self) -> Iterator[None]:
        """A context manager: enter when the call may start, leave when it has ended."""


class Pacer:
    """Starts at most `per_minute` requests a minute, evenly spaced, in this process. None: no
    limit."""

    def __init__(self, per_minute: float | None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_start = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_start > now:
            self.sleep(self.next_start - now)
            now = self.next_start
        self.next_start = now + self.interval

    @contextmanager
    def turn(self) -> Iterator[None]:
        self.wait()
        yield


class RemoteLimits:
    """The limits of one command run: `for_service(name, timeout_s)` gives the limiter of one
    remote service. Redis is looked for at the first remote call, not before (a run that calls
    nothing remote never needs it)."""

    def __init__(self, requests_per_minute: float | None = None,
                 max_concurrency: int = DEFAULT_CONCURRENCY, *,
                 client: Callable[[], redis.Redis] | None, lease_margin_s: float = 30.0,
                 notify: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.requests_per_minute = requests_per_minute
        self.max_concurrency = max_concurrency
        self.lease_margin_s = lease_margin_s
        self.notify = notify or (lambda message: print(message, file=sys.stderr))
        self.sleep = sleep
        self._client = client
        self._shared: ModelLimits | None = None
        self._local_only = client is None
        self._noted = False
        self._pacers: dict[str, Pacer] = {}

    def for_service(self, name: str, timeout_s: float) -> ServiceLimiter:
        return ServiceLimiter(self, name, timeout_s)

    def acquire(self, service: str, timeout_s: float) -> Slot | None:
        """Wait until `service` may take another request: a Redis slot (give it back with
        `release`), or None once the local pace allows it."""
        while (shared := self._limits()) is not None:
            try:
                slot, wait = shared.try_acquire(
                    service, max_concurrency=self.max_concurrency,
                    lease_s=timeout_s + self.lease_margin_s,
                    requests_per_minute=self.requests_per_minute)
            except redis.RedisError as exc:
                self._fall_back(f"Redis stopped answering ({exc})")
                break
            if slot is not None:
                return slot
            self.sleep(wait * random.uniform(1.0, 1.2))  # two runs do not retry in lockstep
        self._pacers.setdefault(service, Pacer(self.requests_per_minute, sleep=self.sleep)).wait()
        return None

    def release(self, slot: Slot) -> None:
        try:
            self._shared.release(slot)
        except redis.RedisError:
            pass  # the slot's lease runs out by itself

    def _limits(self) -> ModelLimits | None:
        if self._local_only:
            self._fall_back("ARENA_REDIS_URL is not set")
            return None
        if self._shared is None:
            try:
                client = self._client()
                client.ping()
            except redis.RedisError as exc:
                self._fall_back(f"Redis does not answer ({exc})")
                return None
            self._shared = ModelLimits(client, scope=SCOPE)
        return self._shared

    def _fall_back(self, why: str) -> None:
        self._local_only = True
        if not self._noted:
            self._noted = True
            self.notify(f"note: {why}: the limits on remote calls hold in this process only, "
                        "not shared with other runs")


class ServiceLimiter:
    def __init__(self, limits: RemoteLimits, name: str, timeout_s: float) -> None:
        self.limits, self.name, self.timeout_s = limits, name, timeout_s

    @contextmanager
    def turn(self) -> Iterator[None]:
        slot = self.limits.acquire(self.name, self.timeout_s)
        try:
            yield
        finally:
            if slot is not None:
                self.limits.release(slot)


def service_name(kind: str, model: str, base_url: str | None) -> str:
    """Who a budget belongs to: "gemini gemini-2.5-flash", or with the endpoint when it is not
    the provider's own ("openai whisper-1 at http://127.0.0.1:8001/v1")."""
    return f"{kind} {model}" + (f" at {base_url.rstrip('/')}" if base_url else "")

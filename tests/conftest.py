"""Test fixtures: a real Postgres, a real Redis and, where needed, real Celery workers.

The servers named by ARENA_DATABASE_URL / ARENA_REDIS_URL are used when set (`make test` sets
them when local servers answer); otherwise embedded servers are started from their wheels.
Each test session gets its own freshly migrated database; each test starts from empty tables.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import soundfile as sf
from sqlalchemy import make_url

from app.config import WORKER_QUEUES

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TABLES = ("human_ratings", "scores", "judgements", "judges", "votes", "battles", "responses", "raters", "prompts",
          "speech_models", "jobs",
          "leaderboard_snapshots")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def claim_redis_db(base_url: str) -> tuple[str, Callable[[], None]]:
    """A Redis database of its own on a shared server, so that two test runs at once (a CI
    run beside a developer's) never take each other's Celery tasks. Claims are keys in
    database 0 that expire by themselves if a run dies; databases 11 and 12 are the
    benchmarks'."""
    import redis

    server = base_url.rsplit("/", 1)[0]
    claims = redis.Redis.from_url(f"{server}/0")
    for number in (15, 14, 13, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1):
        key = f"arena-test:claim:{number}"
        if claims.set(key, str(os.getpid()), nx=True, ex=3 * 3600):
            return f"{server}/{number}", lambda: claims.delete(key)
    raise RuntimeError(f"every Redis database on {server} is claimed by another test run")


@pytest.fixture(scope="session")
def servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    """URLs of a fresh test database and a Redis database, on real servers."""
    from app.config import normalise_database_url
    from app.embedded import start_postgres, start_redis

    stops = []
    base_db = os.environ.get("ARENA_DATABASE_URL")
    if base_db:
        url = make_url(normalise_database_url(base_db))
        name = f"arena_test_{os.getpid()}"
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        stops.append(drop)
        database_url = url.set(database=name).render_as_string(hide_password=False)
    else:
        postgres = start_postgres(tmp_path_factory.mktemp("pg") / "data", database="arena_test")
        stops.append(postgres.stop)
        database_url = postgres.url
    base_redis = os.environ.get("ARENA_REDIS_URL")
    if base_redis:
        redis_url, release = claim_redis_db(base_redis)
        stops.append(release)
    else:
        redis = start_redis(tmp_path_factory.mktemp("redis"))
        stops.append(redis.stop)
        redis_url = redis.url
    yield {"database_url": database_url, "redis_url": redis_url}
    for stop in reversed(stops):
        stop()


@pytest.fixture(scope="session")
def arena_env(servers, tmp_path_factory) -> dict[str, str]:
    """Point this process (and the processes it starts) at the test servers, and migrate."""
    from app.config import get_settings
    from app.db.migrate import upgrade_to_head
    from app.db.session import dispose_engine
    from app.redis_client import reset_redis

    env = {
        "ARENA_ENVIRONMENT": "test",
        "ARENA_DATABASE_URL": servers["database_url"],
        "ARENA_REDIS_URL": servers["redis_url"],
        "ARENA_DATA_DIR": str(tmp_path_factory.mktemp("arena-data")),
        "ARENA_ADMIN_TOKEN": ADMIN_TOKEN,
        "ARENA_SECRET_KEY": "test-secret-key",
        "ARENA_ARENA__LEADERBOARD_DEBOUNCE_SECONDS": "0.2",
        # Inference retries, leases and the outage breaker on a test's time scale.
        "ARENA_INFERENCE__BACKOFF_BASE_S": "0.1",
        "ARENA_INFERENCE__BACKOFF_MAX_S": "1",
        "ARENA_INFERENCE__LEASE_MARGIN_S": "1",
        "ARENA_INFERENCE__BREAKER_WINDOW": "6",
        "ARENA_INFERENCE__BREAKER_MIN_REQUESTS": "4",
        "ARENA_INFERENCE__BREAKER_COOLDOWN_S": "1",
        "ARENA_TEST_API_KEY": "sk-test-key",
        # No attention checks and room for fast voting, unless a test asks for them.
        "ARENA_ARENA__GOLD_SHARE": "0",
        # Votes posted straight from tests have heard nothing; the browser tests listen for real
        # (see live_server) and tests/arena/test_vote_page.py tests the check itself.
        "ARENA_ARENA__REQUIRE_LISTENING": "false",
        "ARENA_ARENA__VOTES_PER_MINUTE": "10000",
        "ARENA_ARENA__VOTES_PER_MINUTE_PER_IP": "10000",
    }
    os.environ.update(env)
    get_settings.cache_clear()
    dispose_engine()
    reset_redis()
    upgrade_to_head(servers["database_url"])
    return env


@pytest.fixture(autouse=True)
def clean_state(request) -> Iterator[None]:
    """Empty tables and Redis before each test that touches the arena."""
    if "arena_env" not in request.fixturenames and not any(
        name in request.fixturenames for name in ("client", "db", "live_server", "worker")
    ):
        yield
        return
    request.getfixturevalue("arena_env")
    from app.config import get_settings
    from app.db.session import get_engine
    from app.redis_client import get_redis

    get_settings.cache_clear()
    if WORKERS:  # a task left by the last test (a debounced refresh) must not land in this one
        _wait_until_idle()
    _truncate(get_engine())
    get_redis().flushdb()
    shutil.rmtree(get_settings().audio_dir, ignore_errors=True)
    yield


def _truncate(engine, attempts: int = 5) -> None:
    """Empty every table. A request the last test left in flight (a browser's closing beacon
    with play events, say) can hold a lock TRUNCATE needs in the other order: Postgres breaks
    the deadlock by failing one side, and we try again."""
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, DeadlockDetected) or attempt == attempts - 1:
                raise
            time.sleep(0.2)


WORKERS: list[subprocess.Popen] = []


def _wait_until_idle(timeout: float = 30) -> None:
    from workers.celery_app import celery_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inspect = celery_app.control.inspect(timeout=1.0, limit=len(WORKERS))
        busy = [inspect.active(), inspect.scheduled(), inspect.reserved()]
        if all(reply is not None and not any(reply.values()) for reply in busy):
            return
        time.sleep(0.1)
    raise RuntimeError("the Celery worker did not become idle")


@pytest.fixture
def settings_env(monkeypatch):
    """Change settings for one test: settings_env(ARENA_ARENA__GOLD_SHARE="1", ...)."""
    from app.config import get_settings

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


@pytest.fixture
def db(arena_env):
    from app.db.session import new_session

    session = new_session()
    yield session
    session.close()


@pytest.fixture
def client(arena_env):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as test_client:
        yield with_csrf(test_client)


def with_csrf(test_client):
    """A client that sends the CSRF token its pages would put in their forms (the
    double-submit cookie and header a browser on the arena's page sends)."""
    import secrets

    token = secrets.token_urlsafe(32)
    test_client.cookies.set("arena_csrf", token)
    test_client.headers["X-CSRF-Token"] = token
    return test_client


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def worker(arena_env) -> Iterator[subprocess.Popen]:
    """A real Celery worker process consuming every queue."""
    env = os.environ | arena_env
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
         "--queues", WORKER_QUEUES, "--concurrency", "2", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=ROOT,
    )
    from workers.celery_app import celery_app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Celery worker exited during start-up")
        if celery_app.control.ping(timeout=0.5):
            break
    else:
        raise RuntimeError("the Celery worker did not answer a ping within 60 s")
    WORKERS.append(process)
    yield process
    WORKERS.remove(process)
    _stop(process)


@pytest.fixture(scope="session")
def live_server(arena_env) -> Iterator[str]:
    """The web app served by a real uvicorn process."""
    port = free_port()
    env = os.environ | arena_env | {"ARENA_ARENA__REQUIRE_LISTENING": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz", process)
    yield url
    _stop(process)


# --- audio and bundles made in tests ---------------------------------------------------


def tone(seconds: float = 1.0, rate: int = 16_000, freq: float = 220.0, fmt: str = "WAV",
         subtype: str | None = "PCM_16") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = 0.3 * np.sin(2 * np.pi * freq * t)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def make_zip(files: dict[str, bytes | str], top: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(top + name, content)
    return buffer.getvalue()


def prompt_line(key: str, **fields) -> dict:
    line = {"id": key, "audio": f"audio/{key}.wav", "text": f"Spoken prompt {key}",
            "task": "Rhythm control", "category": "education", "language": "en",
            "level": "L3", "domain": "education"}
    line.update(fields)
    return line


def dataset_zip(keys: list[str], **overrides) -> bytes:
    lines = [prompt_line(k, **overrides) for k in keys]
    files: dict[str, bytes | str] = {"manifest.jsonl": "\n".join(json.dumps(l) for l in lines)}
    for i, key in enumerate(keys):
        files[f"audio/{key}.wav"] = tone(1.0, freq=200 + 10 * i)
    return make_zip(files)


def responses_zip(keys: list[str], freq: float = 330.0) -> bytes:
    lines = [{"prompt_id": k, "audio": f"{k}.wav", "transcript": f"answer to {k}"} for k in keys]
    files: dict[str, bytes | str] = {"manifest.jsonl": "\n".join(json.dumps(l) for l in lines)}
    for key in keys:
        files[f"{key}.wav"] = tone(1.5, freq=freq)
    return make_zip(files)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


@pytest.fixture
def seeded(client):
    """Three prompts and three models, each with a response to every prompt."""
    keys = ["p1", "p2", "p3"]
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "seed"},
                        files={"file": ("seed.zip", dataset_zip(keys), "application/zip")})
    assert reply.status_code == 201, reply.text
    models = []
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        created = client.post("/api/v1/models", headers=ADMIN,
                              json={"name": name, "organisation": f"Org {i}"})
        assert created.status_code == 201, created.text
        model = created.json()
        upload = client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                             files={"file": ("r.zip", responses_zip(keys, 300 + 50 * i),
                                             "application/zip")})
        assert upload.status_code == 201, upload.text
        models.append(model)
    return {"prompts": keys, "models": models}

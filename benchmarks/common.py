"""What the benchmarks share: a scratch database and a Redis to run against."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def bench_database(name: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh, migrated database `name` on the Postgres of ARENA_DATABASE_URL (dropped after,
    unless `keep`), or on an embedded Postgres when that is unset. Yields its SQLAlchemy URL."""
    from app.config import normalise_database_url
    from app.db.migrate import upgrade_to_head

    base = os.environ.get("ARENA_DATABASE_URL")
    if not base:
        from app.embedded import start_postgres

        server = start_postgres(Path(tempfile.mkdtemp()) / "pg", database=name)
        try:
            upgrade_to_head(server.url)
            yield server.url
        finally:
            server.stop()
        return
    url = make_url(normalise_database_url(base))
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    bench_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(bench_url)
        yield bench_url
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_redis(db: int) -> Iterator[str]:
    """Database `db` (emptied) of the Redis of ARENA_REDIS_URL, or an embedded Redis."""
    import redis

    base = os.environ.get("ARENA_REDIS_URL")
    if not base:
        from app.embedded import start_redis

        server = start_redis(Path(tempfile.mkdtemp()) / "redis")
        try:
            yield server.url
        finally:
            server.stop()
        return
    url = f"{base.rsplit('/', 1)[0]}/{db}" if base.count("/") > 2 else f"{base}/{db}"
    redis.Redis.from_url(url).flushdb()
    yield url

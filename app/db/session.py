"""One engine per process (built lazily, rebuilt after a fork) and one session per unit of work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings

_engine: Engine | None = None
_engine_pid: int | None = None
_factory: sessionmaker[Session] | None = None
_autocommit_engine: Engine | None = None


def get_engine() -> Engine:
    global _engine, _engine_pid, _factory, _autocommit_engine
    if _engine is None or _engine_pid != os.getpid():
        settings = get_settings()
        _autocommit_engine = None  # a forked child builds its own pools
        _engine = create_engine(
            settings.require_database_url(), pool_pre_ping=True, pool_size=10, max_overflow=30
        )
        _engine_pid = os.getpid()
        _factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def dispose_engine() -> None:
    """Forget the engines; used after a fork (Celery's worker_process_init) and in tests."""
    global _engine, _engine_pid, _factory, _autocommit_engine
    if _engine is not None and _engine_pid == os.getpid():
        _engine.dispose()
        if _autocommit_engine is not None:
            _autocommit_engine.dispose()
    _autocommit_engine = None
    _engine = _engine_pid = _factory = None


def new_session() -> Session:
    get_engine()
    assert _factory is not None
    return _factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits at the end of the block and rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection on which every statement commits by itself: for the workers' steps, each
    done in one statement, one round trip instead of BEGIN, the statement and COMMIT.

    Its pool does not ping a connection before lending it (a round trip per task): a
    connection lost with a database restart fails its statement instead, and the tasks retry
    on such errors (see workers/celery_app.py)."""
    global _autocommit_engine
    get_engine()
    if _autocommit_engine is None:
        _autocommit_engine = create_engine(
            get_settings().require_database_url(), isolation_level="AUTOCOMMIT",
            pool_size=10, max_overflow=30)
    with _autocommit_engine.connect() as conn:
        yield conn

"""The migrations and the ORM agree, migrations go down and up, and the vote log is append-only."""

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from app.db import Base
from app.db.migrate import alembic_config


def test_autogenerate_finds_nothing_to_change(arena_env):
    engine = create_engine(arena_env["ARENA_DATABASE_URL"])
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(arena_env):
    from alembic import command

    url = make_url(arena_env["ARENA_DATABASE_URL"])
    scratch = f"{url.database}_scratch"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        scratch_url = url.set(database=scratch).render_as_string(hide_password=False)
        config = alembic_config(scratch_url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        command.upgrade(config, "head")
        engine = create_engine(scratch_url)
        with engine.connect() as conn:
            tables = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        engine.dispose()
        assert {"prompts", "speech_models", "responses", "battles", "votes", "raters",
                "jobs", "leaderboard_snapshots"} <= tables
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def test_the_vote_log_refuses_update_and_delete(client, seeded, db):
    page = client.get("/arena")
    token = page.text.split('data-battle="')[1].split('"')[0]
    assert client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 200
    for statement in ("UPDATE votes SET outcome = 'b'", "DELETE FROM votes"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(statement))
        db.rollback()
    assert db.execute(text("SELECT outcome FROM votes")).scalars().all() == ["a"]

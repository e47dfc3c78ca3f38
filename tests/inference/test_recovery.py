"""Inference tasks the broker lost: a response left pending (its message dropped) or running
(its worker gone with the message) is queued again once it is overdue, and still finishes and
counts exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import select, text

from tests.conftest import ADMIN, ROOT, claim_redis_db, dataset_zip, stored_files
from tests.fakes.openai_server import running
from tests.fakes.server import Control


def _job(client, db, url: str, keys: list[str]) -> tuple[int, list[int]]:
    """A job over `keys` whose response rows are made but whose tasks are not queued."""
    from app.config import get_settings
    from app.db.models import SpeechModel
    from app.inference import service

    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "d"},
                        files={"file": ("d.zip", dataset_zip(keys), "application/zip")})
    assert reply.status_code == 201, reply.text
    model_id = client.post("/api/v1/models", headers=ADMIN, json={
        "name": "omni", "adapter": {"kind": "openai_chat_audio", "base_url": url,
                                    "model": "fake", "timeout_s": 5},
    }).json()["id"]
    job, ids = service.start_job(db, db.get(SpeechModel, model_id), get_settings())
    db.commit()
    return job.id, sorted(ids)


def _set(db, response_id: int, assignments: str) -> None:
    db.execute(text(f"UPDATE responses SET {assignments} WHERE id = :id"), {"id": response_id})
    db.commit()


def test_only_overdue_responses_are_taken_back_and_each_once(client, db):
    from app.db.session import autocommit
    from app.inference import service

    _, ids = _job(client, db, "http://127.0.0.1:9/v1", ["p1", "p2", "p3", "p4", "p5", "p6"])
    lost_queued, retry_due_later, lost_running, live_running, waiting_long, ready = ids
    _set(db, lost_queued, "created_at = now() - interval '60 seconds'")
    # Handed back 60 s ago to wait for a retry the server asked to come 10 minutes later.
    _set(db, retry_due_later, "updated_at = now() - interval '60 seconds', "
         "claimed_until = now() + interval '10 minutes'")
    _set(db, lost_running, "status = 'running', claim_token = 'dead', "
         "claimed_until = now() - interval '60 seconds'")
    _set(db, live_running, "status = 'running', claim_token = 'alive', "
         "claimed_until = now() + interval '60 seconds', created_at = now() - interval '1 hour'")
    _set(db, waiting_long, "claimed_until = now() - interval '5 seconds', "
         "created_at = now() - interval '1 hour'")  # due 5 s ago: not yet lost
    _set(db, ready, "status = 'ready', created_at = now() - interval '1 hour'")

    with autocommit() as conn:
        taken = service.take_back_lost(conn, 30.0)
        again = service.take_back_lost(conn, 30.0)

    assert sorted(taken) == [(lost_queued, 0), (lost_running, 0)]
    assert again == []  # taken back rows are due anew, 30 s from now
    rows = {row.id: row for row in db.execute(text(
        "SELECT id, status, claim_token, extract(epoch FROM claimed_until - now()) AS due_in "
        "FROM responses"))}
    for response_id in (lost_queued, lost_running):
        assert rows[response_id].status == "pending"
        assert rows[response_id].claim_token is None  # the dead task's claim is void
        assert 25 < rows[response_id].due_in <= 30
    assert rows[live_running].claim_token == "alive"


def test_a_handed_back_response_is_due_when_its_retry_is(client, db):
    """A task that hands its response back for a later attempt records when that attempt is
    due, so a long Retry-After is not mistaken for a lost task."""
    from app.db.session import autocommit
    from app.inference import service

    _, [response_id] = _job(client, db, "http://127.0.0.1:9/v1", ["p1"])
    with autocommit() as conn:
        claimed = service.claim(conn, response_id, 1.0)
        assert service.release(conn, claimed, due_in=600.0, error="HTTP 429: slow down",
                               attempt=0)
        due_in = conn.execute(text("SELECT extract(epoch FROM claimed_until - now()) "
                                   "FROM responses WHERE id = :id"), {"id": response_id}).scalar()
        assert 590 < due_in <= 600
        assert service.take_back_lost(conn, 30.0) == []


@pytest.mark.slow
def test_a_job_whose_messages_were_dropped_is_brought_to_done_exactly_once(
        client, db, arena_env, request):
    from app.db.models import Response

    broker, release = claim_redis_db(arena_env["ARENA_REDIS_URL"])
    request.addfinalizer(release)
    queue = redis.Redis.from_url(broker)
    queue.flushdb()
    env = os.environ | arena_env | {"ARENA_REDIS_URL": broker,
                                    "ARENA_INFERENCE__LOST_AFTER_S": "1",
                                    "ARENA_INFERENCE__RECOVERY_INTERVAL_S": "0.5"}
    control = Control()
    with running(control) as url:
        job_id, [dropped, orphaned, delivered] = _job(client, db, url, ["p1", "p2", "p3"])
        producer = Celery(broker=broker)
        for response_id in (dropped, delivered):
            producer.send_task("inference.generate", args=[response_id, 0], queue="inference")
        assert queue.llen("inference") == 2
        queue.delete("inference")  # the broker loses both messages
        # A worker vanished in the middle of this one, and its message went with it.
        _set(db, orphaned, "status = 'running', claim_token = 'dead', "
             "claimed_until = now() - interval '2 seconds'")
        # This one's message is still there: its task and the recovered one race, harmlessly.
        producer.send_task("inference.generate", args=[delivered, 0], queue="inference")
        time.sleep(1.2)  # every response is now overdue by more than ARENA_..._LOST_AFTER_S

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--queues",
             "inference", "--pool", "threads", "--concurrency", "4", "--loglevel", "WARNING",
             "--hostname", "recovery@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"], env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = db.execute(text("SELECT status FROM jobs WHERE id = :id"),
                                    {"id": job_id}).scalar()
                db.commit()
                if status in ("done", "failed"):
                    break
                time.sleep(0.1)
            time.sleep(2.0)  # sweeps and duplicate deliveries that would count twice land now
        finally:
            worker.terminate()
            worker.wait(30)
        producer.close()

    job = db.execute(text("SELECT status, done, failed, total FROM jobs WHERE id = :id"),
                     {"id": job_id}).one()
    assert tuple(job) == ("done", 3, 0, 3)
    db.expire_all()
    rows = db.scalars(select(Response).order_by(Response.id)).all()
    assert [(row.status, row.attempts, row.claim_token) for row in rows] == [("ready", 1, None)] * 3
    assert len(control.requests) == 3  # one request per response, none twice
    audio = stored_files(Path(arena_env["ARENA_DATA_DIR"]) / "audio")
    # the prompts and exactly one answer each (FLAC), each prompt converted once (WAV)
    assert sorted(file.suffix for file in audio) == [".flac"] * (3 + 3) + [".wav"] * 3

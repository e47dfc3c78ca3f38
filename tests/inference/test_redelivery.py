"""A worker killed in the middle of an inference task: after redelivery the task completes
exactly once (one answer stored, counted once in its job).

The test runs its own workers on a Redis database of their own with a short visibility
timeout, so that the killed worker's unacknowledged task is handed out again within seconds,
and the session's worker never sees it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select, text

from tests.conftest import ADMIN, ROOT, claim_redis_db, dataset_zip, stored_files
from tests.fakes.openai_server import running
from tests.fakes.server import Control

pytestmark = pytest.mark.slow


def _start_worker(env: dict[str, str], name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--queues",
         "inference", "--concurrency", "1", "--loglevel", "WARNING", "--hostname",
         f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=ROOT, start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_task_whose_worker_is_killed_completes_exactly_once(client, db, arena_env, request):
    from app.config import get_settings
    from app.db.models import Response, SpeechModel
    from app.inference import service

    broker, release = claim_redis_db(arena_env["ARENA_REDIS_URL"])
    request.addfinalizer(release)
    env = os.environ | arena_env | {"ARENA_REDIS_URL": broker,
                                    "ARENA_BROKER_VISIBILITY_TIMEOUT_S": "2"}
    control = Control()
    with running(control) as url:
        client.post("/api/v1/datasets", headers=ADMIN, data={"name": "d"},
                    files={"file": ("d.zip", dataset_zip(["p1"]), "application/zip")})
        model_id = client.post("/api/v1/models", headers=ADMIN, json={
            "name": "omni", "adapter": {"kind": "openai_chat_audio", "base_url": url,
                                        "model": "fake", "timeout_s": 5},
        }).json()["id"]
        job, ids = service.start_job(db, db.get(SpeechModel, model_id), get_settings())
        db.commit()
        producer = Celery(broker=broker)
        producer.conf.broker_transport_options = {"visibility_timeout": 2}
        producer.send_task("inference.generate", args=[ids[0], 0], queue="inference")

        control.queue("slow")  # the first request hangs until the worker is dead
        first = _start_worker(env, "doomed")
        try:
            _wait(lambda: control.requests, 30, "the first request")
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, without warning
            first.wait(10)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        assert db.scalar(select(Response.status).where(Response.id == ids[0])) == "running"

        second = _start_worker(env, "heir")
        try:
            def finished():
                db.expire_all()
                return db.scalar(select(Response.status).where(Response.id == ids[0])) == "ready"

            _wait(finished, 60, "the redelivered task to finish")
            time.sleep(1.0)  # any further duplicate would land now
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(15)
        producer.close()

    db.expire_all()
    job_row = db.execute(text("SELECT status, done, failed, total FROM jobs WHERE id = :id"),
                         {"id": job.id}).one()
    assert tuple(job_row) == ("done", 1, 0, 1)
    assert db.scalar(select(Response.attempts).where(Response.id == ids[0])) == 1
    assert len(control.requests) == 2  # the killed attempt and the one that finished
    audio = stored_files(Path(arena_env["ARENA_DATA_DIR"]) / "audio")
    # the prompt and exactly one answer (FLAC), and the prompt converted for the model (WAV)
    assert sorted(file.suffix for file in audio) == [".flac", ".flac", ".wav"]

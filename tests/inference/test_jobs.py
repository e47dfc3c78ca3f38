"""Inference jobs end to end: the REST call, real Celery workers, the real openai client and a
fake OpenAI-compatible server on a real socket."""

from __future__ import annotations

import base64
import io
import time

import pytest
import soundfile as sf

from tests.conftest import ADMIN, dataset_zip, responses_zip, stored_files
from tests.fakes.openai_server import running
from tests.fakes.server import Control

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def fake():
    control = Control()
    with running(control) as url:
        yield control, url


@pytest.fixture
def openai_fake(fake):
    control, url = fake
    control.reset()
    return control, url


def add_prompts(client, keys):
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "jobs"},
                        files={"file": ("d.zip", dataset_zip(keys), "application/zip")})
    assert reply.status_code == 201, reply.text


def add_model(client, base_url, name="omni", **adapter):
    reply = client.post("/api/v1/models", headers=ADMIN, json={
        "name": name, "organisation": "Lab", "input_sample_rate": 16_000,
        "adapter": {"kind": "openai_chat_audio", "base_url": base_url, "model": "fake-omni",
                    "api_key_env": "ARENA_TEST_API_KEY", "timeout_s": 5, **adapter},
    })
    assert reply.status_code == 201, reply.text
    return reply.json()


def run_job(client, model_id, body=None, timeout=60):
    reply = client.post(f"/api/v1/models/{model_id}/inference", headers=ADMIN, json=body)
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def responses(client, model_id):
    return {r["prompt_id"]: r for r in
            client.get(f"/api/v1/models/{model_id}/responses", headers=ADMIN).json()}


def test_a_job_fills_in_every_prompt_through_the_adapter(client, openai_fake):
    control, base_url = openai_fake
    add_prompts(client, ["p1", "p2", "p3"])
    model = add_model(client, base_url)
    assert model["warnings"] == []

    job = run_job(client, model["id"])
    assert job | {"errors": [], "status": "done"} == job
    assert (job["total"], job["done"], job["failed"], job["pending"]) == (3, 3, 0, 0)

    answers = responses(client, model["id"])
    assert sorted(answers) == ["p1", "p2", "p3"]
    for answer in answers.values():
        assert answer["status"] == "ready" and answer["source"] == "openai_chat_audio"
        assert answer["transcript"] == "a fake spoken answer"
        assert answer["latency_ms"] > 0 and answer["model_version"]
        assert answer["duration_s"] > 0 and answer["attempts"] == 1
        assert answer["usage"]["total_tokens"] > 0
    # The model heard each prompt as WAV at its own input rate, with the key from the env var.
    assert len(control.requests) == 3
    for request in control.requests:
        part = request["json"]["messages"][-1]["content"][0]
        wav = base64.b64decode(part["input_audio"]["data"])
        assert part["input_audio"]["format"] == "wav"
        assert sf.info(io.BytesIO(wav)).samplerate == 16_000
        assert request["headers"]["authorization"] == "Bearer sk-test-key"
    assert client.get(f"/api/v1/models/{model['id']}", headers=ADMIN).json()[
        "responses_ready"] == 3

    again = run_job(client, model["id"])  # nothing is missing: nothing is asked for
    assert (again["status"], again["total"]) == ("done", 0)
    assert len(control.requests) == 3


def test_a_prompt_is_converted_once_per_input_rate_for_every_model(client, openai_fake,
                                                                     arena_env):
    """The converted prompt is kept in the audio store: a second model at the same rate gets
    the same bytes without converting again; a model at another rate gets its own."""
    from pathlib import Path

    control, base_url = openai_fake
    add_prompts(client, ["p1", "p2"])
    root = Path(arena_env["ARENA_DATA_DIR"]) / "audio"

    def heard():
        return sorted(base64.b64decode(r["json"]["messages"][-1]["content"][0]["input_audio"][
            "data"]) for r in control.requests)

    def converted():
        return {file: file.stat().st_ino for file in stored_files(root) if file.suffix == ".wav"}

    run_job(client, add_model(client, base_url, name="first")["id"])
    first, wavs = heard(), converted()
    assert len(wavs) == 2 and sorted(file.read_bytes() for file in wavs) == first
    control.reset()
    run_job(client, add_model(client, base_url, name="second")["id"])
    assert heard() == first and converted() == wavs  # read back, not written again
    control.reset()
    other = add_model(client, base_url, name="wideband")
    client.patch(f"/api/v1/models/{other['id']}", headers=ADMIN,
                 json={"input_sample_rate": 24_000}).raise_for_status()
    run_job(client, other["id"])
    assert [sf.info(io.BytesIO(wav)).samplerate for wav in heard()] == [24_000] * 2
    assert len(converted()) == 4

    def durations(wavs):
        return sorted(sf.info(io.BytesIO(wav)).duration for wav in wavs)

    assert durations(heard()) == pytest.approx(durations(first), abs=1e-3)  # the same prompts


def test_transient_errors_are_retried_after_the_servers_retry_after(client, openai_fake):
    control, base_url = openai_fake
    add_prompts(client, ["p1"])
    model = add_model(client, base_url)
    control.queue("500", "429")

    job = run_job(client, model["id"])
    assert (job["status"], job["done"], job["failed"]) == ("done", 1, 0)
    answer = responses(client, model["id"])["p1"]
    assert answer["status"] == "ready" and answer["attempts"] == 3
    first, second, third = control.requests
    assert third["at"] - second["at"] >= 7.0  # the 429 said Retry-After: 7


def test_other_client_errors_fail_at_once_and_can_be_retried(client, openai_fake):
    control, base_url = openai_fake
    add_prompts(client, ["p1", "p2"])
    model = add_model(client, base_url)
    control.reset(default="400")

    job = run_job(client, model["id"])
    assert (job["status"], job["done"], job["failed"], job["pending"]) == ("failed", 0, 2, 0)
    assert len(control.requests) == 2  # a 400 is never retried
    assert sorted(e["prompt_id"] for e in job["errors"]) == ["p1", "p2"]
    assert all("HTTP 400" in e["error"] for e in job["errors"])
    failed = responses(client, model["id"])
    assert all(r["status"] == "failed" and "HTTP 400" in r["error"] for r in failed.values())

    control.reset()
    assert run_job(client, model["id"])["total"] == 0  # failed ones are not "missing"
    retried = run_job(client, model["id"], {"retry_failed": True, "prompt_ids": ["p2"]})
    assert (retried["total"], retried["done"]) == (1, 1)
    after = responses(client, model["id"])
    assert (after["p1"]["status"], after["p2"]["status"]) == ("failed", "ready")
    assert after["p2"]["error"] is None


def test_a_reply_that_is_not_audio_fails_and_never_enters_a_battle(client, openai_fake):
    control, base_url = openai_fake
    add_prompts(client, ["p1"])
    model = add_model(client, base_url)
    control.reset(default="bad_audio")
    job = run_job(client, model["id"])
    assert job["status"] == "failed"
    answer = responses(client, model["id"])["p1"]
    assert answer["status"] == "failed" and "not usable audio" in answer["error"]

    other = client.post("/api/v1/models", headers=ADMIN, json={"name": "uploaded"}).json()
    client.post(f"/api/v1/models/{other['id']}/responses", headers=ADMIN,
                files={"file": ("r.zip", responses_zip(["p1"]), "application/zip")})
    assert "No battle is ready yet" in client.get("/arena").text  # the failed one cannot pair


def test_a_model_in_an_outage_leaves_pairing_until_a_probe_succeeds(client, openai_fake):
    control, base_url = openai_fake
    keys = [f"p{i}" for i in range(6)]
    add_prompts(client, keys)
    model = add_model(client, base_url, max_concurrency=1)
    control.reset(default="500")

    reply = client.post(f"/api/v1/models/{model['id']}/inference", headers=ADMIN)
    job_id = reply.json()["job_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/models/{model['id']}", headers=ADMIN).json()
        if state["outage_since"]:
            break
        time.sleep(0.05)
    assert state["outage_since"] and "of the last" in state["outage_reason"]
    assert "HTTP 500" in state["outage_reason"]
    requests_when_opened = len(control.requests)
    time.sleep(0.5)  # inside the cooldown nothing is sent
    assert len(control.requests) <= requests_when_opened + 1

    control.reset()  # the service recovers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert (job["status"], job["done"]) == ("done", 6), job["errors"]
    assert client.get(f"/api/v1/models/{model['id']}", headers=ADMIN).json()[
        "outage_since"] is None


def test_a_job_for_an_upload_model_is_refused(client):
    model = client.post("/api/v1/models", headers=ADMIN, json={"name": "uploads-only"}).json()
    reply = client.post(f"/api/v1/models/{model['id']}/inference", headers=ADMIN)
    assert reply.status_code == 409 and "upload" in reply.json()["message"]


def test_unknown_prompt_ids_are_refused_and_nothing_is_created(client, db, openai_fake):
    _, base_url = openai_fake
    add_prompts(client, ["p1"])
    model = add_model(client, base_url)
    reply = client.post(f"/api/v1/models/{model['id']}/inference", headers=ADMIN,
                        json={"prompt_ids": ["p1", "nope"]})
    assert reply.status_code == 422 and "nope" in reply.json()["message"]
    assert client.get(f"/api/v1/models/{model['id']}/responses", headers=ADMIN).json() == []
    from sqlalchemy import text

    assert db.execute(text("SELECT count(*) FROM jobs")).scalar() == 0


def test_stored_audio_matches_ready_responses(client, openai_fake, arena_env):
    _, base_url = openai_fake
    add_prompts(client, ["p1", "p2"])
    model = add_model(client, base_url)
    run_job(client, model["id"])
    from pathlib import Path

    files = stored_files(Path(arena_env["ARENA_DATA_DIR"]) / "audio")
    # two prompts and two answers (FLAC), and each prompt as the model hears it (WAV at its
    # input rate, kept for the next model), nothing left over
    assert sorted(file.suffix for file in files) == [".flac"] * (2 + 2) + [".wav"] * 2


def test_an_upload_replaces_a_failed_inference(client, openai_fake):
    control, base_url = openai_fake
    add_prompts(client, ["p1", "p2"])
    model = add_model(client, base_url)
    control.reset(default="400")
    run_job(client, model["id"])
    reply = client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                        files={"file": ("r.zip", responses_zip(["p1"]), "application/zip")})
    assert reply.status_code == 201, reply.text
    after = responses(client, model["id"])
    assert after["p1"] | {"status": "ready", "source": "upload", "error": None} == after["p1"]
    assert after["p2"]["status"] == "failed"


def test_a_new_adapter_ends_an_outage(client, db, openai_fake):
    _, base_url = openai_fake
    model = add_model(client, base_url)
    from sqlalchemy import text

    db.execute(text("UPDATE speech_models SET outage_since = now(), outage_reason = 'x' "
                    "WHERE id = :id"), {"id": model["id"]})
    db.commit()
    changed = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN, json={
        "adapter": {"kind": "openai_chat_audio", "base_url": base_url, "model": "other"}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["outage_since"], changed.json()["outage_reason"]) == (None, None)


def test_tasks_survive_the_database_dropping_their_connections(client, db, openai_fake):
    """The workers' task connections are not pinged before use: when Postgres drops them (a
    restart, a failover), the next task's statement fails, and the task runs again."""
    _, base_url = openai_fake
    add_prompts(client, ["p1", "p2"])
    model = add_model(client, base_url)
    assert run_job(client, model["id"], {"prompt_ids": ["p1"]})["done"] == 1
    from sqlalchemy import text

    dropped = db.execute(text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    db.commit()
    assert dropped >= 1
    job = run_job(client, model["id"])
    assert (job["status"], job["done"], job["failed"]) == ("done", 1, 0)

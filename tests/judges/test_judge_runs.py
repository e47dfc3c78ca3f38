"""Judge runs end to end: REST, real Celery workers, the real google-genai client and a fake
Gemini server. A judge votes under its own rater; invalid and inconsistent verdicts are kept
but never counted as votes."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN
from tests.fakes.gemini_server import running
from tests.fakes.server import Control

pytestmark = pytest.mark.usefixtures("worker")

FIRST, SECOND = "text:First one wins", "text:Second one wins."


@pytest.fixture(scope="module")
def fake():
    control = Control()
    with running(control) as url:
        yield control, url


@pytest.fixture
def gemini(fake):
    control, url = fake
    control.reset()
    return control, url


def add_judge(client, base_url, **fields):
    reply = client.post("/api/v1/judges", headers=ADMIN, json={
        "name": "gemini-judge", "kind": "gemini_pairwise", "model": "gemini-2.5-pro",
        "api_key_env": "ARENA_TEST_API_KEY", "base_url": base_url, "both_orders": True,
        "max_concurrency": 1, **fields})
    assert reply.status_code == 201, reply.text
    return reply.json()


def run(client, judge_id, battles, timeout=60):
    reply = client.post(f"/api/v1/judges/{judge_id}/runs", headers=ADMIN,
                        json={"battles": battles})
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the run did not finish: {job}")


def judge_votes(db):
    return db.execute(text(
        "SELECT v.outcome, b.model_a_id, b.model_b_id FROM votes v "
        "JOIN raters r ON r.id = v.rater_id JOIN battles b ON b.id = v.battle_id "
        "WHERE r.kind = 'judge' ORDER BY v.id")).all()


def test_a_consistent_judge_votes_under_its_own_name(client, db, seeded, gemini):
    control, url = gemini
    judge = add_judge(client, url)
    # One judgement at a time (max_concurrency 1): A heard first wins, then A heard second
    # wins; the other judgement: B, then B.
    control.queue(FIRST, SECOND, SECOND, FIRST)
    job = run(client, judge["id"], 2)
    assert (job["status"], job["done"], job["failed"]) == ("done", 2, 0)
    assert sorted(v.outcome for v in judge_votes(db)) == ["a", "b"]
    assert len(control.requests) == 4  # both orders each time

    shown = client.get(f"/api/v1/judges/{judge['id']}", headers=ADMIN).json()
    assert shown["judgements"]["voted"] == 2
    assert shown["first_position"] | {"picked_first": 2, "verdicts": 4, "rate": 0.5} == \
        shown["first_position"]
    deadline = time.monotonic() + 20  # the leaderboard catches up after a debounce
    while time.monotonic() < deadline:
        board = client.get("/api/v1/leaderboard", params={"rater": "gemini-judge"}).json()
        if sum(m["matches"] for m in board["models"]) == 4:  # two votes, two models each
            break
        time.sleep(0.2)
    assert sum(m["matches"] for m in board["models"]) == 4, board


def test_a_judge_that_always_picks_the_first_answer_casts_no_vote(client, db, seeded, gemini):
    control, url = gemini
    control.reset(default=FIRST)
    judge = add_judge(client, url)
    job = run(client, judge["id"], 3)
    assert (job["status"], job["done"]) == ("done", 3)
    assert judge_votes(db) == []
    shown = client.get(f"/api/v1/judges/{judge['id']}", headers=ADMIN).json()
    assert shown["judgements"]["inconsistent"] == 3
    assert shown["first_position"]["rate"] == 1.0
    reasons = db.execute(text("SELECT reason FROM judgements")).scalars().all()
    assert all("the two orders disagree" in r for r in reasons)


def test_an_unparseable_reply_is_invalid_and_a_429_is_retried(client, db, seeded, gemini):
    control, url = gemini
    judge = add_judge(client, url, both_orders=False)
    control.queue("text:Both are lovely, I cannot choose.", "429", FIRST)
    job = run(client, judge["id"], 2)
    assert (job["status"], job["done"], job["failed"]) == ("done", 2, 0)
    statuses = db.execute(text("SELECT status FROM judgements")).scalars().all()
    assert sorted(statuses) == ["invalid", "voted"]
    assert [v.outcome for v in judge_votes(db)] == ["a"]
    replies = db.execute(text("SELECT replies FROM judgements WHERE status = 'invalid'")).scalar()
    assert replies == ["Both are lovely, I cannot choose."]


def test_a_bad_judge_config_is_refused(client):
    reply = client.post("/api/v1/judges", headers=ADMIN, json={
        "name": "j", "kind": "gemini_pairwise", "api_key_env": "AIzaSyLiteralKey"})
    assert reply.status_code == 422 and "NAME of an environment variable" in reply.json()["message"]
    reply = client.post("/api/v1/judges", headers=ADMIN, json={"name": "j", "kind": "oracle"})
    assert reply.status_code == 422


def test_a_run_needs_battles_to_serve(client, fake):
    _, url = fake
    judge = add_judge(client, url)
    reply = client.post(f"/api/v1/judges/{judge['id']}/runs", headers=ADMIN, json={"battles": 1})
    assert reply.status_code == 409 and "no battle can be served" in reply.json()["message"]

"""A pointwise pipeline judge (ParaS2S) scoring every response on real workers, through the
real google-genai client and a fake Gemini server: transcript, caption, score, and the table
of mean scores per model."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN
from tests.fakes.gemini_server import running
from tests.fakes.server import Control

pytestmark = pytest.mark.usefixtures("worker")


def stage(url, model):
    return {"kind": "gemini", "model": model, "base_url": url, "api_key_env": "ARENA_TEST_API_KEY"}


def test_a_pipeline_judge_scores_every_response(client, db, seeded):
    control = Control(default="text:Score: 4. The answer fits the calm request.")
    with running(control) as url:
        judge = client.post("/api/v1/judges", headers=ADMIN, json={
            "name": "paras2s-judge", "kind": "pipeline_pointwise",
            "asr": stage(url, "gemini-2.5-flash"), "caption": stage(url, "gemini-2.5-flash"),
            "scorer": stage(url, "gemini-2.5-pro")})
        assert judge.status_code == 201, judge.text
        judge = judge.json()
        reply = client.post(f"/api/v1/judges/{judge['id']}/runs", headers=ADMIN, json={})
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["job_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert (job["status"], job["total"], job["done"]) == ("done", 9, 9)
        assert len(control.requests) == 27  # transcript, caption and score for each response

    rows = db.execute(text("SELECT status, score, transcript, caption FROM scores")).all()
    assert {(r.status, r.score) for r in rows} == {("scored", 4)}
    assert all(r.transcript and r.caption for r in rows)
    table = client.get(f"/api/v1/judges/{judge['id']}/scores", headers=ADMIN).json()
    assert [(m["mean"], m["n"]) for m in table["models"]] == [(4.0, 3)] * 3
    again = client.post(f"/api/v1/judges/{judge['id']}/runs", headers=ADMIN, json={})
    assert again.status_code == 409 and "already has a score" in again.json()["message"]
    page = client.get("/scores").text
    assert "paras2s-judge" in page and "4.00" in page


def test_runs_take_the_unit_of_their_kind(client, seeded):
    judge = client.post("/api/v1/judges", headers=ADMIN, json={
        "name": "p", "kind": "pipeline_pointwise"}).json()
    reply = client.post(f"/api/v1/judges/{judge['id']}/runs", headers=ADMIN,
                        json={"battles": 3})
    assert reply.status_code == 422 and "scores responses" in reply.json()["message"]

"""Blind 1–5 ratings of single answers by people, and their correlation with a pointwise
judge's scores."""

from __future__ import annotations

import re

import scipy.stats
from sqlalchemy import text

from tests.conftest import ADMIN, with_csrf

MODELS = ("alpha", "beta", "gamma")


def task_token(html: str) -> str:
    found = re.search(r'data-task="([^"]+)"', html)
    assert found, "no rating task on the page"
    return found.group(1)


def test_rate_answers_one_at_a_time_blind(client, seeded, db):
    page = client.get("/rate")
    assert page.status_code == 200
    token = task_token(page.text)
    assert not any(name in page.text for name in MODELS)  # nothing names the model
    for slot in ("prompt", "answer"):
        clip = client.get(f"/rate/audio/{token}/{slot}")
        assert clip.status_code == 200 and clip.headers["content-type"] == "audio/flac"
        assert not any(name in str(clip.headers) for name in MODELS)

    reply = client.post(f"/rate/{token}", data={"score": "4"}, headers={"HX-Request": "true"})
    assert reply.status_code == 200 and "Your score: <strong>4</strong>" in reply.text
    assert task_token(reply.text) != token  # the next answer
    assert db.execute(text("SELECT score FROM human_ratings WHERE token = :t"),
                      {"t": token}).scalar() == 4
    again = client.post(f"/rate/{token}", data={"score": "2"})
    assert again.status_code == 409 and "already rated" in again.json()["message"]
    bad = client.post(f"/rate/{task_token(reply.text)}", data={"score": "6"})
    assert bad.status_code == 422 and "from 1 to 5" in bad.json()["message"]


def test_someone_elses_task_is_not_yours(client, seeded):
    token = task_token(client.get("/rate").text)
    client.cookies.clear()  # another visitor
    with_csrf(client)
    assert client.post(f"/rate/{token}", data={"score": "3"}).status_code == 404
    assert client.get(f"/rate/audio/{token}/answer").status_code == 404


def test_every_answer_once_then_nothing_left(client, seeded):
    tokens = set()
    page = client.get("/rate").text
    for _ in range(9):  # three prompts, three models
        token = task_token(page)
        tokens.add(token)
        page = client.post(f"/rate/{token}", data={"score": "3"}).text
    assert len(tokens) == 9 and "Nothing left to rate" in page


def test_judge_scores_correlate_with_peoples_ratings(client, seeded, db):
    judge = client.post("/api/v1/judges", headers=ADMIN, json={
        "name": "pipe", "kind": "pipeline_pointwise"}).json()
    responses = db.execute(text("SELECT id FROM responses ORDER BY id")).scalars().all()
    judged = [5, 4, 4, 3, 2, 1, 2, 5, 3]
    people = [[5, 4], [4], [3, 5], [3], [1, 2], [2], [1], [4, 5], [3, 3]]
    raters = [db.execute(text("INSERT INTO raters (kind, name, created_at) VALUES "
                              "('human', :n, now()) RETURNING id"), {"n": f"p{i}"}).scalar()
              for i in range(2)]
    for response, score, ratings in zip(responses, judged, people):
        db.execute(text("INSERT INTO scores (response_id, judge_id, status, score, replies, "
                        "created_at) VALUES (:r, :j, 'scored', :s, '[]', now())"),
                   {"r": response, "j": judge["id"], "s": score})
        for rater, rating in zip(raters, ratings):
            db.execute(text("INSERT INTO human_ratings (token, response_id, rater_id, "
                            "served_at, score, scored_at) VALUES (:t, :r, :h, now(), :s, now())"),
                       {"t": f"t{response}-{rater}", "r": response, "h": rater, "s": rating})
    db.commit()
    (row,) = client.get("/api/v1/agreement").json()["pointwise"]
    means = [sum(r) / len(r) for r in people]
    expected = scipy.stats.pearsonr(judged, means)
    assert row["responses"] == 9
    assert row["pearson"] == round(expected.statistic, 4)
    assert row["fisher_ci"][0] < row["pearson"] < row["fisher_ci"][1]
    assert "Pointwise scores against people" in client.get("/agreement").text

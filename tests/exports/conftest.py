"""A small arena with a vote log, judge scores and people's ratings, for the export tests."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db.base import utcnow
from app.db.models import Battle, HumanRating, Judge, Prompt, Rater, Response, Score, Vote
from tests.conftest import ADMIN, make_zip, prompt_line, responses_zip, tone

PROMPTS = [
    ("edu-1", {"domain": "education", "level": "L1", "task": "Knowledge QA"}),
    ("soc-1", {"domain": "social companionship", "level": "L2",
               "task": "Emotion recognition and expression", "emotion": "sad", "age": "adult",
               "gender": "female", "contrast_group": "cg-1", "text_cn": "我今天很难过。",
               "task_description": "Hears the sadness and answers gently."}),
    ("soc-2", {"domain": "social companionship", "level": "L2",
               "task": "Emotion recognition and expression", "emotion": "happy",
               "sarcasm": "no", "contrast_group": "cg-1", "language": "zh"}),
    ("med/1 ü", {"domain": "medical consultation", "level": "L4", "task": "Advice",
                 "category": None}),
]
MODELS = ("alpha", "beta", "gamma")
PEOPLE = ("3f0c1e2d9a8b4c7d8e6f5a4b3c2d1e0f", "annotator.jane@example.org")
JUDGE = "gemini-judge"


def insert_vote(db, raters, responses, prompt, a, b, outcome, rater, when, gold=(None, None)):
    battle = Battle(token=secrets.token_hex(16),
                    prompt_id=responses[prompt, a].prompt_id,
                    response_a_id=responses[prompt, a].id, response_b_id=responses[prompt, b].id,
                    model_a_id=responses[prompt, a].model_id,
                    model_b_id=responses[prompt, b].model_id,
                    rater_id=raters[rater].id, served_at=when,
                    expires_at=when + timedelta(hours=1), gold_bad_slot=gold[0],
                    gold_kind=gold[1])
    db.add(battle)
    db.flush()
    vote = Vote(battle_id=battle.id, rater_id=raters[rater].id, outcome=outcome,
                created_at=when + timedelta(seconds=20))
    db.add(vote)
    db.flush()
    return vote


@pytest.fixture
def arena_log(client, db):
    """Four prompts (two datasets' worth of fields, one with a key unsafe for a file name),
    three models answering each, two people and one judge; 14 votes (ties among them), judge
    scores and people's ratings."""
    lines = [prompt_line(key, **fields) for key, fields in PROMPTS]
    files = {"manifest.jsonl": "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)}
    for i, (key, _) in enumerate(PROMPTS):
        files[f"audio/{key}.wav"] = tone(1.0 + 0.25 * i, freq=200 + 40 * i)
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "export-set"},
                        files={"file": ("e.zip", make_zip(files), "application/zip")})
    assert reply.status_code == 201, reply.text
    keys = [key for key, _ in PROMPTS]
    for i, name in enumerate(MODELS):
        model = client.post("/api/v1/models", headers=ADMIN, json={"name": name}).json()
        upload = client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                             files={"file": ("r.zip", responses_zip(keys, 300 + 70 * i),
                                             "application/zip")})
        assert upload.status_code == 201, upload.text

    raters = {name: Rater(kind="human", name=name) for name in PEOPLE}
    raters[JUDGE] = Rater(kind="judge", name=JUDGE)
    db.add_all(raters.values())
    db.flush()
    judge = Judge(name=JUDGE, kind="pipeline_pointwise", config={"name": JUDGE},
                  rater_id=raters[JUDGE].id)
    db.add(judge)
    db.flush()
    responses = {(r.prompt.key, r.model.name): r for r in db.scalars(select(Response))}

    start = utcnow() - timedelta(days=1)
    plan = [  # prompt, model a, model b, outcome, rater
        ("edu-1", "alpha", "beta", "a", PEOPLE[0]),
        ("edu-1", "beta", "gamma", "b", PEOPLE[1]),
        ("soc-1", "gamma", "alpha", "a", PEOPLE[0]),
        ("soc-1", "alpha", "beta", "tie", PEOPLE[1]),
        ("soc-2", "beta", "alpha", "b", JUDGE),
        ("soc-2", "gamma", "beta", "a", PEOPLE[0]),
        ("med/1 ü", "alpha", "gamma", "both_bad", PEOPLE[0]),
        ("med/1 ü", "beta", "alpha", "a", JUDGE),
        ("edu-1", "gamma", "alpha", "b", JUDGE),
        ("soc-1", "beta", "gamma", "a", PEOPLE[1]),
        ("soc-2", "alpha", "gamma", "b", PEOPLE[1]),
        ("med/1 ü", "gamma", "beta", "b", PEOPLE[0]),
        ("edu-1", "alpha", "gamma", "a", JUDGE),
        ("soc-1", "alpha", "beta", "b", PEOPLE[0]),
    ]
    votes = [insert_vote(db, raters, responses, *row, start + timedelta(minutes=n))
             for n, row in enumerate(plan)]

    for n, ((prompt, model), response) in enumerate(sorted(responses.items())):
        if n % 2 == 0:
            db.add(Score(response_id=response.id, judge_id=judge.id, status="scored",
                         score=1 + n % 5, reason=f"reason {n}", transcript=f"heard {n}",
                         caption="a calm adult voice", prompt_version="v1"))
        if n % 3 == 0:
            db.add(HumanRating(token=f"hr-{n}", response_id=response.id,
                               rater_id=raters[PEOPLE[n % 2]].id, served_at=start,
                               score=5 - n % 5, scored_at=start + timedelta(minutes=n)))
    # Not exported: a score still pending and a rating served but never given.
    pending = responses["edu-1", "beta"]
    db.add(Score(response_id=pending.id, judge_id=judge.id, status="pending"))
    db.add(HumanRating(token="hr-open", response_id=responses["soc-2", "gamma"].id,
                       rater_id=raters[PEOPLE[0]].id, served_at=start))
    db.commit()
    return {"votes": votes, "plan": plan, "raters": raters, "responses": responses,
            "judge": judge, "prompts": {p.key: p for p in db.scalars(select(Prompt))}}

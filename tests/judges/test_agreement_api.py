"""GET /api/v1/agreement on votes written to the log: a judge against humans, humans against
each other, matched by item (prompt and model pair) whatever side each model played."""

from __future__ import annotations

from sqlalchemy import text

from app.judges.agreement import cohen_kappa
from sklearn.metrics import cohen_kappa_score


def _vote(db, rater, prompt, model_a, model_b, outcome, battle_id):
    db.execute(text(
        "INSERT INTO battles (id, token, prompt_id, response_a_id, response_b_id, model_a_id, "
        "model_b_id, rater_id, served_at, expires_at) SELECT :id, :token, :p, ra.id, rb.id, "
        ":a, :b, :r, now(), now() FROM responses ra, responses rb WHERE ra.prompt_id = :p AND "
        "ra.model_id = :a AND rb.prompt_id = :p AND rb.model_id = :b"),
        {"id": battle_id, "token": f"t{battle_id}", "p": prompt, "a": model_a, "b": model_b,
         "r": rater})
    db.execute(text("INSERT INTO votes (battle_id, rater_id, outcome, created_at) "
                    "VALUES (:b, :r, :o, now())"), {"b": battle_id, "r": rater, "o": outcome})


def test_agreement_matches_items_across_sides(client, db, seeded):
    raters = {}
    for kind, name in [("human", "ann"), ("human", "bob"), ("judge", "judge-x")]:
        raters[name] = db.execute(text(
            "INSERT INTO raters (kind, name, created_at) VALUES (:k, :n, now()) RETURNING id"),
            {"k": kind, "n": name}).scalar()
    m1, m2, m3 = (m["id"] for m in seeded["models"])
    prompts = db.execute(text("SELECT id FROM prompts ORDER BY id")).scalars().all()
    n = iter(range(1, 100))
    # (prompt, model_a, model_b) and each rater's outcome; the judge hears sides swapped
    items = [(prompts[0], m1, m2, "a", "a", "b"),   # all prefer m1 (judge saw m2 as A)
             (prompts[1], m1, m3, "b", "b", "a"),   # all prefer m3
             (prompts[2], m2, m3, "a", "b", "a")]   # ann m2, bob m3, judge m3
    for prompt, a, b, ann, bob, judge in items:
        _vote(db, raters["ann"], prompt, a, b, ann, next(n))
        _vote(db, raters["bob"], prompt, a, b, bob, next(n))
        _vote(db, raters["judge-x"], prompt, b, a, judge, next(n))
    db.commit()

    body = client.get("/api/v1/agreement").json()
    (judge,) = body["judges"]
    assert judge["judge"] == "judge-x" and judge["items"] == 6
    human = ["lower", "higher", "lower", "higher", "lower", "higher"]
    judged = ["lower", "higher", "lower", "higher", "higher", "higher"]
    assert judge["observed"] == round(5 / 6, 4)
    assert judge["kappa"] == round(cohen_kappa_score(human, judged), 4)
    assert judge["kappa_ci"][0] <= judge["kappa"] <= judge["kappa_ci"][1]
    humans = body["humans"]
    assert humans["items"] == 3 and humans["observed"] == round(2 / 3, 4)
    assert humans["kappa"] == round(cohen_kappa(["lower", "higher", "lower"],
                                                ["lower", "higher", "higher"]).kappa, 4)


def test_the_agreement_page_shows_the_table(client, db, seeded):
    page = client.get("/agreement")
    assert page.status_code == 200
    assert "Rater agreement" in page.text and "humans" in page.text
    assert "no item voted by both yet" in page.text

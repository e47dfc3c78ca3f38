"""Leaderboards per slice of the log, computed from Postgres, against the pure rating code."""

import json
import random

import pytest
from sqlalchemy import text

from app.ratings import bt
from app.ratings.elo import online_elo
from tests.conftest import ADMIN, make_zip, prompt_line, responses_zip, tone

PROMPTS = [("e1", "education", "L1"), ("e2", "education", "L3"), ("s1", "social companionship", "L2"),
           ("m1", "medical consultation", "L4")]


@pytest.fixture
def arena(client, db):
    """Four prompts over three domains and four levels, four models, two judges and humans."""
    lines = [prompt_line(k, domain=d, level=lv) for k, d, lv in PROMPTS]
    files = {"manifest.jsonl": "\n".join(json.dumps(line) for line in lines)}
    files.update({f"audio/{k}.wav": tone() for k, _, _ in PROMPTS})
    assert client.post("/api/v1/datasets", headers=ADMIN, data={"name": "slices"},
                       files={"file": ("s.zip", make_zip(files), "application/zip")}).status_code == 201
    ids = {}
    for name in ("m-a", "m-b", "m-c", "m-d"):
        model = client.post("/api/v1/models", headers=ADMIN, json={"name": name}).json()
        client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                    files={"file": ("r.zip", responses_zip([k for k, _, _ in PROMPTS]), "application/zip")})
        ids[name] = model["id"]
    db.execute(text("INSERT INTO raters (kind, name, created_at) VALUES "
                    "('human', 'ann', now()), ('human', 'bob', now()), "
                    "('judge', 'gemini-judge', now()), ('judge', 'qwen-judge', now())"))
    db.commit()
    return ids


def insert_votes(db, votes, ids=None):
    """votes: (prompt key, model a id, model b id, outcome, rater name), in log order; `ids`:
    the vote ids to give them (as concurrent writers can commit them out of order), else the
    next from the sequence."""
    for number, (prompt, a, b, outcome, rater) in enumerate(votes):
        db.execute(text("""
            WITH p AS (SELECT id FROM prompts WHERE key = :prompt),
                 r AS (SELECT id FROM raters WHERE name = :rater),
                 battle AS (
                   INSERT INTO battles (token, prompt_id, response_a_id, response_b_id, model_a_id,
                                        model_b_id, rater_id, served_at, expires_at)
                   SELECT :token, p.id,
                          (SELECT id FROM responses WHERE prompt_id = p.id AND model_id = :a),
                          (SELECT id FROM responses WHERE prompt_id = p.id AND model_id = :b),
                          :a, :b, r.id, now(), now() + interval '1 hour' FROM p, r RETURNING id, rater_id)
            INSERT INTO votes (id, battle_id, rater_id, outcome, created_at)
            SELECT COALESCE(CAST(:vote_id AS bigint), nextval(pg_get_serial_sequence('votes', 'id'))),
                   id, rater_id, :outcome, now() FROM battle"""),
            {"prompt": prompt, "a": a, "b": b, "outcome": outcome, "rater": rater,
             "token": f"t{number}-{random.random()}", "vote_id": ids[number] if ids else None})
    db.commit()


def random_votes(ids, n, seed=0):
    rng = random.Random(seed)
    strength = {i: k for k, i in enumerate(ids.values())}
    votes = []
    for _ in range(n):
        a, b = rng.sample(list(ids.values()), 2)
        p_a = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 2))
        outcome = "a" if rng.random() < p_a else "b"
        votes.append((rng.choice(PROMPTS)[0], a, b, outcome,
                      rng.choice(["ann", "bob", "gemini-judge", "qwen-judge"])))
    return votes


def expected_table(votes, keep, ids):
    chosen = [v for v in votes if keep(v)]
    counts = bt.PairCounts.from_counts([(a, b, o, 1) for _, a, b, o, _ in chosen],
                                       models=sorted(ids.values()))
    return chosen, bt.table(counts, rounds=1000, seed=0, min_votes=20), counts


SLICES = [
    ({}, lambda v: True),
    ({"domain": "education"}, lambda v: v[0] in ("e1", "e2")),
    ({"level": "l2"}, lambda v: v[0] == "s1"),
    ({"rater": "human"}, lambda v: v[4] in ("ann", "bob")),
    ({"rater": "gemini-judge"}, lambda v: v[4] == "gemini-judge"),
    ({"domain": "education", "rater": "qwen-judge"}, lambda v: v[0] in ("e1", "e2") and v[4] == "qwen-judge"),
]


@pytest.mark.parametrize("query,keep", SLICES)
def test_each_slice_matches_the_pure_computation(client, db, arena, query, keep):
    votes = random_votes(arena, 240)
    insert_votes(db, votes)
    board = client.get("/api/v1/leaderboard", params=query).json()
    chosen, table, counts = expected_table(votes, keep, arena)
    assert board["votes"] == len(chosen)
    by_id = {m["id"]: m for m in board["models"]}
    elo = online_elo([(a, b, o) for _, a, b, o, _ in chosen])
    for k, model_id in enumerate(counts.models):
        entry = by_id[model_id]
        assert entry["rating"] == pytest.approx(table.rating[k], abs=0.01)
        assert entry["ci_lower"] == pytest.approx(table.ci_lower[k], abs=0.01)
        assert entry["ci_upper"] == pytest.approx(table.ci_upper[k], abs=0.01)
        assert entry["wins"] == table.wins[k] and entry["matches"] == table.matches[k]
        assert entry["elo"] == pytest.approx(elo[model_id].rating if model_id in elo else 1000, abs=0.01)
        assert entry["provisional"] == bool(table.provisional[k])
    level = query.get("level")
    assert board["slice"]["level"] == (level.upper() if level else None)


def test_the_worker_refreshes_every_standard_slice(client, db, arena, worker):
    insert_votes(db, random_votes(arena, 60))
    started = client.post("/api/v1/leaderboard/recompute", headers=ADMIN).json()
    import time

    deadline = time.monotonic() + 30
    while (job := client.get(f"/api/v1/jobs/{started['job_id']}", headers=ADMIN).json())["status"] != "done":
        assert time.monotonic() < deadline and job["status"] != "failed", job
        time.sleep(0.2)
    assert set(job["params"]["slices"]) == {
        "rater=all", "rater=human", "rater=gemini-judge", "rater=qwen-judge",
        "rater=all;domain=education", "rater=all;domain=medical consultation",
        "rater=all;domain=social companionship",
        "rater=all;level=L1", "rater=all;level=L2", "rater=all;level=L3", "rater=all;level=L4"}
    stored = db.execute(text("SELECT count(*) FROM leaderboard_snapshots WHERE max_vote_id = 60")).scalar()
    assert stored == 11


def test_provisional_models_are_not_ranked_and_come_last(client, db, arena):
    a, b, c, d = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann")] * 15 + [("e1", b, a, "a", "bob")] * 10
                 + [("e1", a, c, "a", "ann")] * 2)
    board = client.get("/api/v1/leaderboard").json()
    names = [m["name"] for m in board["models"]]
    ranked = {m["name"]: m["rank_ub"] for m in board["models"]}
    assert names[:2] == ["m-a", "m-b"] and ranked["m-a"] == 1 and ranked["m-b"] in (1, 2)
    assert ranked["m-c"] is None and ranked["m-d"] is None  # 2 and 0 votes
    assert [m["provisional"] for m in board["models"]] == [False, False, True, True]


def test_groups_that_never_met_are_detected(client, db, arena):
    a, b, c, d = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann"), ("e1", c, d, "b", "ann")])
    board = client.get("/api/v1/leaderboard").json()
    assert board["connected"] is False
    assert sorted(sorted(g) for g in board["components"]) == [["m-a", "m-b"], ["m-c", "m-d"]]
    page = client.get("/leaderboard")
    assert "groups that never met" in page.text


def test_matrices_follow_the_table_order(client, db, arena):
    a, b, c, d = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann"), ("e1", a, b, "b", "ann"), ("e1", b, a, "a", "ann"),
                      ("e1", c, a, "a", "bob")])
    board = client.get("/api/v1/leaderboard").json()
    order = board["matrix"]["models"]
    assert order == [m["name"] for m in board["models"]]
    ia, ib = order.index("m-a"), order.index("m-b")
    assert board["matrix"]["battles"][ia][ib] == 3
    assert board["matrix"]["win_rate"][ia][ib] == pytest.approx(1 / 3, abs=1e-4)
    assert board["matrix"]["win_rate"][ia][order.index("m-d")] is None


def test_bad_slice_filters(client, arena):
    reply = client.get("/api/v1/leaderboard", params={"level": "L9"})
    assert reply.status_code == 422 and "L9" in reply.json()["message"]
    empty = client.get("/api/v1/leaderboard", params={"rater": "nobody"}).json()
    assert empty["votes"] == 0 and all(m["matches"] == 0 for m in empty["models"])


def test_a_rare_slice_is_cached_then_recomputed_when_it_misses_votes(client, db, arena, monkeypatch):
    a, b, c, d = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann")])
    query = {"task": "Rhythm control"}
    first = client.get("/api/v1/leaderboard", params=query).json()
    insert_votes(db, [("e1", a, b, "a", "ann")])
    assert client.get("/api/v1/leaderboard", params=query).json()["votes"] == first["votes"] == 1
    monkeypatch.setenv("ARENA_LEADERBOARD__CACHE_SECONDS", "0")
    from app.config import get_settings

    get_settings.cache_clear()
    assert client.get("/api/v1/leaderboard", params=query).json()["votes"] == 2


def test_the_log_is_read_in_vote_order_without_flagged_raters(db, arena):
    """Votes stored out of id order (concurrent writers) still come back in vote-id order; a
    flagged rater's votes stay out until the flag is cleared."""
    from app.leaderboard.service import read_log

    votes = random_votes(arena, 40, seed=3)
    insert_votes(db, votes[:38])
    first = db.execute(text("SELECT max(id) FROM votes")).scalar()
    # the last two votes written in the opposite order of their ids
    insert_votes(db, [votes[39], votes[38]], ids=[first + 9, first + 4])

    log = read_log(db, first + 9)
    assert list(zip(log.model_a.tolist(), log.model_b.tolist())) == [(v[1], v[2]) for v in votes]
    assert [("a", "b", "tie", "both_bad")[k] for k in log.outcome] == [v[3] for v in votes]
    assert len(read_log(db, first + 4).model_a) == 39  # only votes up to the id asked for

    db.execute(text("UPDATE raters SET flagged_at = now() WHERE name = 'bob'"))
    db.commit()
    kept = [v for v in votes if v[4] != "bob"]
    log = read_log(db, first + 9)
    assert list(zip(log.model_a.tolist(), log.model_b.tolist())) == [(v[1], v[2]) for v in kept]
    db.execute(text("UPDATE raters SET flagged_at = NULL WHERE name = 'bob'"))
    db.commit()
    assert len(read_log(db, first + 9).model_a) == len(votes)


def test_a_slice_with_the_same_votes_as_another_gets_an_equal_table_of_its_own(db, arena):
    """With only people voting, "humans" holds exactly the votes of "all": its table is computed
    once and copied, equal to a fit of its own and a separate object (the snapshot owns it)."""
    from app.config import get_settings
    from app.leaderboard import service

    insert_votes(db, [v for v in random_votes(arena, 60, seed=5) if v[4] in ("ann", "bob")])
    settings = get_settings().leaderboard
    both = service.compute(db, [service.Slice(), service.Slice(rater="human")], settings)
    alone = service.compute(db, [service.Slice(rater="human")], settings)
    assert both[0].payload == both[1].payload == alone[0].payload
    assert both[0].payload is not both[1].payload
    assert both[0].vote_count == both[1].vote_count > 0
    db.rollback()

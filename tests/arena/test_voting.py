"""Serving battles and voting, through the arena's HTTP routes."""

import re
import time

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import ADMIN, with_csrf


def battle_token(html: str) -> str:
    match = re.search(r'data-battle="([^"]+)"', html)
    assert match, "no battle on the page"
    return match.group(1)


def test_the_arena_serves_a_blind_battle(client, seeded, db):
    page = client.get("/arena")
    assert page.status_code == 200
    token = battle_token(page.text)
    for slot in ("prompt", "a", "b"):
        assert f'src="/arena/audio/{token}/{slot}"' in page.text
    for model in seeded["models"]:
        assert model["name"] not in page.text
    battle = db.execute(text("SELECT model_a_id, model_b_id, rater_id FROM battles")).one()
    assert battle.model_a_id != battle.model_b_id
    clip = client.get(f"/arena/audio/{token}/a")
    assert clip.status_code == 200 and clip.headers["content-type"] == "audio/flac"
    assert all(m["name"] not in str(clip.headers) for m in seeded["models"])


def test_vote_reveals_the_models_and_serves_the_next_battle(client, seeded, db):
    token = battle_token(client.get("/arena").text)
    names = dict(db.execute(text(
        "SELECT 'a', ma.name FROM battles b JOIN speech_models ma ON ma.id = b.model_a_id "
        "UNION ALL SELECT 'b', mb.name FROM battles b JOIN speech_models mb ON mb.id = b.model_b_id"
    )).all())
    reply = client.post(f"/arena/battles/{token}/vote", data={"outcome": "b"},
                        headers={"HX-Request": "true"})
    assert reply.status_code == 200
    assert f'class="model-a">{names["a"]}<' in reply.text
    assert f'class="model-b">{names["b"]}<' in reply.text
    assert battle_token(reply.text) != token
    votes = db.execute(text("SELECT outcome FROM votes")).scalars().all()
    assert votes == ["b"]


def test_vote_errors(client, seeded, db):
    token = battle_token(client.get("/arena").text)
    unknown = client.post("/arena/battles/nope/vote", data={"outcome": "a"})
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["message"]

    tie = client.post(f"/arena/battles/{token}/vote", data={"outcome": "tie"})
    assert tie.status_code == 422 and "a, b" in tie.json()["message"]  # strict by default

    with with_csrf(TestClient(client.app)) as stranger:  # another visitor, another cookie
        theirs = stranger.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
        assert theirs.status_code == 403 and "someone else" in theirs.json()["message"]
        assert stranger.get(f"/arena/audio/{token}/a").status_code == 403

    assert client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 200
    again = client.post(f"/arena/battles/{token}/vote", data={"outcome": "b"})
    assert again.status_code == 409 and "already voted" in again.json()["message"]
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 1


def test_htmx_errors_are_swapped_into_the_flash_area(client, seeded):
    token = battle_token(client.get("/arena").text)
    client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
    again = client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"},
                        headers={"HX-Request": "true"})
    assert again.status_code == 409
    assert again.headers["HX-Retarget"] == "#flash"
    assert "already voted" in again.text and "<p" in again.text


def test_an_expired_battle_cannot_be_voted(client, seeded, db):
    token = battle_token(client.get("/arena").text)
    db.execute(text("UPDATE battles SET expires_at = now() - interval '1 minute'"))
    db.commit()
    reply = client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
    assert reply.status_code == 410 and "expired" in reply.json()["message"]


def test_ties_and_both_bad_when_the_deployment_allows_them(client, seeded, db, monkeypatch):
    monkeypatch.setenv("ARENA_ARENA__OUTCOMES", "with_tie_and_both_bad")
    from app.config import get_settings

    get_settings.cache_clear()
    page = client.get("/arena").text
    assert 'value="tie"' in page and 'value="both_bad"' in page
    assert client.post(f"/arena/battles/{battle_token(page)}/vote",
                       data={"outcome": "both_bad"}).status_code == 200
    assert db.execute(text("SELECT outcome FROM votes")).scalar() == "both_bad"


def test_strict_pages_offer_only_a_and_b(client, seeded):
    page = client.get("/arena").text
    assert 'value="a"' in page and 'value="b"' in page and 'value="tie"' not in page


def test_deactivated_models_leave_pairing_and_a_lone_model_gives_no_battle(client, seeded, db):
    alpha, beta, gamma = seeded["models"]
    client.post(f"/api/v1/models/{gamma['id']}/deactivate", headers=ADMIN)
    for _ in range(15):
        battle_token(client.get("/arena").text)
    served = db.execute(text("SELECT DISTINCT model_a_id FROM battles UNION "
                             "SELECT DISTINCT model_b_id FROM battles")).scalars().all()
    assert sorted(served) == sorted([alpha["id"], beta["id"]])
    client.patch(f"/api/v1/models/{beta['id']}", headers=ADMIN, json={"active": False})
    page = client.get("/arena")
    assert page.status_code == 200 and "No battle is ready yet" in page.text


def test_a_rater_is_not_served_the_same_prompt_twice_in_a_row(client, seeded, db):
    for _ in range(3):
        battle_token(client.get("/arena").text)
    prompts = db.execute(text("SELECT prompt_id FROM battles ORDER BY id")).scalars().all()
    assert len(set(prompts)) == 3


def test_a_vote_reaches_the_leaderboard_through_the_worker(client, seeded, worker):
    token = battle_token(client.get("/arena").text)
    client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
    deadline = time.monotonic() + 15
    board = client.get("/api/v1/leaderboard").json()
    while board["votes"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        board = client.get("/api/v1/leaderboard").json()
    assert board["votes"] == 1
    by_name = {m["name"]: m for m in board["models"]}
    assert sorted(m["matches"] for m in by_name.values()) == [0, 1, 1]
    winner = max(board["models"], key=lambda m: m["elo"])
    assert (winner["elo"], winner["wins"], winner["win_rate"]) == (1016.0, 1, 1.0)
    loser = min(board["models"], key=lambda m: m["elo"])
    assert (loser["elo"], loser["losses"]) == (984.0, 1)
    assert {"name", "rating", "ci_lower", "ci_upper", "rank_ub", "elo", "wins", "losses", "ties",
            "matches", "provisional", "win_rate"} <= set(winner)
    assert winner["provisional"] and winner["rank_ub"] is None  # one vote: not ranked yet
    assert winner["rating"] > 1000 > loser["rating"]


def test_the_leaderboard_lists_every_active_model_before_any_vote(client, seeded):
    board = client.get("/api/v1/leaderboard").json()
    assert sorted(m["name"] for m in board["models"]) == ["alpha", "beta", "gamma"]
    assert all(m["elo"] == 1000.0 and m["matches"] == 0 for m in board["models"])
    page = client.get("/leaderboard")
    assert page.status_code == 200 and 'data-model="alpha"' in page.text


def test_recompute_on_demand_is_a_job_run_by_the_worker(client, seeded, worker, db):
    from app.config import get_settings
    from app.leaderboard.service import Slice, compute

    compute(db, [Slice()], get_settings().leaderboard)  # a snapshot from before the vote
    db.commit()
    battle_token(client.get("/arena").text)  # serves a battle
    db.execute(text("INSERT INTO votes (battle_id, rater_id, outcome, created_at) "
                    "SELECT id, rater_id, 'b', now() FROM battles"))  # a vote that scheduled nothing
    db.commit()
    assert client.get("/api/v1/leaderboard").json()["votes"] == 0
    assert client.post("/api/v1/leaderboard/recompute").status_code == 401
    started = client.post("/api/v1/leaderboard/recompute", headers=ADMIN)
    assert started.status_code == 202
    job_url = f"/api/v1/jobs/{started.json()['job_id']}"
    deadline = time.monotonic() + 15
    while (job := client.get(job_url, headers=ADMIN).json())["status"] != "done":
        assert job["status"] in ("pending", "running") and time.monotonic() < deadline
        time.sleep(0.2)
    assert (job["total"], job["done"], job["failed"], job["pending"]) == (1, 1, 0, 0)
    assert client.get("/api/v1/leaderboard").json()["votes"] == 1
    assert client.get("/api/v1/jobs/999", headers=ADMIN).status_code == 404


def test_a_share_of_battles_repeats_another_persons_item(client, seeded, db, monkeypatch):
    """With the share at 1, a second person hears the very item the first voted on (sides drawn
    anew), so agreement between people can be measured; at 0 nobody is served a repeat."""
    import random

    from app.arena.service import human_rater, serve_battle
    from app.config import get_settings
    from app.db.models import Vote

    monkeypatch.setenv("ARENA_ARENA__DOUBLE_SERVED_SHARE", "1")
    get_settings.cache_clear()
    settings = get_settings()
    first = serve_battle(db, human_rater(db, "ann"), settings, random.Random(1))
    db.add(Vote(battle_id=first.id, rater_id=first.rater_id, outcome="a"))
    db.flush()
    again = serve_battle(db, human_rater(db, "bob"), settings, random.Random(2))
    assert again.prompt_id == first.prompt_id
    assert {again.response_a_id, again.response_b_id} == {first.response_a_id,
                                                           first.response_b_id}
    # ann already heard that prompt: she is not served her own item back
    mine = serve_battle(db, human_rater(db, "ann"), settings, random.Random(3))
    assert mine.rater_id == first.rater_id
    db.rollback()
    get_settings.cache_clear()

"""The vote page around the clips: the guideline, the prompt's text setting, progress, skip,
broken-clip reports, and the play log that records how each battle was heard."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.arena.guidelines import TASK_TARGETS
from tests.conftest import ADMIN


def open_page(client, path: str = "/arena") -> str:
    """GET a page as a browser would, and send its form token (the CSRF cookie's value) with
    the client's later requests, as the page's htmx does."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = client.cookies.get("arena_csrf")
    if token:
        client.headers["X-CSRF-Token"] = token
    return page.text


def battle_token(html: str) -> str:
    match = re.search(r'data-battle="([^"]+)"', html)
    assert match, "no battle on the page"
    return match.group(1)


def play_row(db, token: str):
    return db.execute(text(
        "SELECT p.* FROM battle_plays p JOIN battles b ON b.id = p.battle_id WHERE b.token = :t"),
        {"t": token}).mappings().one()


def test_the_page_shows_the_guideline_for_the_prompts_task_and_level(client, seeded):
    page = open_page(client)  # seeded prompts: "Rhythm control", level L3
    assert "Rhythm control" in page and TASK_TARGETS["rhythm control"] in page
    assert "Level L3" in page and "Express" in page
    assert "Spoken prompt p" not in page  # the prompt's text is hidden by default
    assert "disabled>" in page.replace("\n", "")  # the vote is locked until both are heard
    assert "The vote unlocks once you have heard both answers to the end" in page


def test_the_prompts_text_is_shown_when_the_deployment_says_so(client, seeded, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("ARENA_ARENA__SHOW_PROMPT_TEXT", "true")
    monkeypatch.setenv("ARENA_ARENA__LISTEN_FRACTION", "0.9")
    get_settings.cache_clear()
    page = open_page(client)
    assert re.search(r'class="prompt-text">“Spoken prompt p\d”', page)
    assert 'data-listen-fraction="0.9"' in page and "at least 90% of each" in page
    get_settings.cache_clear()


def test_a_task_outside_table_9_is_described_by_the_prompts_own_description(client, db):
    from app.arena.guidelines import guideline

    known = guideline("Emotion Recognition and Expression", "L4")
    assert known.target == TASK_TARGETS["emotion recognition and expression"]
    assert known.level_name == "Perceive and express"
    other = guideline("Counting sheep", "L2", "Counts slowly, in a sleepy voice.")
    assert other.target == "Counts slowly, in a sleepy voice." and other.level_name == "Perceive"


def test_progress_counts_todays_votes_and_all(client, seeded, db):
    page = open_page(client)
    assert re.search(r'votes-today">0<.*votes-total">0<', page, re.S)
    page = client.post(f"/arena/battles/{battle_token(page)}/vote", data={"outcome": "a"}).text
    assert re.search(r'votes-today">1<.*votes-total">1<', page, re.S)
    db.execute(text("ALTER TABLE votes DISABLE TRIGGER USER"))  # age the vote by two days
    db.execute(text("UPDATE votes SET created_at = created_at - interval '2 days'"))
    db.execute(text("ALTER TABLE votes ENABLE TRIGGER USER"))
    db.commit()
    page = client.post(f"/arena/battles/{battle_token(page)}/vote", data={"outcome": "b"}).text
    assert re.search(r'votes-today">1<.*votes-total">2<', page, re.S)


def test_play_events_are_merged_into_one_row_per_battle(client, seeded, db):
    token = battle_token(open_page(client))
    row = play_row(db, token)
    assert (row["a_heard"], row["b_heard"], row["ending"]) == (0, 0, None)
    sent = client.post(f"/arena/battles/{token}/plays",
                       data={"heard_a": "0.5", "heard_prompt": "1", "ended_prompt": "true",
                             "listened_s": "2.5"})
    assert sent.status_code == 204
    # A late, smaller report never takes back what was heard.
    client.post(f"/arena/battles/{token}/plays", data={"heard_a": "0.25", "listened_s": "1"})
    client.post(f"/arena/battles/{token}/plays", data={"heard_b": "1", "ended_b": "true"})
    db.expire_all()
    row = play_row(db, token)
    assert (row["prompt_heard"], row["a_heard"], row["b_heard"]) == (1, 0.5, 1)
    assert (row["prompt_ended"], row["a_ended"], row["b_ended"]) == (True, False, True)
    assert row["listened_s"] == 2.5 and row["updated_at"] is not None

    bad = client.post(f"/arena/battles/{token}/plays", data={"heard_a": "1.5"})
    assert bad.status_code == 422 and "heard_a" in bad.json()["message"]
    with TestClient(client.app) as stranger:
        open_page(stranger, "/healthz")
        theirs = stranger.post(f"/arena/battles/{token}/plays", data={"heard_a": "1"})
        assert theirs.status_code == 403 and "someone else" in theirs.json()["message"]


def test_the_vote_carries_how_the_clips_were_heard(client, seeded, db):
    token = battle_token(open_page(client))
    client.post(f"/arena/battles/{token}/vote",
                data={"outcome": "b", "heard_a": "1", "heard_b": "0.95", "ended_a": "true",
                      "listened_s": "9.5"})
    row = play_row(db, token)
    assert (row["a_heard"], row["b_heard"], row["a_ended"], row["listened_s"]) == \
        (1, 0.95, True, 9.5)
    assert row["ending"] == "voted" and row["ended_at"] is not None

    log = client.get("/api/v1/arena/plays", headers=ADMIN).json()
    voted = next(entry for entry in log if entry["status"] == "voted")
    assert voted["heard"] == {"prompt": 0, "a": 1, "b": 0.95}
    assert 0 <= voted["time_to_vote_s"] < 60


def test_the_server_refuses_a_vote_before_both_answers_were_heard(client, seeded, db,
                                                                   settings_env):
    settings_env(ARENA_ARENA__REQUIRE_LISTENING="true", ARENA_ARENA__LISTEN_FRACTION="0.5")
    token = battle_token(open_page(client))
    blind = client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
    assert blind.status_code == 409
    assert blind.json()["message"].startswith("listen to answer A and B before you vote")
    # Heard through play events, then the vote reports B to the (half-way) fraction.
    client.post(f"/arena/battles/{token}/plays", data={"heard_a": "1", "ended_a": "true"})
    half = client.post(f"/arena/battles/{token}/vote", data={"outcome": "a", "heard_b": "0.3"})
    assert half.status_code == 409 and "listen to answer B before" in half.json()["message"]
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 0
    counted = client.post(f"/arena/battles/{token}/vote",
                          data={"outcome": "a", "heard_b": "0.5"})
    assert counted.status_code == 200, counted.text
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 1
    assert play_row(db, token)["b_heard"] == 0.5


def test_skip_serves_the_next_battle_and_the_skipped_one_cannot_be_voted(client, seeded, db):
    token = battle_token(open_page(client))
    reply = client.post(f"/arena/battles/{token}/skip", data={"heard_a": "0.3"},
                        headers={"HX-Request": "true"})
    assert reply.status_code == 200 and "Skipped." in reply.text
    assert battle_token(reply.text) != token
    assert (play_row(db, token)["ending"], play_row(db, token)["a_heard"]) == ("skipped", 0.3)
    late = client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
    assert late.status_code == 409 and "skipped" in late.json()["message"]
    again = client.post(f"/arena/battles/{token}/skip")
    assert again.status_code == 409
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 0


def test_a_broken_clip_report_is_stored_and_listed_for_admins(client, seeded, db):
    token = battle_token(open_page(client))
    bad = client.post(f"/arena/battles/{token}/report", data={"slot": "c"})
    assert bad.status_code == 422 and "prompt, a or b" in bad.json()["message"]
    long = client.post(f"/arena/battles/{token}/report", data={"slot": "a", "note": "x" * 501})
    assert long.status_code == 422 and "500" in long.json()["message"]
    reply = client.post(f"/arena/battles/{token}/report",
                        data={"slot": "b", "note": "  <b>only hiss</b> "})
    assert reply.status_code == 200 and "answer B was reported as broken" in reply.text
    assert battle_token(reply.text) != token
    assert client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 409

    assert client.get("/api/v1/arena/reports").status_code == 401
    (listed,) = client.get("/api/v1/arena/reports", headers=ADMIN).json()
    response_b, model_b = db.execute(text(
        "SELECT b.response_b_id, m.name FROM battles b JOIN speech_models m "
        "ON m.id = b.model_b_id WHERE b.token = :t"), {"t": token}).one()
    assert listed["slot"] == "b" and listed["note"] == "<b>only hiss</b>"
    assert (listed["response_id"], listed["model"]) == (response_b, model_b)
    assert listed["prompt_key"] in seeded["prompts"]


def test_a_battle_left_past_its_expiry_counts_as_abandoned(client, seeded, db):
    token = battle_token(open_page(client))
    client.get("/arena")  # a second battle, still open
    db.execute(text("UPDATE battles SET expires_at = now() - interval '1 minute' "
                    "WHERE token = :t"), {"t": token})
    db.commit()
    log = client.get("/api/v1/arena/plays", headers=ADMIN).json()
    assert [entry["status"] for entry in log] == ["open", "abandoned"]
    assert play_row(db, token)["ending"] is None  # derived, never written

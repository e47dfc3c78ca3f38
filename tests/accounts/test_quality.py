"""Quality control: attention checks (gold battles), flagging the people who fail them, their
votes left out of the leaderboard and brought back, and the per-person statistics."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db.models import GOLD_KINDS
from tests.conftest import ADMIN, with_csrf


def battle_token(html: str) -> str:
    return re.search(r'data-battle="([^"]+)"', html)[1]


def board_votes(client, wanted: int, timeout: float = 90) -> int:
    """The overall leaderboard's vote count once the worker's refresh reaches `wanted`."""
    deadline = time.monotonic() + timeout
    while True:
        votes = client.get("/api/v1/leaderboard").json()["votes"]
        if votes == wanted or time.monotonic() > deadline:
            return votes
        time.sleep(0.2)


def vote_times(client, html: str, times: int, outcome="a") -> str:
    for _ in range(times):
        reply = client.post(f"/arena/battles/{battle_token(html)}/vote", data={"outcome": outcome})
        assert reply.status_code == 200, reply.text
        html = reply.text
    return html


def test_an_annotator_failing_attention_checks_is_flagged_reversibly(
        client, seeded, db, worker, settings_env):
    made = client.post("/api/v1/annotators", headers=ADMIN,
                       json={"username": "jo", "password": "jo's password"}).json()
    jo = with_csrf(TestClient(client.app))
    assert jo.post("/login", data={"username": "jo", "password": "jo's password"},
                   follow_redirects=False).status_code == 303
    vote_times(jo, jo.get("/arena").text, 3)  # three real votes
    vote_times(client, client.get("/arena").text, 2)  # and two by an anonymous visitor
    assert board_votes(client, 5) == 5

    settings_env(ARENA_ARENA__GOLD_SHARE="1", ARENA_ARENA__GOLD_MIN_VOTES="3",
                 ARENA_ARENA__GOLD_MIN_ACCURACY="0.7")
    html = jo.get("/arena").text
    for n in range(3):
        token = battle_token(html)
        row = db.execute(text("SELECT b.gold_bad_slot, b.gold_kind, ra.prompt_id AS pa, "
                              "rb.prompt_id AS pb, b.prompt_id FROM battles b "
                              "JOIN responses ra ON ra.id = b.response_a_id "
                              "JOIN responses rb ON rb.id = b.response_b_id "
                              "WHERE b.token = :t"), {"t": token}).one()
        db.commit()
        assert row.gold_bad_slot in ("a", "b") and row.gold_kind in GOLD_KINDS
        good = "a" if row.gold_bad_slot == "b" else "b"
        assert getattr(row, "p" + good) == row.prompt_id  # the good answer is to this prompt
        assert getattr(row, "p" + row.gold_bad_slot) != row.prompt_id  # the bad one is not
        assert "gold" not in html.lower()  # nothing on the page tells the check apart
        flagged = db.execute(text("SELECT flagged_at FROM raters WHERE id = :r"),
                             {"r": made["rater_id"]}).scalar()
        db.commit()
        assert flagged is None, f"flagged after {n} of 3 attention checks"
        html = vote_times(jo, html, 1, outcome=row.gold_bad_slot)  # picks the bad answer
        # The reveal names no model for a clip no model made.
        assert f'class="model-{row.gold_bad_slot}">an attention check' in html

    stats = {p["name"]: p for p in client.get("/api/v1/raters/quality", headers=ADMIN).json()}
    assert stats["jo"]["flagged"] is True
    assert stats["jo"]["flag_reason"] == "answered 0 of 3 attention checks right, below 70%"
    assert stats["jo"]["votes"] == 3 and stats["jo"]["gold_votes"] == 3
    assert stats["jo"]["gold_accuracy"] == 0.0
    # Left out of the leaderboard, never deleted: only the visitor's two votes count now.
    assert board_votes(client, 2) == 2
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 8
    db.commit()

    cleared = client.put(f"/api/v1/raters/{made['rater_id']}/flag", headers=ADMIN,
                         json={"flagged": False})
    assert cleared.status_code == 200 and cleared.json()["flagged"] is False
    assert board_votes(client, 5) == 5
    # The checks failed before the flag was cleared no longer count towards a new flag.
    vote_times(jo, jo.get("/arena").text, 1, outcome="a")
    assert db.execute(text("SELECT flagged_at FROM raters WHERE id = :r"),
                      {"r": made["rater_id"]}).scalar() is None
    db.commit()
    # An admin can also flag by hand, and unknown raters are a clear 404.
    assert client.put(f"/api/v1/raters/{made['rater_id']}/flag", headers=ADMIN,
                      json={"flagged": True}).json()["flag_reason"] == "flagged by an admin"
    missing = client.put("/api/v1/raters/999/flag", headers=ADMIN, json={"flagged": True})
    assert missing.status_code == 404 and "999" in missing.json()["message"]


def test_per_person_statistics(client, seeded, db):
    """Four people on one item (prompt p1, models 1 and 2) and one attention check, with the
    statistics worked out by hand."""
    from app.accounts import quality
    from app.db.base import utcnow
    from app.db.models import Battle, BattlePlay, Rater, Vote

    def response(prompt_key: str, model: int) -> int:
        return db.execute(text("SELECT r.id FROM responses r JOIN prompts p ON p.id = r.prompt_id "
                               "WHERE p.key = :k AND r.model_id = :m"),
                          {"k": prompt_key, "m": model}).scalar_one()

    p1 = db.execute(text("SELECT id FROM prompts WHERE key = 'p1'")).scalar_one()
    raters = [Rater(kind="human", name=f"visitor:{n}") for n in range(4)]
    db.add_all(raters)
    db.flush()
    now = utcnow()

    def vote(rater: Rater, a: int, b: int, outcome: str, listened: float = 0.0,
             bad: tuple[str, int] | None = None) -> None:
        battle = Battle(token=f"t{len(db.new)}{rater.id}{a}{b}{outcome}{bad}", prompt_id=p1,
                        response_a_id=response("p1", a), model_a_id=a,
                        response_b_id=response(bad[0], b) if bad else response("p1", b),
                        model_b_id=b, rater_id=rater.id, served_at=now,
                        expires_at=now + timedelta(hours=1),
                        gold_bad_slot="b" if bad else None, gold_kind="other_answer" if bad else None)
        db.add(battle)
        db.flush()
        db.add(Vote(battle_id=battle.id, rater_id=rater.id, outcome=outcome, created_at=now))
        db.add(BattlePlay(battle_id=battle.id, listened_s=listened, ending="voted", ended_at=now))
        db.flush()

    vote(raters[0], 1, 2, "a", listened=3.0)  # model 1 won, A (left) chosen
    vote(raters[1], 2, 1, "b")  # model 1 won, right side chosen
    vote(raters[2], 1, 2, "b")  # model 2 won
    vote(raters[3], 1, 2, "a")  # model 1 won
    vote(raters[0], 1, 3, "a", listened=5.0, bad=("p2", 3))  # attention check, passed
    db.commit()

    stats = {s["rater_id"]: s for s in quality.rater_stats(db)}
    first, second, third, fourth = (stats[r.id] for r in raters)
    assert (first["votes"], first["gold_votes"], first["gold_accuracy"]) == (1, 1, 1.0)
    assert first["median_listening_s"] == 4.0  # median of 3 s and 5 s
    assert [s["left_side_rate"] for s in (first, second, third, fourth)] == [1.0, 0.0, 0.0, 1.0]
    # Each against the other three's majority (model 1 won, 2 to 1 or 3 to 0).
    assert [s["majority_agreement"] for s in (first, second, third, fourth)] == [1.0, 1.0, 0.0, 1.0]
    assert all(s["majority_compared"] == 1 for s in (first, second, third, fourth))
    assert second["gold_accuracy"] is None and second["flagged"] is False


def test_the_admin_page_lists_people_and_makes_invite_links(client, seeded):
    from tests.conftest import ADMIN_TOKEN

    client.post("/admin/login", data={"token": ADMIN_TOKEN})
    made = client.post("/admin/annotators", data={"username": "kay", "role": "annotator"})
    assert made.status_code == 200
    link = re.search(r'id="invite-url" readonly value="([^"]+)"', made.text)[1]
    assert "/invite/" in link and "kay" in made.text
    dup = client.post("/admin/annotators", data={"username": "kay"})
    assert dup.status_code == 409 and "already exists" in dup.text
    account = client.get("/api/v1/annotators", headers=ADMIN).json()[0]
    off = client.post(f"/admin/annotators/{account['id']}/active", data={"active": "false"})
    assert off.status_code == 200 and "deactivated" in off.text
    page = client.get("/admin/annotators").text
    assert f'id="rater-{account["rater_id"]}"' in page
    flag = client.post(f"/admin/raters/{account['rater_id']}/flag", data={"flagged": "true"})
    assert "flagged by an admin" in flag.text


def test_attention_checks_of_every_kind_are_served_like_any_clip(client, seeded, db, settings_env):
    """Another prompt's answer, silence and noise: the bad slot plays what its kind says, the
    good slot plays the prompt's own answer, and both come through the same served form."""
    import io

    import numpy as np
    import soundfile as sf

    settings_env(ARENA_ARENA__GOLD_SHARE="1")
    seen: dict[str, str] = {}
    html = client.get("/arena").text
    for _ in range(60):
        token = battle_token(html)
        kind = db.execute(text("SELECT gold_kind FROM battles WHERE token = :t"),
                          {"t": token}).scalar()
        db.commit()
        seen.setdefault(kind, token)
        if len(seen) == len(GOLD_KINDS):
            break
        html = client.get("/arena/next").text
    assert set(seen) == set(GOLD_KINDS)

    from app.audio import serving
    from app.audio.storage import get_storage

    storage = get_storage()
    for kind, token in seen.items():
        battle = db.execute(text(
            "SELECT b.gold_bad_slot AS bad, ra.audio_key AS ka, rb.audio_key AS kb, "
            "ra.prompt_id AS pa, rb.prompt_id AS pb, b.prompt_id FROM battles b "
            "JOIN responses ra ON ra.id = b.response_a_id "
            "JOIN responses rb ON rb.id = b.response_b_id WHERE b.token = :t"),
            {"t": token}).one()
        db.commit()
        good = "a" if battle.bad == "b" else "b"
        clips = {}
        for slot in ("a", "b"):
            reply = client.get(f"/arena/audio/{token}/{slot}")
            assert reply.status_code == 200 and reply.content[:4] == b"fLaC"
            assert "gold" not in str(reply.headers).lower()
            clips[slot] = reply.content
        assert getattr(battle, "p" + good) == battle.prompt_id
        assert clips[good] == serving.read(storage, getattr(battle, "k" + good))
        samples, rate = sf.read(io.BytesIO(clips[battle.bad]))
        if kind == "other_answer":
            assert clips[battle.bad] == serving.read(storage, getattr(battle, "k" + battle.bad))
        elif kind == "silence":
            assert np.max(np.abs(samples)) == 0 and len(samples) / rate >= 1.0
        else:
            assert np.sqrt(np.mean(samples ** 2)) > 0.01 and len(samples) / rate >= 1.0

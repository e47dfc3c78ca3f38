"""Request security: CSRF tokens on every form, security headers on every page, votes per
minute per person and per address, a vote counted once, and a battle only its rater votes on."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import (ADMIN, ADMIN_TOKEN, make_zip, prompt_line, responses_zip, tone,
                            with_csrf)


def battle_token(html: str) -> str:
    return re.search(r'data-battle="([^"]+)"', html)[1]


def log_in(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password},
                       follow_redirects=False)


def test_forms_without_the_page_token_are_refused(client, seeded, db):
    token = battle_token(client.get("/arena").text)
    with TestClient(client.app) as other_site:  # a cross-site post: cookies, but no token
        other_site.cookies.update(client.cookies)
        forged = other_site.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
        assert forged.status_code == 403 and "reload the page" in forged.json()["message"]
        wrong = other_site.post(f"/arena/battles/{token}/vote", data={"outcome": "a"},
                                headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        for path, data in (("/login", {"username": "a", "password": "b"}),
                           ("/admin/login", {"token": ADMIN_TOKEN}), ("/logout", {}),
                           ("/rate/anything", {"score": "3"})):
            assert other_site.post(path, data=data).status_code == 403, path
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 0

    # The page's own form field, as a plain form sends it, is accepted.
    with TestClient(client.app) as browser:
        page = browser.get("/login")
        field = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        assert field == browser.cookies["arena_csrf"]
        assert re.search(r'hx-headers=\'\{"X-CSRF-Token": "([^"]+)"\}\'', page.text)[1] == field
        sent = browser.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": field},
                            follow_redirects=False)
        assert sent.status_code == 303
    # The JSON API takes the admin token as a header, no cookie: no CSRF token needed.
    with TestClient(client.app) as api:
        assert api.post("/api/v1/annotators", headers=ADMIN,
                        json={"username": "zed"}).status_code == 201


def test_every_page_sends_the_security_headers(client, seeded):
    for path in ("/arena", "/rate", "/leaderboard", "/agreement", "/admin", "/login",
                 "/api/v1/leaderboard"):
        reply = client.get(path)
        assert reply.status_code == 200, path
        headers = reply.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
    assert "arena_csrf=" in TestClient(client.app).get("/arena").headers["set-cookie"]


def test_the_same_vote_sent_twice_counts_once(client, seeded, db):
    token = battle_token(client.get("/arena").text)
    with ThreadPoolExecutor(4) as pool:  # the same request, four times at once
        replies = list(pool.map(
            lambda _: client.post(f"/arena/battles/{token}/vote", data={"outcome": "b"}),
            range(4)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 409, 409, 409], [r.text for r in replies]
    again = client.post(f"/arena/battles/{token}/vote", data={"outcome": "b"})
    assert again.status_code == 409 and "already voted" in again.json()["message"]
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 1


def test_a_vote_on_another_annotators_battle_is_refused(client, seeded, db):
    for name in ("gil", "hal"):
        client.post("/api/v1/annotators", headers=ADMIN,
                    json={"username": name, "password": f"{name} password!"})
    with with_csrf(TestClient(client.app)) as gil, with_csrf(TestClient(client.app)) as hal:
        log_in(gil, "gil", "gil password!")
        log_in(hal, "hal", "hal password!")
        token = battle_token(gil.get("/arena").text)
        theirs = hal.post(f"/arena/battles/{token}/vote", data={"outcome": "a"})
        assert theirs.status_code == 403 and "someone else" in theirs.json()["message"]
        assert hal.get(f"/arena/audio/{token}/a").status_code == 403
        assert gil.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 200
    voters = db.execute(text("SELECT r.name FROM votes v JOIN raters r ON r.id = v.rater_id"))
    assert list(voters.scalars()) == ["annotator:gil"]


def test_votes_per_minute_per_person(client, seeded, db, settings_env):
    settings_env(ARENA_ARENA__VOTES_PER_MINUTE="2")
    html = client.get("/arena").text
    for _ in range(2):
        reply = client.post(f"/arena/battles/{battle_token(html)}/vote", data={"outcome": "a"})
        assert reply.status_code == 200
        html = reply.text
    limited = client.post(f"/arena/battles/{battle_token(html)}/vote", data={"outcome": "a"})
    assert limited.status_code == 429
    assert "too many votes" in limited.json()["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    rating = client.get("/rate").text
    task = re.search(r'/rate/([A-Za-z0-9_-]+)"', rating)[1]
    assert client.post(f"/rate/{task}", data={"score": "4"}).status_code == 429
    # Skipping serves a new battle too: it is not a way around the limit.
    assert client.post(f"/arena/battles/{battle_token(html)}/skip").status_code == 429
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 2
    # Another person (another visitor cookie) still votes.
    with with_csrf(TestClient(client.app)) as other:
        token = battle_token(other.get("/arena").text)
        assert other.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 200


def test_votes_per_minute_per_address(client, seeded, db, settings_env):
    settings_env(ARENA_ARENA__VOTES_PER_MINUTE_PER_IP="3")
    statuses = []
    for _ in range(4):  # four visitors from one address, one vote each
        with with_csrf(TestClient(client.app)) as visitor:
            token = battle_token(visitor.get("/arena").text)
            statuses.append(visitor.post(f"/arena/battles/{token}/vote",
                                         data={"outcome": "a"}).status_code)
    assert statuses == [200, 200, 200, 429]


def test_html_in_names_and_prompt_text_is_escaped_everywhere(client, db, settings_env):
    settings_env(ARENA_ARENA__SHOW_PROMPT_TEXT="true",
                 ARENA_LEADERBOARD__MIN_VOTES="0")
    evil_text = '<img src=x onerror="alert(1)">Say it</b>'
    line = prompt_line("p1", text=evil_text, task="<script>alert('task')</script>")
    files = {"manifest.jsonl": json.dumps(line), "audio/p1.wav": tone(1.0)}
    assert client.post("/api/v1/datasets", headers=ADMIN, data={"name": "evil"},
                       files={"file": ("d.zip", make_zip(files), "application/zip")}
                       ).status_code == 201
    evil_names = ['<script>alert("m")</script>', "<b onmouseover=alert(2)>bold</b>"]
    for i, name in enumerate(evil_names):
        model = client.post("/api/v1/models", headers=ADMIN,
                            json={"name": name, "organisation": "<i>Org</i>"}).json()
        assert client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                           files={"file": ("r.zip", responses_zip(["p1"], 300 + 50 * i),
                                           "application/zip")}).status_code == 201
    client.post("/api/v1/annotators", headers=ADMIN, json={"username": "ivy"})

    pages = {}
    arena = client.get("/arena")
    pages["arena"] = arena.text
    voted = client.post(f"/arena/battles/{battle_token(arena.text)}/vote", data={"outcome": "a"})
    assert voted.status_code == 200
    pages["reveal"] = voted.text
    pages["rate"] = client.get("/rate").text
    from app.config import get_settings
    from app.db.session import new_session
    from app.leaderboard import service as leaderboard

    with new_session() as session:  # the refresh a worker would run after the vote
        leaderboard.compute(session, leaderboard.standard_slices(session),
                            get_settings().leaderboard)
        session.commit()
    pages["leaderboard"] = client.get("/leaderboard").text
    pages["agreement"] = client.get("/agreement").text
    client.post("/admin/login", data={"token": ADMIN_TOKEN})
    pages["admin"] = client.get("/admin").text
    pages["annotators"] = client.get("/admin/annotators").text

    shown = {"arena": [evil_text], "reveal": evil_names, "leaderboard": evil_names,
             "admin": evil_names}
    for page, html in pages.items():
        for raw in evil_names + [evil_text, "<script>alert('task')</script>", "<i>Org</i>"]:
            assert raw not in html, (page, raw)
        assert "<script>alert" not in html and "<img" not in html and "<b " not in html
        for raw in shown.get(page, []):
            escaped = (raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                       .replace('"', "&#34;").replace("'", "&#39;"))
            assert escaped in html, (page, raw)


def test_login_attempts_per_minute_per_address(client, settings_env):
    settings_env(ARENA_ACCOUNTS__LOGINS_PER_MINUTE_PER_IP="3")
    client.post("/api/v1/annotators", headers=ADMIN,
                json={"username": "joy", "password": "joy's password"})
    statuses = [log_in(client, "joy", "a guess!").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = log_in(client, "joy", "joy's password")
    assert limited.status_code == 429 and "too many login attempts" in limited.text
    assert int(limited.headers["retry-after"]) >= 1

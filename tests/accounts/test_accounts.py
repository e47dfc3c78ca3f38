"""Annotator accounts: invite links, passwords, sessions, roles, open and closed deployments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import ADMIN, with_csrf


def invite_token(url: str) -> str:
    return url.rsplit("/invite/", 1)[1]


def create(client, username: str, role: str = "annotator", password: str | None = None) -> dict:
    body = {"username": username, "role": role}
    if password:
        body["password"] = password
    reply = client.post("/api/v1/annotators", headers=ADMIN, json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def browser(client) -> TestClient:
    """Another browser: its own cookies, and the form token its pages would give it."""
    return with_csrf(TestClient(client.app))


def log_in(client, username: str, password: str, next_path: str = ""):
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_path}, follow_redirects=False)


@pytest.fixture
def closed(monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("ARENA_ACCOUNTS__MODE", "closed")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_an_invite_link_logs_in_once_and_sets_a_password(client, db):
    made = create(client, "Ada.L")
    assert made["username"] == "ada.l" and made["role"] == "annotator"
    assert made["has_password"] is False
    token = invite_token(made["invite_url"])
    stored = db.execute(text("SELECT token_hash FROM annotator_invites")).scalar_one()
    assert token not in stored and len(stored) == 64  # only its hash is kept

    with browser(client) as ada:
        page = ada.get(f"/invite/{token}")
        assert page.status_code == 200 and "ada.l" in page.text
        assert 'name="csrf_token"' in page.text
        assert ada.get(f"/invite/{token}").status_code == 200  # looking does not use it up
        short = ada.post(f"/invite/{token}", data={"password": "short"}, follow_redirects=False)
        assert short.status_code == 422 and "10 to 200 characters" in short.text
        used = ada.post(f"/invite/{token}", data={"password": "a long secret phrase"},
                        follow_redirects=False)
        assert used.status_code == 303 and used.headers["location"] == "/arena"
        cookie = used.headers["set-cookie"]
        assert "arena_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        again = ada.post(f"/invite/{token}", data={}, follow_redirects=False)
        assert again.status_code == 409 and "already been used" in again.text

    with browser(client) as other:
        assert log_in(other, "ada.l", "wrong password!").status_code == 401
        assert "username or the password is wrong" in log_in(other, "ada.l", "nope").text
        assert "username or the password is wrong" in log_in(other, "nobody", "nope").text
        ok = log_in(other, "ADA.L", "a long secret phrase")
        assert ok.status_code == 303 and ok.headers["location"] == "/arena"
    hashed = db.execute(text("SELECT password_hash FROM annotators")).scalar_one()
    assert hashed.startswith("$argon2id$")


def test_an_expired_or_unknown_invite_is_refused(client, db):
    made = create(client, "bo")
    db.execute(text("UPDATE annotator_invites SET expires_at = now() - interval '1 minute'"))
    db.commit()
    with browser(client) as bo:
        expired = bo.get(made["invite_url"].split("testserver", 1)[1])
        assert expired.status_code == 409 and "expired" in expired.text
        assert bo.get("/invite/not-a-token").status_code == 404
    fresh = client.post(f"/api/v1/annotators/{made['id']}/invites", headers=ADMIN)
    assert fresh.status_code == 201
    with browser(client) as bo:
        assert bo.post(f"/invite/{invite_token(fresh.json()['invite_url'])}",
                       follow_redirects=False).status_code == 303


def test_accounts_need_the_admin_token_and_valid_fields(client):
    assert client.post("/api/v1/annotators", json={"username": "x1"}).status_code == 401
    bad = client.post("/api/v1/annotators", headers=ADMIN, json={"username": "no spaces"})
    assert bad.status_code == 422 and "lowercase letters" in bad.json()["message"]
    role = client.post("/api/v1/annotators", headers=ADMIN, json={"username": "x1",
                                                                   "role": "root"})
    assert role.status_code == 422 and "role" in role.json()["message"]
    create(client, "x1")
    dup = client.post("/api/v1/annotators", headers=ADMIN, json={"username": "X1"})
    assert dup.status_code == 409 and "already exists" in dup.json()["message"]
    assert [a["username"] for a in client.get("/api/v1/annotators", headers=ADMIN).json()] == ["x1"]


def test_deactivating_or_a_new_password_logs_the_account_out(client, seeded, closed):
    made = create(client, "cy", password="first password")
    with browser(client) as cy:
        assert log_in(cy, "cy", "first password").status_code == 303
        assert cy.get("/arena", follow_redirects=False).status_code == 200
        changed = client.patch(f"/api/v1/annotators/{made['id']}", headers=ADMIN,
                               json={"password": "second password"})
        assert changed.status_code == 200
        gone = cy.get("/arena", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"] == "/login?next=%2Farena"
        assert log_in(cy, "cy", "second password").status_code == 303
        assert cy.get("/arena", follow_redirects=False).status_code == 200
        client.patch(f"/api/v1/annotators/{made['id']}", headers=ADMIN, json={"active": False})
        assert cy.get("/arena", follow_redirects=False).status_code == 303
        refused = log_in(cy, "cy", "second password")
        assert refused.status_code == 401 and "deactivated" in refused.text


def test_a_closed_arena_asks_for_an_account(client, seeded, closed):
    with browser(client) as anonymous:
        page = anonymous.get("/arena", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert anonymous.get("/rate", follow_redirects=False).status_code == 303
        vote = anonymous.post("/arena/battles/whatever/vote", data={"outcome": "a"})
        assert vote.status_code == 401 and "log in at /login" in vote.json()["message"]
        htmx = anonymous.post("/rate/whatever", data={"score": "3"},
                              headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and "log in" in htmx.text
        assert anonymous.get("/leaderboard").status_code == 200  # reading stays open
        login = anonymous.get("/arena")  # followed to the login page
        assert login.status_code == 200 and 'action="http://testserver/login"' in login.text


def test_an_open_arena_lets_visitors_and_accounts_vote_as_themselves(client, seeded, db):
    create(client, "dee", password="dee's password")
    token = re.search(r'data-battle="([^"]+)"', client.get("/arena").text)[1]
    assert client.post(f"/arena/battles/{token}/vote", data={"outcome": "a"}).status_code == 200
    with browser(client) as dee:
        assert log_in(dee, "dee", "dee's password").status_code == 303
        theirs = re.search(r'data-battle="([^"]+)"', dee.get("/arena").text)[1]
        assert dee.post(f"/arena/battles/{theirs}/vote", data={"outcome": "b"}).status_code == 200
    voters = db.execute(text(
        "SELECT r.name FROM votes v JOIN raters r ON r.id = v.rater_id ORDER BY v.id")).scalars()
    names = list(voters)
    assert names[0].startswith("visitor:") and names[1] == "annotator:dee"


def test_admin_accounts_reach_the_admin_pages_and_annotators_do_not(client):
    create(client, "boss", role="admin", password="boss password")
    create(client, "ann", password="ann password")
    with browser(client) as boss:
        landed = log_in(boss, "boss", "boss password")
        assert landed.headers["location"] == "/admin"
        assert "Run inference" in boss.get("/admin").text or "Models" in boss.get("/admin").text
        assert boss.get("/admin/annotators").status_code == 200
    with browser(client) as ann:
        log_in(ann, "ann", "ann password")
        assert "Admin token" in ann.get("/admin").text  # the login form, not the admin page
        refused = ann.get("/admin/annotators")
        assert refused.status_code == 401


def test_the_login_redirect_stays_on_this_site(client):
    create(client, "eve", password="eve password")
    with browser(client) as eve:
        assert log_in(eve, "eve", "eve password", "/leaderboard").headers["location"] == \
            "/leaderboard"
        for away in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            assert log_in(eve, "eve", "eve password", away).headers["location"] == "/arena"


def test_sessions_expire(client, seeded, closed, monkeypatch):
    from app.config import get_settings

    create(client, "fay", password="fay password")
    with browser(client) as fay:
        assert log_in(fay, "fay", "fay password").status_code == 303
        assert fay.get("/arena", follow_redirects=False).status_code == 200
        monkeypatch.setenv("ARENA_ACCOUNTS__SESSION_HOURS", str(timedelta(seconds=0.5)
                                                                .total_seconds() / 3600))
        get_settings.cache_clear()
        import time

        time.sleep(1.2)
        assert fay.get("/arena", follow_redirects=False).status_code == 303

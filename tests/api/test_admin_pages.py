"""The admin page's login, what it shows, and its protection against cross-site posts."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import ADMIN, ADMIN_TOKEN


def login(client):
    reply = client.post("/admin/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert reply.status_code == 303 and "arena_admin" in reply.cookies
    return reply


def test_the_page_asks_for_the_token_and_refuses_a_wrong_one(client):
    assert "Admin token" in client.get("/admin").text
    wrong = client.post("/admin/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    assert "arena_admin" not in wrong.cookies


def test_models_their_state_and_an_outage_are_shown_escaped(client, db):
    model = client.post("/api/v1/models", headers=ADMIN, json={
        "name": "<script>alert(1)</script>",
        "adapter": {"kind": "http", "url": "http://127.0.0.1:9/infer"}}).json()
    db.execute(text("UPDATE speech_models SET outage_since = now(), "
                    "outage_reason = '5 of the last 6 requests failed' WHERE id = :id"),
               {"id": model["id"]})
    db.commit()
    login(client)
    page = client.get("/admin").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "outage" in page and "5 of the last 6 requests failed" in page
    assert "Run inference" in page


def test_actions_need_the_login_and_a_same_origin_form(client):
    model = client.post("/api/v1/models", headers=ADMIN, json={
        "name": "m", "adapter": {"kind": "http", "url": "http://127.0.0.1:9/infer"}}).json()
    action = f"/admin/models/{model['id']}/inference"
    assert client.post(action).status_code == 401
    login(client)
    refused = client.post(action, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "own pages" in refused.json()["message"]
    assert client.get("/api/v1/models/1/responses", headers=ADMIN).json() == []

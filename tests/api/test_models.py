from tests.conftest import ADMIN


def test_admin_adds_lists_and_deactivates_a_model(client):
    body = {"name": "gpt-4o-realtime", "organisation": "OpenAI", "backbone": "GPT-4o",
            "speech_encoder": "proprietary", "speech_decoder": "proprietary",
            "sector": "industry", "access": "closed", "input_sample_rate": 24000}
    created = client.post("/api/v1/models", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    model = created.json()
    assert {k: model[k] for k in body} == body
    assert model["active"] is True and model["adapter"] == {"kind": "upload"}

    listed = client.get("/api/v1/models", headers=ADMIN).json()
    assert [(m["id"], m["name"]) for m in listed] == [(model["id"], "gpt-4o-realtime")]

    off = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/api/v1/models?active=true", headers=ADMIN).json() == []


def test_a_taken_name_is_refused(client):
    assert client.post("/api/v1/models", headers=ADMIN, json={"name": "m"}).status_code == 201
    again = client.post("/api/v1/models", headers=ADMIN, json={"name": "m"})
    assert again.status_code == 409
    assert "already exists" in again.json()["message"]
    assert len(client.get("/api/v1/models", headers=ADMIN).json()) == 1


def test_admin_endpoints_need_the_right_token(client):
    missing = client.get("/api/v1/models")
    assert missing.status_code == 401 and "admin token" in missing.json()["message"]
    wrong = client.post("/api/v1/models", json={"name": "x"},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong" in wrong.json()["message"]
    assert client.get("/api/v1/models", headers=ADMIN).json() == []


def test_bad_model_fields_get_a_readable_error(client):
    for body, words in [
        ({}, "name: required field is missing"),
        ({"name": "x", "sector": "government"}, "sector"),
        ({"name": "x", "input_sample_rate": 12345}, "12345 Hz is not supported"),
        ({"name": "x", "adapter": {"kind": "telepathy"}}, "telepathy"),
        ({"name": "x", "colour": "red"}, "colour: unknown field"),
        ('{"name": ', "not valid JSON"),
    ]:
        if isinstance(body, str):
            reply = client.post("/api/v1/models", content=body,
                                headers=ADMIN | {"Content-Type": "application/json"})
        else:
            reply = client.post("/api/v1/models", headers=ADMIN, json=body)
        assert reply.status_code == 422, body
        assert words in reply.json()["message"], reply.json()
    assert client.get("/api/v1/models", headers=ADMIN).json() == []


def test_active_must_be_true_or_false(client):
    model = client.post("/api/v1/models", headers=ADMIN, json={"name": "m"}).json()
    reply = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN, json={"active": None})
    assert reply.status_code == 422 and "active must be true or false" in reply.json()["message"]
    cleared = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN,
                           json={"organisation": None})
    assert cleared.status_code == 200 and cleared.json()["active"] is True
    missing = client.patch("/api/v1/models/999", headers=ADMIN, json={"active": False})
    assert missing.status_code == 404 and "no model with id 999" in missing.json()["message"]


def test_unknown_addresses_answer_in_the_error_shape(client):
    assert client.get("/api/v1/nothing-here").json() == {
        "error": "not_found", "message": "there is nothing at this address"}
    wrong_method = client.delete("/api/v1/leaderboard")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"

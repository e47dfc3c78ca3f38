"""Adding a model with an inference adapter: the config is checked when it arrives, secrets are
only ever names of environment variables, and an endpoint that does not answer is a warning."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, free_port

OPENAI = {"kind": "openai_chat_audio", "base_url": "https://api.openai.com/v1",
          "model": "gpt-4o-audio-preview", "api_key_env": "OPENAI_API_KEY", "voice": "alloy"}


def add(client, adapter, **fields):
    return client.post("/api/v1/models", headers=ADMIN,
                       json={"name": "m", "adapter": adapter, **fields})


@pytest.mark.parametrize(("adapter", "fields", "says"), [
    ({"kind": "telepathy"}, {}, "does not match any of the expected tags"),
    ({"kind": "openai_chat_audio"}, {}, "model: required field is missing"),
    (OPENAI | {"api_key_env": "sk-proj-abc123"}, {}, "NAME of an environment variable"),
    (OPENAI | {"api_key": "sk-proj-abc123"}, {}, "secrets are never stored"),
    ({"kind": "gemini", "api_key_env": "AIzaSyExample"}, {}, "NAME of an environment variable"),
    ({"kind": "http", "url": "ftp://lab.example"}, {}, "is not an http(s) URL"),
    ({"kind": "http", "url": "https://lab.example/infer", "bearer_token": "x"}, {},
     "secrets are never stored"),
    ({"kind": "command", "command": ["infer.sh", "{input}"]}, {}, "{output}"),
    ({"kind": "command", "command": ["infer.sh", "{input}", "{output}"]}, {},
     "ARENA_INFERENCE__ALLOW_COMMAND_ADAPTER"),
    (OPENAI | {"timeout_s": 0}, {}, "timeout_s"),
    (OPENAI, {"input_sample_rate": 12_345}, "12345 Hz is not supported"),
])
def test_a_bad_adapter_config_is_refused_with_a_reason(client, adapter, fields, says):
    reply = add(client, adapter, **fields)
    assert reply.status_code == 422, reply.text
    assert says in reply.json()["message"]
    assert client.get("/api/v1/models", headers=ADMIN).json() == []


def test_a_good_config_is_stored_as_given_with_names_not_secrets(client, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-real-secret")
    reply = add(client, OPENAI | {"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    assert reply.status_code == 201, reply.text
    model = reply.json()
    assert model["adapter"]["api_key_env"] == "OPENAI_API_KEY"
    assert "sk-the-real-secret" not in reply.text
    listed = client.get(f"/api/v1/models/{model['id']}", headers=ADMIN).text
    assert "sk-the-real-secret" not in listed


def test_an_endpoint_that_does_not_answer_is_a_warning_not_a_refusal(client, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    reply = add(client, OPENAI | {"base_url": dead})
    assert reply.status_code == 201, reply.text
    warnings = reply.json()["warnings"]
    assert any("did not answer" in w for w in warnings), warnings
    assert any("OPENAI_API_KEY" in w for w in warnings), warnings


def test_the_adapter_can_be_changed_later(client):
    model = add(client, {"kind": "upload"}).json()
    changed = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN,
                           json={"adapter": {"kind": "http", "url": "http://127.0.0.1:9/infer",
                                             "request_format": "json"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["adapter"]["kind"] == "http"
    assert changed.json()["adapter"]["request_format"] == "json"
    refused = client.patch(f"/api/v1/models/{model['id']}", headers=ADMIN,
                           json={"adapter": None})
    assert refused.status_code == 422 and "adapter cannot be null" in refused.json()["message"]

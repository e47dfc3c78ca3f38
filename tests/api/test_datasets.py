"""Importing datasets of spoken prompts and a model's responses, and refusing bad input whole."""

import json

import pytest

from tests.conftest import (
    ADMIN,
    DATA,
    dataset_zip,
    make_zip,
    prompt_line,
    responses_zip,
    stored_files,
    tone,
)


def _import(client, data: bytes, name: str | None = "set-1", filename="set.zip"):
    form = {"name": name} if name else {}
    return client.post("/api/v1/datasets", headers=ADMIN, data=form,
                       files={"file": (filename, data, "application/zip")})


def _counts(db):
    from sqlalchemy import text

    return {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("prompts", "responses", "speech_models")}


def test_a_dataset_with_every_field_imports(client):
    line = prompt_line("emo-1", level="l4", domain="Social", text_cn="我拿到结果了",
                       emotion="sad", sarcasm="sincere", age="adult", gender="female",
                       contrast_group="cg-1", task_description="Comfort the speaker")
    files = {"manifest.jsonl": json.dumps(line) + "\n\n", "audio/emo-1.wav": tone(1.2)}
    reply = _import(client, make_zip(files, top="my-dataset/"), name=None, filename="my-dataset.zip")
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"dataset": "my-dataset", "prompts": 1, "prompt_ids": ["emo-1"]}
    [prompt] = client.get("/api/v1/prompts", headers=ADMIN).json()
    assert prompt["level"] == "L4" and prompt["domain"] == "social companionship"
    assert prompt["contrast_group"] == "cg-1" and prompt["emotion"] == "sad"
    assert prompt["text_cn"] == "我拿到结果了" and prompt["duration_s"] == pytest.approx(1.2)


def test_real_mp3_prompts_import(client):
    files = {
        "manifest.jsonl": json.dumps(prompt_line("jeopardy", audio="jeopardy.mp3", level="L1",
                                                 task="Knowledge question")),
        "jeopardy.mp3": (DATA / "talk-arena" / "jeopardy.mp3").read_bytes(),
    }
    assert _import(client, make_zip(files)).status_code == 201


BAD_MANIFESTS = [
    ({"level": "L5"}, "level 'L5' is not one of L1, L2, L3, L4"),
    ({"domain": "sports"}, "domain 'sports' is not one of"),
    ({"text": None}, "text"),
    ({"emotion": "x" * 65}, "emotion: String should have at most 64 characters"),
    ({"language": ""}, "language"),
]


@pytest.mark.parametrize("override,words", BAD_MANIFESTS)
def test_a_bad_manifest_line_is_refused_with_its_line_number(client, db, override, words):
    good = prompt_line("ok-1")
    bad = {k: v for k, v in prompt_line("bad-1", **override).items() if v is not None}
    files = {"manifest.jsonl": json.dumps(good) + "\n" + json.dumps(bad),
             "audio/ok-1.wav": tone(), "audio/bad-1.wav": tone()}
    reply = _import(client, make_zip(files))
    assert reply.status_code == 422
    assert "line 2" in reply.json()["message"] and words in reply.json()["message"]
    assert _counts(db)["prompts"] == 0


def test_a_missing_field_is_named(client, db):
    line = prompt_line("x")
    del line["task"]
    reply = _import(client, make_zip({"manifest.jsonl": json.dumps(line), "audio/x.wav": tone()}))
    assert reply.status_code == 422
    assert reply.json()["message"].endswith("line 1: task: required field is missing")


@pytest.mark.parametrize("audio,status,words", [
    (b"", 422, "empty"),
    (b"this is not a sound file at all" * 10, 422, "not a readable audio file"),
    (tone(2.0)[:20_000], 422, "truncated"),
])
def test_bad_audio_in_a_dataset_leaves_nothing_behind(client, db, arena_env, audio, status, words):
    files = {"manifest.jsonl": "\n".join(json.dumps(prompt_line(k)) for k in ("a1", "a2")),
             "audio/a1.wav": tone(), "audio/a2.wav": audio}
    reply = _import(client, make_zip(files))
    assert reply.status_code == status
    assert "line 2" in reply.json()["message"] and words in reply.json()["message"]
    assert _counts(db)["prompts"] == 0
    from app.config import get_settings

    assert stored_files(get_settings().audio_dir) == []  # a1's canonical file was removed


def test_not_a_zip_and_missing_audio(client):
    assert "not a readable zip" in _import(client, b"plain text").json()["message"]
    no_manifest = _import(client, make_zip({"a.wav": tone()}))
    assert no_manifest.status_code == 422 and "manifest.jsonl" in no_manifest.json()["message"]
    missing = _import(client, make_zip({"manifest.jsonl": json.dumps(prompt_line("m"))}))
    assert missing.status_code == 422 and "not in the zip" in missing.json()["message"]


def test_an_upload_over_the_size_limit_is_refused(client, monkeypatch):
    monkeypatch.setenv("ARENA_AUDIO__MAX_BYTES", "20000")
    from app.config import get_settings

    get_settings.cache_clear()
    files = {"manifest.jsonl": json.dumps(prompt_line("big")), "audio/big.wav": tone(2.0)}
    reply = _import(client, make_zip(files))
    assert reply.status_code == 413 and "limit" in reply.json()["message"]


def test_prompt_ids_are_unique(client, db):
    assert _import(client, dataset_zip(["d1", "d2"])).status_code == 201
    again = _import(client, dataset_zip(["d2", "d3"]))
    assert again.status_code == 409 and "d2" in again.json()["message"]
    twice = _import(client, make_zip({
        "manifest.jsonl": json.dumps(prompt_line("e1")) + "\n" + json.dumps(prompt_line("e1")),
        "audio/e1.wav": tone()}))
    assert twice.status_code == 422 and "more than once" in twice.json()["message"]
    assert _counts(db)["prompts"] == 2


def _model(client, name="m1") -> int:
    return client.post("/api/v1/models", headers=ADMIN, json={"name": name}).json()["id"]


def test_responses_upload_as_zip_or_single_clip(client, db):
    _import(client, dataset_zip(["q1", "q2"]))
    model = _model(client)
    zipped = client.post(f"/api/v1/models/{model}/responses", headers=ADMIN,
                         files={"file": ("r.zip", responses_zip(["q1"]), "application/zip")})
    assert zipped.status_code == 201 and zipped.json()["responses"] == 1
    answer = (DATA / "talk-arena" / "jeopardy_answer.mp3").read_bytes()
    single = client.post(f"/api/v1/models/{model}/responses", headers=ADMIN,
                         data={"prompt_id": "q2", "transcript": "Who was Robert F. Kennedy?"},
                         files={"file": ("answer.mp3", answer, "audio/mpeg")})
    assert single.status_code == 201, single.text
    listed = client.get(f"/api/v1/models/{model}/responses", headers=ADMIN).json()
    assert [(r["prompt_id"], r["status"]) for r in listed] == [("q1", "ready"), ("q2", "ready")]
    assert listed[1]["transcript"] == "Who was Robert F. Kennedy?"
    assert client.get(f"/api/v1/models/{model}", headers=ADMIN).json()["responses_ready"] == 2


def test_bad_responses_are_refused_and_leave_nothing(client, db, arena_env):
    from app.config import get_settings

    _import(client, dataset_zip(["q1"]))
    model = _model(client)
    files_before = stored_files(get_settings().audio_dir)

    def upload(**kwargs):
        return client.post(f"/api/v1/models/{model}/responses", headers=ADMIN, **kwargs)

    unknown = upload(files={"file": ("r.zip", responses_zip(["q1", "nope"]), "application/zip")})
    assert unknown.status_code == 422 and "no prompt with id: nope" in unknown.json()["message"]
    not_audio = upload(data={"prompt_id": "q1"}, files={"file": ("a.wav", b"hello" * 50, "audio/wav")})
    assert not_audio.json()["message"] == (
        "a.wav: not a readable audio file (WAV, FLAC, MP3 or OGG expected)")
    empty = upload(data={"prompt_id": "q1"}, files={"file": ("a.wav", b"", "audio/wav")})
    assert empty.status_code == 422 and "empty" in empty.json()["message"]
    no_prompt = upload(files={"file": ("a.wav", tone(), "audio/wav")})
    assert no_prompt.status_code == 422 and "prompt_id" in no_prompt.json()["message"]
    assert _counts(db)["responses"] == 0
    assert stored_files(get_settings().audio_dir) == files_before

    assert upload(data={"prompt_id": "q1"}, files={"file": ("a.wav", tone(), "audio/wav")}).status_code == 201
    second = upload(data={"prompt_id": "q1"}, files={"file": ("b.wav", tone(), "audio/wav")})
    assert second.status_code == 409 and "already has a response (ready, or being generated) to: q1" in second.json()["message"]
    assert _counts(db)["responses"] == 1
    assert len(stored_files(get_settings().audio_dir)) == len(files_before) + 1

    missing_model = client.post("/api/v1/models/999/responses", headers=ADMIN,
                                files={"file": ("a.wav", tone(), "audio/wav")})
    assert missing_model.status_code == 404

"""Preference and score exports: zips in the Hugging Face audiofolder layout, read by the
`datasets` library's own audiofolder loader, whose clips are the stored audio."""

from __future__ import annotations

import io
import json
import os
import zipfile

import fsspec
import pytest
import soundfile as sf

from app.audio.storage import get_storage
from app.exports.audiofolder import PREFERENCE_FIELDS, SCORE_FIELDS
from tests.conftest import ADMIN
from tests.exports.conftest import JUDGE, PEOPLE

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the loader is local; it never needs the Hub


def download(client, path, **params):
    reply = client.get(path, headers=ADMIN, params=params)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/zip"
    return reply


def audiofolder(archive: bytes, tmp_path):
    """The examples as `datasets`' audiofolder loader builds them from the zip: the features
    it infers and each example with its audio columns resolved to files in the zip. Decoding
    the audio is left to soundfile (the loader's own decoder needs torchcodec)."""
    from datasets import DownloadManager, load_dataset_builder

    path = tmp_path / "export.zip"
    path.write_bytes(archive)
    builder = load_dataset_builder("audiofolder", data_files=[str(path)],
                                   cache_dir=str(tmp_path / "hf-cache"))
    splits = builder._split_generators(DownloadManager())
    assert [split.name for split in splits] == ["train"]
    examples = [example for _, example in builder._generate_examples(**splits[0].gen_kwargs)]
    return builder.info.features, examples


def read_clip(url: str) -> bytes:
    with fsspec.open(url, "rb") as handle:
        return handle.read()


def test_preferences_hold_each_human_vote_with_a_winner(client, arena_log, tmp_path):
    reply = download(client, "/api/v1/exports/preferences")
    assert reply.headers["content-disposition"] == 'attachment; filename="preferences.zip"'
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[0] == "metadata.jsonl"
    lines = [json.loads(line) for line in archive.read("metadata.jsonl").decode().splitlines()]

    votes, plan = arena_log["votes"], arena_log["plan"]
    expected = [(v, p) for v, p in zip(votes, plan) if p[3] in ("a", "b") and p[4] != JUDGE]
    assert [line["vote_id"] for line in lines] == [v.id for v, _ in expected]
    storage, responses, prompts = get_storage(), arena_log["responses"], arena_log["prompts"]
    for line, (vote, (prompt, a, b, outcome, _)) in zip(lines, expected):
        assert list(line) == list(PREFERENCE_FIELDS)
        winner, loser = (a, b) if outcome == "a" else (b, a)
        assert (line["chosen_model"], line["rejected_model"]) == (winner, loser)
        assert line["chosen_side"] == outcome
        assert line["prompt_id"] == prompt and line["prompt_text"] == f"Spoken prompt {prompt}"
        assert line["rater_kind"] == "human" and line["rater"].startswith("h-")
        # Each file column names a clip in the zip holding exactly the stored audio.
        assert archive.read(line["prompt_file_name"]) == storage.get(prompts[prompt].audio_key)
        assert archive.read(line["chosen_file_name"]) == storage.get(responses[prompt, winner].audio_key)
        assert archive.read(line["rejected_file_name"]) == storage.get(responses[prompt, loser].audio_key)
        assert line["chosen_transcript"] == f"answer to {prompt}"
    soc = next(line for line in lines if line["prompt_id"] == "soc-1")
    assert (soc["emotion"], soc["age"], soc["gender"], soc["contrast_group"]) == (
        "sad", "adult", "female", "cg-1")
    assert soc["task_description"] == "Hears the sadness and answers gently."
    # A clip used by several examples is stored once; nothing else is in the zip.
    used = {line[f"{c}_file_name"] for line in lines for c in ("prompt", "chosen", "rejected")}
    assert sorted(names[1:]) == sorted(used) and len(names) == len(set(names))
    for person in PEOPLE:
        assert person.encode() not in reply.content


def test_the_audiofolder_loader_reads_the_preferences(client, arena_log, tmp_path):
    from datasets import Audio

    reply = download(client, "/api/v1/exports/preferences", rater="all")
    features, examples = audiofolder(reply.content, tmp_path)
    for column in ("prompt", "chosen", "rejected"):
        assert isinstance(features[column], Audio)
    assert "prompt_file_name" not in features
    winners = [p for p in arena_log["plan"] if p[3] in ("a", "b")]
    assert len(examples) == len(winners)  # rater=all adds the judge's votes
    assert {e["rater"] for e in examples if e["rater_kind"] == "judge"} == {JUDGE}
    responses = arena_log["responses"]
    for example in examples:
        chosen = read_clip(example["chosen"])
        expected = get_storage().get(responses[example["prompt_id"], example["chosen_model"]].audio_key)
        assert chosen == expected
        samples, rate = sf.read(io.BytesIO(read_clip(example["prompt"])))
        assert rate == 24_000
        assert len(samples) / rate == pytest.approx(
            arena_log["prompts"][example["prompt_id"]].duration_s, abs=1e-3)


def test_preference_filters(client, arena_log):
    def vote_ids(**params):
        archive = zipfile.ZipFile(io.BytesIO(download(client, "/api/v1/exports/preferences",
                                                      **params).content))
        return [json.loads(line)["vote_id"]
                for line in archive.read("metadata.jsonl").decode().splitlines()]

    votes, plan = arena_log["votes"], arena_log["plan"]
    judged = [v.id for v, p in zip(votes, plan) if p[4] == JUDGE]
    assert vote_ids(rater=JUDGE) == judged
    assert vote_ids(rater="all", after_id=judged[1]) == [
        v.id for v, p in zip(votes, plan) if p[3] in ("a", "b") and v.id > judged[1]]
    assert vote_ids(domain="education", rater="all") == [
        v.id for v, p in zip(votes, plan) if p[0] == "edu-1" and p[3] in ("a", "b")]
    empty = zipfile.ZipFile(io.BytesIO(download(client, "/api/v1/exports/preferences",
                                                dataset="none").content))
    assert empty.namelist() == ["metadata.jsonl"] and empty.read("metadata.jsonl") == b""


def test_scores_hold_judge_scores_and_human_ratings(client, arena_log, tmp_path, db):
    from sqlalchemy import select

    from app.db.models import HumanRating, Score

    reply = download(client, "/api/v1/exports/scores")
    assert reply.headers["content-disposition"] == 'attachment; filename="scores.zip"'
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    lines = [json.loads(line) for line in archive.read("metadata.jsonl").decode().splitlines()]
    judged = db.scalars(select(Score).where(Score.status == "scored").order_by(Score.id)).all()
    rated = db.scalars(select(HumanRating).where(HumanRating.score.is_not(None))
                       .order_by(HumanRating.id)).all()
    assert [(line["rater_kind"], line["score_id"], line["score"]) for line in lines] == (
        [("judge", s.id, s.score) for s in judged] + [("human", h.id, h.score) for h in rated])
    storage = get_storage()
    for line in lines:
        assert list(line) == list(SCORE_FIELDS)
        response = arena_log["responses"][line["prompt_id"], line["model"]]
        assert line["response_id"] == response.id
        assert archive.read(line["response_file_name"]) == storage.get(response.audio_key)
        assert archive.read(line["prompt_file_name"]) == storage.get(
            arena_log["prompts"][line["prompt_id"]].audio_key)
        if line["rater_kind"] == "judge":
            assert line["rater"] == JUDGE and line["reason"].startswith("reason")
            assert line["judge_caption"] == "a calm adult voice"
        else:
            assert line["rater"].startswith("h-") and line["reason"] is None

    features, examples = audiofolder(reply.content, tmp_path)
    assert set(features) >= {"prompt", "response", "score", "rater"}
    assert [e["score_id"] for e in examples] == [line["score_id"] for line in lines]
    assert read_clip(examples[0]["response"]) == archive.read(lines[0]["response_file_name"])

    def kinds(**params):
        data = download(client, "/api/v1/exports/scores", **params).content
        body = zipfile.ZipFile(io.BytesIO(data)).read("metadata.jsonl").decode()
        return {json.loads(line)["rater_kind"] for line in body.splitlines()}

    assert kinds(rater="human") == {"human"}
    assert kinds(rater=JUDGE) == {"judge"}


@pytest.mark.parametrize("path, params, message", [
    ("/api/v1/exports/preferences", {"rater": "nobody"}, "rater 'nobody' is neither"),
    ("/api/v1/exports/preferences", {"level": "5"}, "level '5' is not one of"),
    ("/api/v1/exports/scores", {"domain": "sports"}, "domain 'sports' is not one of"),
    ("/api/v1/exports/preferences", {"after_id": "-3"}, "after_id"),
])
def test_bad_parameters(client, arena_log, path, params, message):
    reply = client.get(path, headers=ADMIN, params=params)
    assert reply.status_code == 422
    assert message in reply.json()["message"]


def test_flagged_raters_ratings_are_left_out_of_the_scores(client, arena_log, db):
    from app.db.base import utcnow

    def raters():
        data = download(client, "/api/v1/exports/scores", rater="human").content
        body = zipfile.ZipFile(io.BytesIO(data)).read("metadata.jsonl").decode()
        return {json.loads(line)["rater"] for line in body.splitlines()}

    assert len(raters()) == 2
    person = arena_log["raters"][PEOPLE[1]]
    person.flagged_at = utcnow()
    db.commit()
    from app.exports.stream import Pseudonyms
    assert raters() == {Pseudonyms("test-secret-key")(arena_log["raters"][PEOPLE[0]].id)}


@pytest.mark.parametrize("path", ["/api/v1/exports/preferences", "/api/v1/exports/scores",
                                  "/api/v1/exports/prompts"])
def test_a_clip_missing_from_the_store_is_a_clear_error_not_a_cut_download(
        client, arena_log, path):
    storage = get_storage()
    prompt = next(iter(arena_log["prompts"].values()))
    kept = storage.get(prompt.audio_key)
    storage.delete(prompt.audio_key)
    try:
        reply = client.get(path, headers=ADMIN)
        assert reply.status_code == 500
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.json()["error"] == "audio_missing"
        assert prompt.audio_key in reply.json()["message"]
        assert "missing from the audio store" in reply.json()["message"]
    finally:
        storage.put_at(prompt.audio_key, kept)
    assert download(client, path).content[:2] == b"PK"  # whole again once the file is back

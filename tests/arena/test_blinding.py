"""Blinding: nothing a battle page and its audio send names a model, and the two answers reach
the listener in one form and at one loudness.

Two models answer with real speech (CMU ARCTIC, tests/data/cmu-arctic) recorded very
differently: one quiet, at 16 kHz, with long silences around it and its model name in the WAV's
tags and file name; the other loud, stereo, at 48 kHz, as FLAC tagged with its organisation.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr
from sqlalchemy import text

from app.audio import serving
from tests.arena.test_vote_page import open_page
from tests.conftest import ADMIN, DATA, dataset_zip, make_zip

QUIET = {"name": "Zephyr-Voice-9000", "organisation": "Acme Speech Labs"}
LOUD = {"name": "Quill S2S Pro", "organisation": "Northwind AI"}
ADAPTER_MODEL = "zephyr-audio-preview-2026"
MODEL_VERSION = "quill-build-7731"
PROMPTS = ["blind-1", "blind-2"]


def _speech(name: str) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(DATA / "cmu-arctic" / name, dtype="float64")
    return samples, rate


def quiet_answer() -> bytes:
    """awb at -26 dB, 16 kHz, 1.5 s of silence before and 1 s after, tagged with the model."""
    samples, rate = _speech("awb_arctic_a0007.wav")
    samples = np.concatenate([np.zeros(int(1.5 * rate)), samples * 0.05, np.zeros(rate)])
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, 1, format="WAV", subtype="PCM_16") as handle:
        handle.title = QUIET["name"]
        handle.artist = QUIET["organisation"]
        handle.write(samples)
    return buffer.getvalue()


def loud_answer() -> bytes:
    """slt near full scale, stereo at 48 kHz, FLAC tagged with the organisation."""
    samples, rate = _speech("slt_arctic_a0009.wav")
    samples = soxr.resample(samples, rate, 48_000) * (0.95 / np.abs(samples).max())
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", 48_000, 2, format="FLAC", subtype="PCM_24") as handle:
        handle.title = LOUD["name"]
        handle.comment = LOUD["organisation"]
        handle.write(np.stack([samples, samples], axis=1))
    return buffer.getvalue()


def upload(client, model: dict, filename: str, audio: bytes) -> None:
    lines = [{"prompt_id": key, "audio": f"{key}-{filename}"} for key in PROMPTS]
    files = {"manifest.jsonl": "\n".join(json.dumps(line) for line in lines)}
    files |= {f"{key}-{filename}": audio for key in PROMPTS}
    reply = client.post(f"/api/v1/models/{model['id']}/responses", headers=ADMIN,
                        files={"file": ("answers.zip", make_zip(files), "application/zip")})
    assert reply.status_code == 201, reply.text


def two_models(client, db) -> list[dict]:
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "blind"},
                        files={"file": ("d.zip", dataset_zip(PROMPTS), "application/zip")})
    assert reply.status_code == 201, reply.text
    models = []
    for spec, filename, audio in ((QUIET, "zephyr-voice-9000.wav", quiet_answer()),
                                  (LOUD, "quill-s2s-pro.flac", loud_answer())):
        created = client.post("/api/v1/models", headers=ADMIN, json=spec)
        assert created.status_code == 201, created.text
        upload(client, created.json(), filename, audio)
        models.append(created.json())
    # What an adapter would have recorded: the provider's model string and the answer's version.
    db.execute(text("UPDATE speech_models SET adapter = CAST(:a AS jsonb) WHERE id = :id"),
               {"a": json.dumps({"kind": "openai_chat_audio", "model": ADAPTER_MODEL,
                                 "base_url": "http://127.0.0.1:9/v1"}), "id": models[0]["id"]})
    db.execute(text("UPDATE responses SET model_version = :v WHERE model_id = :id"),
               {"v": MODEL_VERSION, "id": models[1]["id"]})
    db.commit()
    return models


def identifiers(db) -> set[str]:
    """Everything that could name a model or one of its answers."""
    found = {QUIET["name"], QUIET["organisation"], LOUD["name"], LOUD["organisation"],
             ADAPTER_MODEL, MODEL_VERSION, "zephyr-voice-9000", "quill-s2s-pro", "Zephyr",
             "Quill", "Northwind", "Acme"}
    for key in db.execute(text("SELECT audio_key FROM responses")).scalars():
        found |= {key, key.split("/")[1].split(".")[0]}  # storage keys and file names
    return found


def fetch_everything(client, path: str) -> tuple[str, dict[str, tuple[dict, bytes]]]:
    """The page and every resource it references, as (headers, body) per URL."""
    page = client.get(path)
    assert page.status_code == 200
    sent = {path: (dict(page.headers), page.content)}
    open_page(client, "/healthz")  # the form token, for later requests
    for url in re.findall(r'(?:src|href)="(/[^"]*)"', page.text):
        if url.startswith(("/arena/audio/", "/static/")):
            reply = client.get(url)
            assert reply.status_code == 200, (url, reply.status_code)
            sent[url] = (dict(reply.headers), reply.content)
    return page.text, sent


def test_nothing_a_battle_sends_names_a_model_and_both_answers_sound_alike(client, db):
    two_models(client, db)
    names = identifiers(db)

    html, sent = fetch_everything(client, "/arena")
    token = re.search(r'data-battle="([^"]+)"', html)[1]
    audio_urls = {f"/arena/audio/{token}/{slot}" for slot in ("prompt", "a", "b")}
    assert audio_urls <= set(sent)
    assert any(url.startswith("/static/vote.js") for url in sent)
    for url, (headers, body) in sent.items():
        haystack = (json.dumps(headers) + url).encode() + body
        for name in names:
            assert name.lower().encode() not in haystack.lower(), (name, url)
    # The page's URLs carry the battle's token and nothing else that varies: no ids.
    for url in re.findall(r'(?:src|href|hx-[a-z]+|data-[a-z-]+-url)="(/[^"]*)"', html):
        if not url.startswith("/static/"):
            assert not re.search(r"\d", url.replace(token, "")), url

    a_headers, a = sent[f"/arena/audio/{token}/a"]
    b_headers, b = sent[f"/arena/audio/{token}/b"]
    # The same headers, byte for byte, but the length; nothing dated or derived from a file.
    assert {k: v for k, v in a_headers.items() if k != "content-length"} == \
        {k: v for k, v in b_headers.items() if k != "content-length"}
    assert a_headers["content-type"] == "audio/flac"
    assert a_headers["cache-control"].startswith("private")
    assert not {"etag", "last-modified", "content-disposition"} & set(a_headers)

    clips = []
    for data in (a, b):
        info = sf.info(io.BytesIO(data))
        assert (info.format, info.subtype, info.samplerate, info.channels) == \
            ("FLAC", "PCM_16", serving.SERVED_RATE, 1)
        assert flac_block_types(data) == [0], "metadata besides STREAMINFO"
        samples, rate = sf.read(io.BytesIO(data), dtype="float64")
        clips.append(samples)
    loudness = [pyloudnorm.Meter(serving.SERVED_RATE).integrated_loudness(c) for c in clips]
    assert abs(loudness[0] - loudness[1]) <= 0.5, loudness
    assert all(abs(level - serving.TARGET_LUFS) <= 0.5 for level in loudness), loudness
    for samples in clips:  # the quiet answer's 1.5 s lead-in and 1 s tail are gone
        loud = np.flatnonzero(np.abs(samples) > 10 ** (-40 / 20))
        assert loud[0] / serving.SERVED_RATE < 0.2
        assert (len(samples) - loud[-1]) / serving.SERVED_RATE < 0.3
        assert np.abs(samples).max() <= 10 ** (-1 / 20) + 1e-4  # the -1 dBFS ceiling


def flac_block_types(data: bytes) -> list[int]:
    assert data[:4] == b"fLaC"
    offset, types = 4, []
    while True:
        header = data[offset]
        types.append(header & 0x7F)
        offset += 4 + int.from_bytes(data[offset + 1:offset + 4], "big")
        if header & 0x80:
            return types


def test_clips_are_made_when_the_battle_is_served(client, db):
    from app.audio.storage import get_storage

    two_models(client, db)
    client.get("/arena")
    storage = get_storage()
    keys = db.execute(text(
        "SELECT p.audio_key, ra.audio_key, rb.audio_key FROM battles b "
        "JOIN prompts p ON p.id = b.prompt_id JOIN responses ra ON ra.id = b.response_a_id "
        "JOIN responses rb ON rb.id = b.response_b_id")).one()
    assert all(storage.exists(serving.served_key(key)) for key in keys)


def test_audio_answers_byte_ranges(client, db):
    two_models(client, db)
    token = re.search(r'data-battle="([^"]+)"', client.get("/arena").text)[1]
    whole = client.get(f"/arena/audio/{token}/a").content
    part = client.get(f"/arena/audio/{token}/a", headers={"Range": "bytes=4-99"})
    assert part.status_code == 206 and part.content == whole[4:100]
    assert part.headers["content-range"] == f"bytes 4-99/{len(whole)}"
    tail = client.get(f"/arena/audio/{token}/a", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole[-10:]
    beyond = client.get(f"/arena/audio/{token}/a", headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole)}"


def test_an_expired_battle_token_is_refused(client, db):
    two_models(client, db)
    token = re.search(r'data-battle="([^"]+)"', open_page(client))[1]
    assert client.get(f"/arena/audio/{token}/a").status_code == 200
    db.execute(text("UPDATE battles SET expires_at = now() - interval '1 second'"))
    db.commit()
    for method, path, data in (("GET", f"/arena/audio/{token}/a", None),
                               ("GET", f"/arena/audio/{token}/prompt", None),
                               ("POST", f"/arena/battles/{token}/vote", {"outcome": "a"}),
                               ("POST", f"/arena/battles/{token}/plays", {"heard_a": "1"}),
                               ("POST", f"/arena/battles/{token}/skip", None)):
        reply = client.request(method, path, data=data)
        assert reply.status_code == 410, (path, reply.text)
        assert "expired" in reply.json()["message"] and "120 minutes" in reply.json()["message"]
    assert db.execute(text("SELECT count(*) FROM votes")).scalar() == 0


def test_the_rate_page_serves_the_same_form(client, db):
    two_models(client, db)
    names = identifiers(db)
    page = client.get("/rate")
    token = re.search(r'data-task="([^"]+)"', page.text)[1]
    for slot in ("prompt", "answer"):
        clip = client.get(f"/rate/audio/{token}/{slot}")
        assert clip.status_code == 200 and clip.headers["content-type"] == "audio/flac"
        assert flac_block_types(clip.content) == [0]
        assert not any(n.lower().encode() in clip.content.lower() for n in names)
        samples, rate = sf.read(io.BytesIO(clip.content), dtype="float64")
        assert rate == serving.SERVED_RATE
        assert abs(pyloudnorm.Meter(rate).integrated_loudness(samples) - serving.TARGET_LUFS) <= 0.5
    assert client.get(f"/rate/audio/{token}/nope").status_code == 404

"""The prompts export is a dataset bundle: imported again, it gives the same prompts."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import soundfile as sf
from sqlalchemy import select, text

from app.audio.storage import get_storage
from app.config import get_settings
from app.datasets.bundle import ZipBundle
from app.datasets.schemas import PromptLine
from app.db.models import Prompt
from app.exports.prompts import FIELDS
from tests.conftest import ADMIN, TABLES, dataset_zip
from tests.exports.conftest import PROMPTS


def export(client, **params):
    reply = client.get("/api/v1/exports/prompts", headers=ADMIN, params=params)
    assert reply.status_code == 200, reply.text
    return reply


def samples(data: bytes) -> tuple[np.ndarray, int]:
    return sf.read(io.BytesIO(data), dtype="int16")


def test_an_exported_dataset_imports_again_as_the_same_prompts(client, arena_log, db):
    before = client.get("/api/v1/prompts", headers=ADMIN).json()
    storage = get_storage()
    audio_before = {p["id"]: samples(storage.get(arena_log["prompts"][p["id"]].audio_key))
                    for p in before}
    reply = export(client, dataset="export-set")
    assert reply.headers["content-disposition"] == 'attachment; filename="export-set.zip"'
    bundle = ZipBundle(reply.content, "export-set")
    lines = bundle.manifest_lines()
    assert [line["id"] for _, line in lines] == [key for key, _ in PROMPTS]
    for _, line in lines:
        assert list(line) == list(FIELDS)
        PromptLine.model_validate(line)  # the import's own schema accepts every line
    # A key that is no file name still gets a safe one inside the bundle.
    assert dict((line["id"], line["audio"]) for _, line in lines)["med/1 ü"] == "audio/med_1.flac"

    # A fresh database: nothing of the old prompts, models, votes or audio remains.
    db.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    db.commit()
    shutil.rmtree(get_settings().audio_dir)
    imported = client.post("/api/v1/datasets", headers=ADMIN,
                           files={"file": ("export-set.zip", reply.content, "application/zip")})
    assert imported.status_code == 201, imported.text
    assert imported.json()["dataset"] == "export-set"  # named by the file, as the export named it

    after = client.get("/api/v1/prompts", headers=ADMIN).json()
    assert after == before
    for key, audio_key in db.execute(select(Prompt.key, Prompt.audio_key)):
        data, rate = samples(storage.get(audio_key))
        old, old_rate = audio_before[key]
        assert rate == old_rate and np.array_equal(data, old)


def test_the_export_takes_the_prompt_filters(client, arena_log):
    def ids(**params):
        manifest = zipfile.ZipFile(io.BytesIO(export(client, **params).content)).read("manifest.jsonl")
        return [json.loads(line)["id"] for line in manifest.decode().splitlines()]

    assert ids() == [key for key, _ in PROMPTS]
    assert ids(domain="social companionship") == ["soc-1", "soc-2"]
    assert ids(level="L4", language="en") == ["med/1 ü"]
    reply = export(client)
    assert reply.headers["content-disposition"] == 'attachment; filename="prompts.zip"'


def test_prompts_of_several_datasets_export_together(client, arena_log):
    assert client.post("/api/v1/datasets", headers=ADMIN, data={"name": "second set"},
                       files={"file": ("s.zip", dataset_zip(["x1", "x2"]), "application/zip")}
                       ).status_code == 201
    manifest = zipfile.ZipFile(io.BytesIO(export(client).content)).read("manifest.jsonl")
    lines = [json.loads(line) for line in manifest.decode().splitlines()]
    assert [(line["id"], line["dataset"]) for line in lines][-2:] == [("x1", "second set"),
                                                                      ("x2", "second set")]
    reply = export(client, dataset="second set")
    assert reply.headers["content-disposition"] == 'attachment; filename="second_set.zip"'


def test_nothing_to_export_is_a_clear_404(client, arena_log):
    reply = client.get("/api/v1/exports/prompts", headers=ADMIN, params={"dataset": "missing"})
    assert reply.status_code == 404
    assert reply.json()["message"] == "no prompts match these filters"
    bad = client.get("/api/v1/exports/prompts", headers=ADMIN, params={"level": "L0"})
    assert bad.status_code == 422

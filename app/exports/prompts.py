"""Prompts as a dataset bundle in the import format (README, "Datasets"): a zip with
manifest.jsonl and the stored audio, which `POST /api/v1/datasets` or
`s2s-arena import-dataset` takes back as the same prompts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from sqlalchemy import Connection, Select, select

from app.audio.storage import AudioStorage
from app.datasets.bundle import MANIFEST
from app.db.models import Prompt
from app.exports.stream import Filters, archive_with_clips, audio_name, batches

# The manifest fields, in the order README lists them; `dataset` is extra (the importer
# ignores it and takes the dataset's name from the upload).
FIELDS = ("id", "audio", "text", "task", "level", "domain", "category", "task_description",
          "language", "text_cn", "emotion", "sarcasm", "age", "gender", "contrast_group",
          "dataset")
COLUMNS = (Prompt.key, Prompt.audio_key, Prompt.text, Prompt.task, Prompt.level, Prompt.domain,
           Prompt.category, Prompt.task_description, Prompt.language, Prompt.text_cn,
           Prompt.emotion, Prompt.sarcasm, Prompt.age, Prompt.gender, Prompt.contrast_group,
           Prompt.dataset)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def query(filters: Filters) -> Select:
    return select(*COLUMNS).where(*filters.prompt_conditions()).order_by(Prompt.id)


def bundle(filters: Filters, storage: AudioStorage) -> Iterator[bytes]:
    """manifest.jsonl first, then audio/<id>.flac per prompt (the id made safe for a file name;
    a clash gets a number)."""

    def manifest(conn: Connection, clips: dict[str, str]) -> Iterator[bytes]:
        for rows in batches(conn, query(filters)):
            lines = []
            for key, audio_key, *rest in rows:
                stem = _UNSAFE.sub("_", key).strip("._") or "prompt"
                name, n = audio_name("audio", stem, audio_key), 1
                while name in clips:
                    n += 1
                    name = audio_name("audio", f"{stem}-{n}", audio_key)
                clips[name] = audio_key
                lines.append(json.dumps(dict(zip(FIELDS, (key, name, *rest))),
                                        ensure_ascii=False) + "\n")
            yield "".join(lines).encode()

    return archive_with_clips(storage, MANIFEST, manifest)

"""What every export shares: the filters, reading rows in batches from a server-side cursor,
pseudonyms for people, and a zip written as it is sent.

An export runs on a connection of its own, opened by the response's generator (the request's
session is gone by the time the body is sent), in one REPEATABLE READ transaction, so that
every query of one export sees the same snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import posixpath
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from sqlalchemy import ColumnElement, Connection, Select, select
from sqlalchemy.orm import Session

from app.audio.storage import AudioStorage
from app.db.models import Battle, Prompt, Rater
from app.db.session import get_engine
from app.errors import ArenaError, InvalidInput
from app.leaderboard.service import PROMPT_FIELDS, parse_slice

BATCH = 5_000  # rows fetched from the server-side cursor at a time
COPY_CHUNK = 1 << 20  # bytes of a staged index file sent at a time


class MissingAudio(ArenaError):
    """The database names clips the audio store no longer holds: an archive without them
    would be broken, so none is sent."""

    status_code = 500
    code = "audio_missing"


@dataclass(frozen=True)
class Filters:
    """Which rows an export holds: prompt fields, raters ("all", "human" or a judge's name)
    and, for votes, only those after a vote id (incremental pulls)."""

    domain: str | None = None
    level: str | None = None
    task: str | None = None
    language: str | None = None
    dataset: str | None = None
    rater: str = "all"
    after_id: int = 0
    # The votes the leaderboard leaves out: attention checks, and flagged raters' votes.
    include_excluded: bool = False

    def prompt_conditions(self) -> list[ColumnElement[bool]]:
        return [getattr(Prompt, name) == getattr(self, name)
                for name in ("domain", "level", "task", "language", "dataset")
                if getattr(self, name) is not None]

    def rater_conditions(self) -> list[ColumnElement[bool]]:
        chosen = [] if self.include_excluded else [Rater.flagged_at.is_(None)]
        if self.rater == "human":
            return [*chosen, Rater.kind == "human"]
        if self.rater != "all":
            return [*chosen, Rater.kind == "judge", Rater.name == self.rater]
        return chosen

    def battle_conditions(self) -> list[ColumnElement[bool]]:
        """An attention check (a known-bad answer beside a good one) grades the rater, not the
        models: left out, as the leaderboard leaves it out."""
        return [] if self.include_excluded else [Battle.gold_bad_slot.is_(None)]


def _clean(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def parse_filters(*, domain: str | None = None, level: str | None = None,
                  task: str | None = None, language: str | None = None,
                  dataset: str | None = None) -> Filters:
    """The prompt fields of the query, checked as the leaderboard checks its slices."""
    chosen = parse_slice(domain=domain, level=level, task=task, language=language,
                         dataset=dataset)
    return Filters(**{name: getattr(chosen, name) for name in PROMPT_FIELDS})


def check_rater(session: Session, rater: str | None) -> str:
    """"all", "human" or the name of an existing judge."""
    rater = _clean(rater) or "all"
    if rater not in ("all", "human") and session.scalar(
            select(Rater.id).where(Rater.kind == "judge", Rater.name == rater)) is None:
        raise InvalidInput(f"rater {rater!r} is neither \"all\", \"human\" nor the name of a judge")
    return rater


# --- reading ------------------------------------------------------------------------------


@contextmanager
def snapshot() -> Iterator[Connection]:
    """A connection of the export's own, in one REPEATABLE READ transaction, timestamps in UTC."""
    with get_engine().connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
            # A cursor is read to its end: plan for all rows (hash joins), not the first few.
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1")
            yield conn


def batches(conn: Connection, query: Select, size: int = BATCH) -> Iterator[Sequence[Any]]:
    """The query's rows, `size` at a time, from a server-side cursor: plain rows, never ORM
    objects, and never the whole result in memory."""
    result = conn.execution_options(yield_per=size).execute(query)
    try:
        yield from result.partitions()
    finally:
        result.close()


class Pseudonyms:
    """A stable pseudonym per human rater: an HMAC of the rater's id under a key derived from
    ARENA_SECRET_KEY. The same rater gets the same pseudonym in every export while the secret
    stays the same; without the secret, a pseudonym leads back to no one."""

    PURPOSE = b"s2s-arena export rater pseudonym v1"

    def __init__(self, secret_key: str) -> None:
        self.key = hmac.new(secret_key.encode(), self.PURPOSE, hashlib.sha256).digest()
        self.cache: dict[int, str] = {}

    def __call__(self, rater_id: int) -> str:
        name = self.cache.get(rater_id)
        if name is None:
            digest = hmac.new(self.key, str(rater_id).encode(), hashlib.sha256).hexdigest()
            name = self.cache[rater_id] = "h-" + digest[:20]
        return name

    def rater(self, rater_id: int, kind: str, name: str) -> str:
        """A judge keeps its name (it is not a person); a person gets a pseudonym."""
        return name if kind == "judge" else self(rater_id)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


# --- writing ------------------------------------------------------------------------------


class Chunks(io.RawIOBase):
    """A write-only, unseekable file whose bytes are taken out as they come, so a writer
    (zipfile, pyarrow's ParquetWriter) can feed a streamed response."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.size += len(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


class ZipStream:
    """A zip archive written entry by entry into `Chunks`: FLAC is stored as is, text is
    deflated; zip64 records are written where sizes or offsets need them."""

    def __init__(self) -> None:
        self.sink = Chunks()
        self.zip = zipfile.ZipFile(self.sink, "w", allowZip64=True)
        self.date_time = datetime.now(timezone.utc).timetuple()[:6]

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, data: bytes, *, compress: bool = False) -> bytes:
        self.zip.writestr(self._info(name, compress), data)
        return self.sink.take()

    @contextmanager
    def text(self, name: str) -> Iterator[IO[bytes]]:
        """An entry written in pieces (a metadata file of any length): take the sink's bytes
        between writes."""
        with self.zip.open(self._info(name, True), "w", force_zip64=True) as entry:
            yield entry

    def close(self) -> bytes:
        self.zip.close()
        return self.sink.take()


def audio_name(folder: str, stem: str | int, audio_key: str) -> str:
    """Where a stored clip goes in an archive: folder/stem plus the stored file's suffix."""
    return f"{folder}/{stem}{posixpath.splitext(audio_key)[1] or '.flac'}"


def archive_with_clips(
    storage: AudioStorage, index_name: str,
    index: Callable[[Connection, dict[str, str]], Iterator[bytes]],
) -> Iterator[bytes]:
    """A zip of an index file (manifest.jsonl, metadata.jsonl) and the clips it names.

    `index(conn, clips)` yields the index's bytes in pieces and fills `clips` (name in the
    archive -> audio key) as it goes. The index is staged in a temporary file, not sent, until
    every clip is known to be in the store: a missing one raises MissingAudio before the first
    byte, rather than cutting the download short. The generator's first item is b"" once that
    check has passed (see `checked`), so memory stays flat and nothing half-made is sent."""
    clips: dict[str, str] = {}
    with tempfile.TemporaryFile() as staged:
        with snapshot() as conn:
            for piece in index(conn, clips):
                staged.write(piece)
        missing = sorted({key for key in clips.values() if not storage.exists(key)})
        if missing:
            raise MissingAudio(
                f"{len(missing)} audio file(s) named in the database are missing from the audio "
                f"store, so the archive cannot be made: {', '.join(missing[:10])}"
                + (", ..." if len(missing) > 10 else ""), detail={"missing": missing[:100]})
        yield b""
        archive = ZipStream()
        staged.seek(0)
        with archive.text(index_name) as entry:
            while piece := staged.read(COPY_CHUNK):
                entry.write(piece)
                yield archive.sink.take()
        yield archive.sink.take()
        for name, audio_key in clips.items():
            yield archive.add(name, storage.get(audio_key))
        yield archive.close()


def checked(body: Iterator[bytes]) -> Iterator[bytes]:
    """Runs an archive's checks now, while an error can still be the response's status
    (`archive_with_clips` yields b"" once they pass), and hands back the rest of its bytes."""
    next(body)
    return body

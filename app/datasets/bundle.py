"""A bundle is a folder or a zip holding `manifest.jsonl` and the audio files it names.

Datasets of prompts and a model's responses travel in the same kind of bundle.
"""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from pathlib import Path
from typing import Any, Protocol

from app.errors import InvalidInput, TooLarge

MANIFEST = "manifest.jsonl"


class Bundle(Protocol):
    name: str

    def manifest_lines(self) -> list[tuple[int, dict[str, Any]]]: ...
    def read(self, relative: str, *, max_bytes: int) -> bytes: ...
    def locate(self, number: int) -> str:
        """How an error names the place of manifest line `number` ("line 3: ")."""
        ...


class _ManifestLines:
    def locate(self, number: int) -> str:
        return f"line {number}: "


def parse_objects(text: str, source: str, empty: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of JSONL text: a line that is not a JSON
    object fails, named by `source` (a file name); no object at all fails with `empty`."""
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source} line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise InvalidInput(f"{source} line {number}: expected a JSON object")
        rows.append((number, value))
    if not rows:
        raise InvalidInput(empty)
    return rows


def parse_manifest(text: str) -> list[tuple[int, dict[str, Any]]]:
    return parse_objects(text, MANIFEST, f"{MANIFEST} is empty")


def _clean_relative(relative: str) -> str:
    path = posixpath.normpath(relative.replace("\\", "/"))
    if path.startswith("/") or path == ".." or path.startswith("../"):
        raise InvalidInput(f"audio path {relative!r} must stay inside the bundle")
    return path


class FolderBundle(_ManifestLines):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.name = self.root.name
        if not (self.root / MANIFEST).is_file():
            raise InvalidInput(f"{self.root} holds no {MANIFEST}")

    def manifest_lines(self) -> list[tuple[int, dict[str, Any]]]:
        return parse_manifest((self.root / MANIFEST).read_text(encoding="utf-8"))

    def read(self, relative: str, *, max_bytes: int) -> bytes:
        path = self.root / _clean_relative(relative)
        if not path.is_file():
            raise InvalidInput(f"audio file {relative!r} is not in the bundle")
        if path.stat().st_size > max_bytes:
            raise TooLarge(f"{relative}: larger than the limit of {max_bytes / 1e6:.1f} MB")
        return path.read_bytes()


class ZipBundle(_ManifestLines):
    """A zip with manifest.jsonl at its root or inside its single top-level folder."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"{name}: not a readable zip archive") from exc
        names = {info.filename for info in self.zip.infolist() if not info.is_dir()}
        manifests = sorted(n for n in names if posixpath.basename(n) == MANIFEST)
        manifests = [m for m in manifests if m.count("/") <= 1 and "__MACOSX" not in m]
        if not manifests:
            raise InvalidInput(f"{name}: the zip holds no {MANIFEST} at its top level")
        self.prefix = posixpath.dirname(min(manifests, key=len))
        self.names = names

    def manifest_lines(self) -> list[tuple[int, dict[str, Any]]]:
        raw = self.zip.read(posixpath.join(self.prefix, MANIFEST))
        try:
            return parse_manifest(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{MANIFEST} is not UTF-8 text") from exc

    def read(self, relative: str, *, max_bytes: int) -> bytes:
        member = posixpath.join(self.prefix, _clean_relative(relative)) if self.prefix else (
            _clean_relative(relative))
        if member not in self.names:
            raise InvalidInput(f"audio file {relative!r} is not in the zip")
        info = self.zip.getinfo(member)
        if info.file_size > max_bytes:
            raise TooLarge(f"{relative}: larger than the limit of {max_bytes / 1e6:.1f} MB")
        try:
            return self.zip.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InvalidInput(f"{relative}: could not be read from the zip ({exc})") from exc


def open_bundle(path: Path) -> Bundle:
    path = Path(path)
    if path.is_dir():
        return FolderBundle(path)
    if path.is_file():
        return ZipBundle(path.read_bytes(), path.stem)
    raise InvalidInput(f"{path} is neither a folder nor a zip file")


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"

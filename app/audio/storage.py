"""Where audio bytes live. A local directory by default; an object store can implement the
same small protocol later."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Protocol


class AudioStorage(Protocol):
    def put(self, data: bytes, *, suffix: str = ".flac") -> str: ...
    def put_at(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files under a root directory, named by random keys (never by model or prompt)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStorage) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    _KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.[a-z0-9]{1,5}$")

    def _path(self, key: str) -> Path:
        if not self._KEY.match(key):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def put(self, data: bytes, *, suffix: str = ".flac") -> str:
        token = secrets.token_hex(16)
        key = f"{token[:2]}/{token}{suffix}"
        self.put_at(key, data)
        return key

    def put_at(self, key: str, data: bytes) -> None:
        """Store `data` under a key the caller derived (a cache entry); a file already there is
        replaced whole."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class StagedWrites:
    """Tracks files written during one unit of work and deletes them if the block fails.

        with StagedWrites(storage) as staged:
            key = staged.put(data)
            session.commit()   # inside the block: a failed commit removes the files too
    """

    def __init__(self, storage: AudioStorage) -> None:
        self.storage = storage
        self.keys: list[str] = []

    def __enter__(self) -> "StagedWrites":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()

    def put(self, data: bytes, *, suffix: str = ".flac") -> str:
        key = self.storage.put(data, suffix=suffix)
        self.keys.append(key)
        return key

    def discard(self) -> None:
        for key in self.keys:
            self.storage.delete(key)
        self.keys.clear()


def get_storage() -> AudioStorage:
    from app.config import get_settings

    return LocalStorage(get_settings().audio_dir)

"""Where a dataset command keeps what it has made: JSONL files appended one line per item, each
line on disk (flushed and fsynced) before the next item is started.

A run that is killed leaves at most one half-written last line; the next run cuts it off and
carries on from the lines before it, so no item is lost or written twice.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.datasets.bundle import parse_objects
from app.errors import InvalidInput


class JsonlLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """The complete lines written so far; a torn last line is cut off the file."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        rows = []
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{self.path} line {number} is not JSON ({exc.msg}); "
                                       "it was not written by this command") from exc
        return rows

    def append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
            file.flush()
            os.fsync(file.fileno())


def read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of an input file; a clear error for a
    missing file or a line that is not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    return parse_objects(path.read_text(encoding="utf-8"), str(path), f"{path} holds no {what}")


def progress(total: int, initial: int, unit: str) -> tqdm:
    """A progress bar on stderr: items done of the total, and what was spent so far."""
    return tqdm(total=total, initial=initial, unit=f" {unit}", file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, smoothing=0.1)

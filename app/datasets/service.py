"""Import prompts and responses from bundles: validate everything, then write everything.

Nothing is half-written: audio goes through `StagedWrites`, which deletes the files again if
the caller's transaction does not commit. Services never commit; the route or task does.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio.codec import CanonicalAudio, canonicalise
from app.audio.storage import StagedWrites
from app.config import AudioSettings
from app.datasets.bundle import Bundle
from app.datasets.schemas import (
    DatasetImported,
    PromptLine,
    ResponseLine,
    ResponsesImported,
    validate_lines,
)
from app.db.models import Prompt, Response, SpeechModel
from app.errors import ArenaError, Conflict, InvalidInput


def _clip(bundle: Bundle, number: int, path: str, audio: AudioSettings) -> CanonicalAudio:
    """The canonical audio of one manifest line; an error names the line and the file."""
    try:
        return canonicalise(bundle.read(path, max_bytes=audio.max_bytes), audio, name=path)
    except ArenaError as exc:
        exc.message = bundle.locate(number) + exc.message
        raise


def _duplicates(values: list[str]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


def import_dataset(
    session: Session,
    bundle: Bundle,
    staged: StagedWrites,
    audio: AudioSettings,
    *,
    dataset: str | None = None,
) -> DatasetImported:
    name = (dataset or bundle.name or "").strip()
    if not name:
        raise InvalidInput("the dataset needs a name")
    lines = validate_lines(PromptLine, bundle.manifest_lines())
    keys = [line.id for _, line in lines]
    if repeated := _duplicates(keys):
        raise InvalidInput(f"prompt ids appear more than once in the manifest: {', '.join(repeated)}")
    taken = session.scalars(select(Prompt.key).where(Prompt.key.in_(keys))).all()
    if taken:
        raise Conflict(f"prompt ids already exist: {', '.join(sorted(taken))}")

    for number, line in lines:
        clip = _clip(bundle, number, line.audio, audio)
        session.add(
            Prompt(
                key=line.id,
                dataset=name,
                audio_key=staged.put(clip.data),
                duration_s=clip.duration_s,
                **line.model_dump(exclude={"id", "audio"}),
            )
        )
    session.flush()
    return DatasetImported(dataset=name, prompts=len(lines), prompt_ids=keys)


def import_responses(
    session: Session,
    model: SpeechModel,
    bundle: Bundle,
    staged: StagedWrites,
    audio: AudioSettings,
) -> ResponsesImported:
    lines = validate_lines(ResponseLine, bundle.manifest_lines())
    keys = [line.prompt_id for _, line in lines]
    if repeated := _duplicates(keys):
        raise InvalidInput(f"prompt ids appear more than once in the manifest: {', '.join(repeated)}")
    prompts = {p.key: p for p in session.scalars(select(Prompt).where(Prompt.key.in_(keys)))}
    if unknown := [key for key in keys if key not in prompts]:
        raise InvalidInput(f"no prompt with id: {', '.join(unknown)}")
    existing = {
        key: response for key, response in session.execute(
            select(Prompt.key, Response)
            .join(Response, Response.prompt_id == Prompt.id)
            .where(Response.model_id == model.id, Prompt.key.in_(keys))
        )
    }
    # A failed inference is replaced by an upload; anything else would be overwritten.
    if taken := sorted(key for key, r in existing.items() if r.status != "failed"):
        raise Conflict(
            f"model {model.name!r} already has a response (ready, or being generated) to: "
            f"{', '.join(taken)}"
        )

    for number, line in lines:
        clip = _clip(bundle, number, line.audio, audio)
        response = existing.get(line.prompt_id) or Response(
            prompt_id=prompts[line.prompt_id].id, model_id=model.id)
        response.status, response.source, response.error = "ready", "upload", None
        response.audio_key = staged.put(clip.data)
        response.duration_s = clip.duration_s
        response.transcript = line.transcript
        response.model_version = response.latency_ms = response.usage = None
        session.add(response)
    session.flush()
    return ResponsesImported(model=model.name, responses=len(lines), prompt_ids=keys)

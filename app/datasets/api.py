from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, File, Form, UploadFile, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audio.storage import StagedWrites
from app.datasets import service
from app.datasets.bundle import ZipBundle
from app.datasets.schemas import DatasetImported, PromptRead
from app.db.models import Prompt
from app.deps import AdminAuth, SessionDep, SettingsDep, StorageDep
from app.errors import Conflict
from app.uploads import read_upload

router = APIRouter(prefix="/api/v1", tags=["datasets"], dependencies=[AdminAuth])


@router.post("/datasets", status_code=status.HTTP_201_CREATED, response_model=DatasetImported)
async def import_dataset(
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    file: UploadFile = File(description="a zip holding manifest.jsonl and the audio it names"),
    name: str | None = Form(default=None, description="dataset name; default: the zip's name"),
) -> DatasetImported:
    """Import a dataset of spoken prompts. All of it goes in, or none of it."""
    data = await read_upload(file, limit=settings.audio.max_archive_bytes)
    bundle = ZipBundle(data, PurePath(file.filename or "dataset").stem)
    with StagedWrites(storage) as staged:
        result = service.import_dataset(session, bundle, staged, settings.audio, dataset=name)
        try:
            session.commit()
        except IntegrityError as exc:
            raise Conflict("some of these prompt ids were imported at the same time") from exc
    return result


@router.get("/prompts", response_model=list[PromptRead])
def list_prompts(session: SessionDep, dataset: str | None = None) -> list[Prompt]:
    query = select(Prompt).order_by(Prompt.id)
    if dataset:
        query = query.where(Prompt.dataset == dataset)
    return list(session.scalars(query))

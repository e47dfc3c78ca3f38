from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, File, Form, UploadFile, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audio.storage import StagedWrites
from app.datasets import service as datasets
from app.datasets.bundle import ZipBundle, is_zip
from app.datasets.schemas import ResponsesImported
from app.db.models import Prompt, Response
from app.deps import AdminAuth, SessionDep, SettingsDep, StorageDep
from app.errors import Conflict, InvalidInput
from app.inference import service as inference
from app.inference.limits import ModelLimits
from app.redis_client import get_redis
from app.speech_models import service
from app.speech_models.schemas import (
    InferenceRequest,
    ResponseRead,
    SpeechModelCreate,
    SpeechModelRead,
    SpeechModelUpdate,
)
from app.uploads import read_upload

router = APIRouter(prefix="/api/v1/models", tags=["models"], dependencies=[AdminAuth])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SpeechModelRead)
def create_model(data: SpeechModelCreate, session: SessionDep,
                 settings: SettingsDep) -> SpeechModelRead:
    """Add a speech model under test, with its architecture metadata and adapter.

    The adapter is checked now; an endpoint that does not answer gives a warning in
    "warnings", not a refusal (it may be starting up)."""
    model = service.create(session, data, settings)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise Conflict(f"a model named {data.name!r} already exists") from exc
    return service.read(session, [model], warnings=service.warnings(data.adapter))[0]


@router.get("", response_model=list[SpeechModelRead])
def list_models(session: SessionDep, active: bool | None = None) -> list[SpeechModelRead]:
    """Every model with its id; `?active=true` or `false` filters."""
    return service.read(session, service.list_all(session, active=active))


@router.get("/{model_id}", response_model=SpeechModelRead)
def get_model(model_id: int, session: SessionDep) -> SpeechModelRead:
    return service.read(session, [service.get(session, model_id)])[0]


@router.patch("/{model_id}", response_model=SpeechModelRead)
def update_model(model_id: int, data: SpeechModelUpdate, session: SessionDep,
                 settings: SettingsDep) -> SpeechModelRead:
    """Change metadata or the adapter, or deactivate with {"active": false}: an inactive model
    leaves pairing; its votes stay in the log."""
    model = service.update(session, model_id, data, settings)
    session.commit()
    warnings = []
    if data.adapter is not None:
        ModelLimits(get_redis()).forget_outcomes(model.id)
        warnings = service.warnings(data.adapter)
    return service.read(session, [model], warnings=warnings)[0]


@router.post("/{model_id}/inference", status_code=status.HTTP_202_ACCEPTED)
def start_inference(model_id: int, session: SessionDep, settings: SettingsDep,
                    data: InferenceRequest | None = None) -> dict[str, int]:
    """Fill in the model's answer to every active prompt that lacks one, through its adapter,
    on the workers. Follow the job at GET /api/v1/jobs/{job_id}. With {"retry_failed": true}
    the failed responses are tried again; "prompt_ids" narrows the job to those prompts."""
    data = data or InferenceRequest()
    model = service.get(session, model_id)
    job, response_ids = inference.start_job(session, model, settings,
                                            retry_failed=data.retry_failed,
                                            prompt_keys=data.prompt_ids)
    try:
        session.commit()
    except IntegrityError as exc:  # another job created some of these rows at the same moment
        raise Conflict("another inference job for this model started at the same time; "
                       "try again") from exc
    inference.enqueue(response_ids)
    return {"job_id": job.id}


@router.post("/{model_id}/deactivate", response_model=SpeechModelRead)
def deactivate_model(model_id: int, session: SessionDep,
                     settings: SettingsDep) -> SpeechModelRead:
    model = service.update(session, model_id, SpeechModelUpdate(active=False), settings)
    session.commit()
    return service.read(session, [model])[0]


@router.post("/{model_id}/responses", status_code=status.HTTP_201_CREATED,
             response_model=ResponsesImported)
async def upload_responses(
    model_id: int,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    file: UploadFile = File(description="a zip (manifest.jsonl + audio) or one audio file"),
    prompt_id: str | None = Form(default=None, description="the prompt, for one audio file"),
    transcript: str | None = Form(default=None),
) -> ResponsesImported:
    """Upload a model's responses: a zip bundle keyed by prompt id, or one clip with prompt_id."""
    model = service.get(session, model_id)
    data = await read_upload(file, limit=settings.audio.max_archive_bytes)
    if is_zip(data):
        bundle = ZipBundle(data, PurePath(file.filename or "responses").stem)
    else:
        if not prompt_id:
            raise InvalidInput("a single audio file needs the form field prompt_id")
        bundle = SingleClip(file.filename or "audio", data, prompt_id, transcript)
    with StagedWrites(storage) as staged:
        result = datasets.import_responses(session, model, bundle, staged, settings.audio)
        try:
            session.commit()
        except IntegrityError as exc:
            raise Conflict("a response for one of these prompts was uploaded at the same time") from exc
    return result


@router.get("/{model_id}/responses", response_model=list[ResponseRead])
def list_responses(model_id: int, session: SessionDep) -> list[ResponseRead]:
    """The model's responses, by prompt id."""
    service.get(session, model_id)
    rows = session.execute(
        select(Prompt.key.label("prompt_id"), Response.status, Response.duration_s,
               Response.transcript, Response.source, Response.error, Response.attempts,
               Response.latency_ms, Response.model_version, Response.usage,
               Response.created_at)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Response.model_id == model_id)
        .order_by(Prompt.key)
    )
    return [ResponseRead(**row._mapping) for row in rows]


class SingleClip:
    """One uploaded clip seen as a one-line bundle, so both paths share one import."""

    def __init__(self, filename: str, data: bytes, prompt_id: str, transcript: str | None) -> None:
        self.name = filename
        self.data = data
        self.line = {"prompt_id": prompt_id, "audio": filename, "transcript": transcript}

    def manifest_lines(self) -> list[tuple[int, dict]]:
        return [(1, self.line)]

    def read(self, relative: str, *, max_bytes: int) -> bytes:
        return self.data

    def locate(self, number: int) -> str:
        return ""

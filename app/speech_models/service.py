from __future__ import annotations

import os

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Response, SpeechModel
from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.speech_models.schemas import SpeechModelCreate, SpeechModelRead, SpeechModelUpdate


def create(session: Session, data: SpeechModelCreate, settings: Settings) -> SpeechModel:
    if session.scalar(select(SpeechModel.id).where(SpeechModel.name == data.name)):
        raise Conflict(f"a model named {data.name!r} already exists")
    _check_allowed(data.adapter, settings)
    model = SpeechModel(**data.model_dump(exclude={"adapter"}), adapter=data.adapter.model_dump())
    session.add(model)
    session.flush()
    return model


def get(session: Session, model_id: int) -> SpeechModel:
    model = session.get(SpeechModel, model_id)
    if model is None:
        raise NotFound(f"no model with id {model_id}")
    return model


def update(session: Session, model_id: int, data: SpeechModelUpdate,
           settings: Settings) -> SpeechModel:
    model = get(session, model_id)
    if data.adapter is not None:
        _check_allowed(data.adapter, settings)
        # A new adapter deserves a fresh start: the outage breaker forgets the old one's
        # failures (the caller clears the breaker's memory in Redis after the commit).
        model.outage_since = model.outage_probe_at = model.outage_reason = None
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(model, field, value)
    session.flush()
    return model


def _check_allowed(adapter, settings: Settings) -> None:
    if adapter.kind == "command" and not settings.inference.allow_command_adapter:
        raise InvalidInput(
            "the \"command\" adapter runs programs on the workers and is switched off on this "
            "arena; set ARENA_INFERENCE__ALLOW_COMMAND_ADAPTER=true to allow it"
        )


def warnings(adapter) -> list[str]:
    """What looks wrong with an adapter now but may be fine later: a secret not set in this
    process (the workers may have it), an endpoint that does not answer."""
    found = []
    for name, value in adapter.model_dump().items():
        if name.endswith("_env") and value and not os.environ.get(value):
            found.append(f"the environment variable {value} ({name}) is not set on this "
                         "server; the workers need it")
    if adapter.kind == "gemini" and adapter.voice is None:
        found.append("no voice is set: Gemini then answers in text only and every response "
                     "fails; set voice (a prebuilt voice such as \"Kore\") for a model that speaks")
    if adapter.kind != "upload":
        from app.inference import adapters

        warning = adapters.build(adapter).probe()
        if warning:
            found.append(warning)
    return found


def read(session: Session, models: list[SpeechModel], *,
         warnings: list[str] | None = None) -> list[SpeechModelRead]:
    """Models as the API shows them, with how many responses each has in each state."""
    counts: dict[tuple[int, str], int] = {
        (model_id, state): n for model_id, state, n in session.execute(
            select(Response.model_id, Response.status, func.count())
            .where(Response.model_id.in_([m.id for m in models]))
            .group_by(Response.model_id, Response.status)
        )
    }
    return [
        SpeechModelRead.model_validate(m).model_copy(update={
            "responses_ready": counts.get((m.id, "ready"), 0),
            "responses_pending": counts.get((m.id, "pending"), 0)
            + counts.get((m.id, "running"), 0),
            "responses_failed": counts.get((m.id, "failed"), 0),
            "warnings": warnings or [],
        })
        for m in models
    ]


def list_all(session: Session, *, active: bool | None = None) -> list[SpeechModel]:
    query = select(SpeechModel).order_by(SpeechModel.id)
    if active is not None:
        query = query.where(SpeechModel.active == active)
    return list(session.scalars(query))

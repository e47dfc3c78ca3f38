from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Response, SpeechModel
from app.errors import Conflict, NotFound
from app.speech_models.schemas import SpeechModelCreate, SpeechModelRead, SpeechModelUpdate


def create(session: Session, data: SpeechModelCreate) -> SpeechModel:
    if session.scalar(select(SpeechModel.id).where(SpeechModel.name == data.name)):
        raise Conflict(f"a model named {data.name!r} already exists")
    model = SpeechModel(**data.model_dump(exclude={"adapter"}), adapter=data.adapter.model_dump())
    session.add(model)
    session.flush()
    return model


def get(session: Session, model_id: int) -> SpeechModel:
    model = session.get(SpeechModel, model_id)
    if model is None:
        raise NotFound(f"no model with id {model_id}")
    return model


def update(session: Session, model_id: int, data: SpeechModelUpdate) -> SpeechModel:
    model = get(session, model_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(model, field, value)
    session.flush()
    return model


def read(session: Session, models: list[SpeechModel]) -> list[SpeechModelRead]:
    """Models as the API shows them, with how many ready responses each has."""
    counts = dict(
        session.execute(
            select(Response.model_id, func.count())
            .where(Response.status == "ready", Response.model_id.in_([m.id for m in models]))
            .group_by(Response.model_id)
        ).all()
    )
    return [
        SpeechModelRead.model_validate(m).model_copy(update={"responses_ready": counts.get(m.id, 0)})
        for m in models
    ]


def list_all(session: Session, *, active: bool | None = None) -> list[SpeechModel]:
    query = select(SpeechModel).order_by(SpeechModel.id)
    if active is not None:
        query = query.where(SpeechModel.active == active)
    return list(session.scalars(query))

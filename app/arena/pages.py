"""The arena in the browser: hear a prompt and two anonymous answers, vote, see who they were."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.arena import rating, service
from app.config import Settings
from app.db.models import Battle, Prompt, Rater
from app.db.models import Response as ResponseRow
from app.deps import SessionDep, SettingsDep, StorageDep
from app.errors import InvalidInput, NotFound
from app.leaderboard.service import schedule_refresh
from app.web import templates

router = APIRouter(tags=["arena pages"], include_in_schema=False)

OUTCOME_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}


def _visitor(request: Request, session: SessionDep) -> Rater:
    return service.human_rater(session, "visitor:" + request.state.visitor_id)


Visitor = Annotated[Rater, Depends(_visitor)]


def _round(request: Request, battle: Battle | None, settings: Settings, **extra) -> Response:
    outcomes = service.ALLOWED_OUTCOMES[settings.arena.outcomes]
    context = {"battle": battle, "outcomes": [(o, OUTCOME_LABELS[o]) for o in outcomes], **extra}
    return templates.TemplateResponse(request, "partials/round.html", context)


@router.get("/arena", response_class=HTMLResponse, name="arena")
def arena_page(request: Request, session: SessionDep, settings: SettingsDep,
               rater: Visitor) -> Response:
    battle = service.serve_battle(session, rater, settings)
    session.commit()
    outcomes = service.ALLOWED_OUTCOMES[settings.arena.outcomes]
    return templates.TemplateResponse(
        request,
        "arena.html",
        {"battle": battle, "outcomes": [(o, OUTCOME_LABELS[o]) for o in outcomes]},
    )


@router.post("/arena/battles/{token}/vote", response_class=HTMLResponse, name="vote")
def vote(request: Request, token: str, session: SessionDep, settings: SettingsDep,
         rater: Visitor, outcome: str = Form(default="")) -> Response:
    """Commit the vote, then reveal the two models to this voter and serve the next battle."""
    battle, vote_row = service.record_vote(session, token, rater, outcome, settings)
    session.commit()
    schedule_refresh(settings.arena.leaderboard_debounce_seconds)
    revealed = {"a": battle.model_a.name, "b": battle.model_b.name}
    next_battle = service.serve_battle(session, rater, settings)
    session.commit()
    return _round(request, next_battle, settings, revealed=revealed,
                  your_vote=OUTCOME_LABELS[vote_row.outcome])


@router.get("/arena/next", response_class=HTMLResponse, name="next_battle")
def next_battle(request: Request, session: SessionDep, settings: SettingsDep,
                rater: Visitor) -> Response:
    battle = service.serve_battle(session, rater, settings)
    session.commit()
    return _round(request, battle, settings)


@router.get("/arena/audio/{token}/{slot}", name="battle_audio")
def battle_audio(token: str, slot: str, session: SessionDep, storage: StorageDep,
                 rater: Visitor) -> Response:
    """A battle's clip by opaque token and slot: nothing in the URL or headers names a model."""
    battle = service.battle_for(session, token, rater)
    if slot == "prompt":
        key = session.scalar(select(Prompt.audio_key).where(Prompt.id == battle.prompt_id))
    elif slot in ("a", "b"):
        response_id = battle.response_a_id if slot == "a" else battle.response_b_id
        key = session.scalar(select(ResponseRow.audio_key).where(ResponseRow.id == response_id))
    else:
        raise NotFound("no such clip")
    session.commit()
    if key is None:
        raise InvalidInput("this clip has no audio")
    return Response(storage.get(key), media_type="audio/flac",
                    headers={"Cache-Control": "private, max-age=3600"})


# --- blind 1–5 ratings of single answers -------------------------------------------------------


def _rating(request: Request, task, **extra) -> Response:
    return templates.TemplateResponse(request, "partials/rating.html", {"task": task, **extra})


@router.get("/rate", response_class=HTMLResponse, name="rate")
def rate_page(request: Request, session: SessionDep, rater: Visitor) -> Response:
    task = rating.serve(session, rater)
    session.commit()
    return templates.TemplateResponse(request, "rate.html", {"task": task})


@router.post("/rate/{token}", response_class=HTMLResponse, name="rate_answer")
def rate_answer(request: Request, token: str, session: SessionDep, rater: Visitor,
                score: str = Form(default="")) -> Response:
    """Commit the score, then serve the next answer."""
    rating.record(session, token, rater, score)
    session.commit()
    task = rating.serve(session, rater)
    session.commit()
    return _rating(request, task, rated=score)


@router.get("/rate/audio/{token}/{slot}", name="rating_audio")
def rating_audio(token: str, slot: str, session: SessionDep, storage: StorageDep,
                 rater: Visitor) -> Response:
    """The prompt or the answer of a rating task, by opaque token: nothing names the model."""
    task = rating.for_rater(session, token, rater)
    answer = session.get(ResponseRow, task.response_id)
    if slot == "prompt":
        key = session.scalar(select(Prompt.audio_key).where(Prompt.id == answer.prompt_id))
    elif slot == "answer":
        key = answer.audio_key
    else:
        raise NotFound("no such clip")
    session.commit()
    return Response(storage.get(key), media_type="audio/flac",
                    headers={"Cache-Control": "private, max-age=3600"})

"""The arena in the browser: hear a prompt and two anonymous answers, vote, see who they were."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts.identity import CurrentRater
from app.accounts.limits import VoteLimit
from app.arena import guidelines, plays, rating, service
from app.audio import serving
from app.audio.storage import AudioStorage
from app.config import Settings
from app.db.models import Battle, Rater
from app.deps import SessionDep, SettingsDep, StorageDep
from app.leaderboard.service import schedule_refresh
from app.web import templates

router = APIRouter(tags=["arena pages"], include_in_schema=False)

OUTCOME_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
GOLD_LABELS = {"other_answer": "an answer to another prompt", "silence": "silence",
               "noise": "noise"}


# Who is voting: a signed-in annotator, or in an open deployment an anonymous visitor.
Visitor = CurrentRater


OUTCOME_KEYS = {"a": "1", "b": "2", "tie": "3", "both_bad": "4"}
SLOT_NAMES = {"prompt": "the prompt", "a": "answer A", "b": "answer B"}
CLIP_CACHE = "private, max-age=600"


def _listening(
    heard_prompt: Annotated[float | None, Form(ge=0, le=1)] = None,
    heard_a: Annotated[float | None, Form(ge=0, le=1)] = None,
    heard_b: Annotated[float | None, Form(ge=0, le=1)] = None,
    ended_prompt: Annotated[bool | None, Form()] = None,
    ended_a: Annotated[bool | None, Form()] = None,
    ended_b: Annotated[bool | None, Form()] = None,
    listened_s: Annotated[float | None, Form(ge=0, le=86_400)] = None,
) -> plays.Listening:
    """What the vote page reports about its clips, sent with every action on a battle."""
    return plays.Listening(
        heard={"prompt": heard_prompt, "a": heard_a, "b": heard_b},
        ended={"prompt": ended_prompt, "a": ended_a, "b": ended_b},
        listened_s=listened_s,
    )


Listening = Annotated[plays.Listening, Depends(_listening)]


def _round_context(session: SessionDep, rater: Rater, settings: Settings,
                   battle: Battle | None) -> dict:
    outcomes = service.ALLOWED_OUTCOMES[settings.arena.outcomes]
    context: dict = {
        "battle": battle,
        "outcomes": [(o, OUTCOME_LABELS[o], OUTCOME_KEYS[o]) for o in outcomes],
        "progress": plays.progress(session, rater),
        "listen_fraction": settings.arena.listen_fraction,
    }
    if battle is not None:
        prompt = battle.prompt
        context["guideline"] = guidelines.guideline(prompt.task, prompt.level,
                                                    prompt.task_description)
        context["prompt_text"] = prompt.text if settings.arena.show_prompt_text else None
    return context


def _next(request: Request, session: SessionDep, settings: Settings, storage: AudioStorage,
          rater: Rater, template: str = "partials/round.html", **extra) -> Response:
    """Serve the next battle with its clips made ready, and render it."""
    battle = service.serve_battle(session, rater, settings)
    service.prepare_clips(session, battle, storage)
    session.commit()
    context = _round_context(session, rater, settings, battle) | extra
    return templates.TemplateResponse(request, template, context)


@router.get("/arena", response_class=HTMLResponse, name="arena")
def arena_page(request: Request, session: SessionDep, settings: SettingsDep,
               storage: StorageDep, rater: Visitor) -> Response:
    return _next(request, session, settings, storage, rater, "arena.html")


@router.post("/arena/battles/{token}/vote", response_class=HTMLResponse, name="vote",
             dependencies=[VoteLimit])
def vote(request: Request, token: str, session: SessionDep, settings: SettingsDep,
         storage: StorageDep, rater: Visitor, listening: Listening,
         outcome: str = Form(default="")) -> Response:
    """Commit the vote (with how the clips were heard), then reveal the two models to this
    voter and serve the next battle."""
    battle = service.battle_for(session, token, rater, settings)
    plays.record(session, battle, listening)
    if settings.arena.require_listening:
        plays.check_heard(session, battle, settings.arena.listen_fraction)
    vote_row = service.record_vote(session, battle, rater, outcome, settings)
    session.commit()
    schedule_refresh(settings.arena.leaderboard_debounce_seconds)
    revealed = {"a": battle.model_a.name, "b": battle.model_b.name}
    if battle.gold_bad_slot is not None:  # that clip was no model's answer: say what it was
        revealed[battle.gold_bad_slot] = f"an attention check ({GOLD_LABELS[battle.gold_kind]})"
    return _next(request, session, settings, storage, rater, revealed=revealed,
                 your_vote=OUTCOME_LABELS[vote_row.outcome])


@router.post("/arena/battles/{token}/skip", response_class=HTMLResponse, name="skip",
             dependencies=[VoteLimit])  # each serves a new battle: counted as a vote is
def skip(request: Request, token: str, session: SessionDep, settings: SettingsDep,
         storage: StorageDep, rater: Visitor, listening: Listening) -> Response:
    """Leave this battle unvoted and serve the next one."""
    battle = service.battle_for(session, token, rater, settings)
    plays.record(session, battle, listening)
    plays.end(session, battle, "skipped")
    session.commit()
    return _next(request, session, settings, storage, rater, notice="Skipped.")


@router.post("/arena/battles/{token}/report", response_class=HTMLResponse, name="report",
             dependencies=[VoteLimit])  # each serves a new battle: counted as a vote is
def report(request: Request, token: str, session: SessionDep, settings: SettingsDep,
           storage: StorageDep, rater: Visitor, listening: Listening,
           slot: str = Form(default=""), note: str = Form(default="")) -> Response:
    """Report one of the battle's clips as broken: the battle is not voted on, admins see the
    report, and the next battle is served."""
    battle = service.battle_for(session, token, rater, settings)
    plays.record(session, battle, listening)
    plays.end(session, battle, "reported", report_slot=slot, note=note)
    session.commit()
    return _next(request, session, settings, storage, rater,
                 notice=f"Thank you: {SLOT_NAMES[slot]} was reported as broken.")


@router.post("/arena/battles/{token}/plays", status_code=204, name="battle_plays")
def battle_plays(token: str, session: SessionDep, settings: SettingsDep, rater: Visitor,
                 listening: Listening) -> Response:
    """The page's play events for its battle: how much of each clip was heard."""
    battle = service.battle_for(session, token, rater, settings)
    plays.record(session, battle, listening)
    session.commit()
    return Response(status_code=204)


@router.get("/arena/next", response_class=HTMLResponse, name="next_battle")
def next_battle(request: Request, session: SessionDep, settings: SettingsDep,
                storage: StorageDep, rater: Visitor) -> Response:
    return _next(request, session, settings, storage, rater)


@router.get("/arena/audio/{token}/{slot}", name="battle_audio")
def battle_audio(request: Request, token: str, slot: str, session: SessionDep,
                 settings: SettingsDep, storage: StorageDep, rater: Visitor) -> Response:
    """A battle's clip by opaque token and slot, in the one served form: nothing in the URL,
    the headers or the bytes names a model."""
    battle = service.battle_for(session, token, rater, settings)
    key = service.clip_key(session, battle, slot)
    session.commit()
    return clip_response(request, serving.read(storage, key))


def clip_response(request: Request, data: bytes) -> Response:
    """A served clip, whole or the byte range asked for (Safari plays media only from servers
    that answer ranges). The headers are the same for every clip: no dates, no ETag."""
    size = len(data)
    headers = {"Cache-Control": CLIP_CACHE, "Accept-Ranges": "bytes"}
    asked = request.headers.get("range")
    if not asked:
        return Response(data, media_type=serving.SERVED_TYPE, headers=headers)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", asked.strip())
    first = last = None
    if match and (match[1] or match[2]):
        if match[1]:
            first = int(match[1])
            last = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # the last N bytes
            first, last = max(0, size - int(match[2])), size - 1
    if first is None or first > last or first >= size:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(data[first:last + 1], status_code=206, media_type=serving.SERVED_TYPE,
                    headers=headers)


# --- blind 1–5 ratings of single answers -------------------------------------------------------


def _rating(request: Request, task, **extra) -> Response:
    return templates.TemplateResponse(request, "partials/rating.html", {"task": task, **extra})


@router.get("/rate", response_class=HTMLResponse, name="rate")
def rate_page(request: Request, session: SessionDep, storage: StorageDep,
              rater: Visitor) -> Response:
    task = rating.serve(session, rater)
    rating.prepare_clips(session, task, storage)
    session.commit()
    return templates.TemplateResponse(request, "rate.html", {"task": task})


@router.post("/rate/{token}", response_class=HTMLResponse, name="rate_answer",
             dependencies=[VoteLimit])
def rate_answer(request: Request, token: str, session: SessionDep, storage: StorageDep,
                rater: Visitor, score: str = Form(default="")) -> Response:
    """Commit the score, then serve the next answer."""
    rating.record(session, token, rater, score)
    session.commit()
    task = rating.serve(session, rater)
    rating.prepare_clips(session, task, storage)
    session.commit()
    return _rating(request, task, rated=score)


@router.get("/rate/audio/{token}/{slot}", name="rating_audio")
def rating_audio(request: Request, token: str, slot: str, session: SessionDep,
                 storage: StorageDep, rater: Visitor) -> Response:
    """The prompt or the answer of a rating task, by opaque token, in the one served form that
    battles use: nothing names the model."""
    task = rating.for_rater(session, token, rater)
    key = rating.clip_key(session, task, slot)
    session.commit()
    return clip_response(request, serving.read(storage, key))

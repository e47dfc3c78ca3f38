"""Blind 1–5 ratings of single spoken answers by people (ParaS2S's human evaluation): the
numbers a pointwise judge's scores are checked against."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app.audio import serving
from app.audio.storage import AudioStorage
from app.db.base import utcnow
from app.db.models import HumanRating, Prompt, Rater, Response
from app.errors import Conflict, InvalidInput, NotFound

# A ready answer of an active model to an active prompt that this person has not been served:
# answers a judge already scored first (so the two can be compared), then the least rated.
_NEXT = text("""
SELECT r.id FROM responses r
JOIN prompts p ON p.id = r.prompt_id JOIN speech_models m ON m.id = r.model_id
WHERE r.status = 'ready' AND p.active AND m.active
  AND NOT EXISTS (SELECT 1 FROM human_ratings h WHERE h.response_id = r.id
                  AND h.rater_id = :rater)
ORDER BY EXISTS (SELECT 1 FROM scores s WHERE s.response_id = r.id AND s.status = 'scored') DESC,
         (SELECT count(*) FROM human_ratings h WHERE h.response_id = r.id
          AND h.score IS NOT NULL),
         random()
LIMIT 1
""")


def serve(session: Session, rater: Rater) -> HumanRating | None:
    """The next answer for this person to rate, recorded as served; None when none is left."""
    response_id = session.scalar(_NEXT, {"rater": rater.id})
    if response_id is None:
        return None
    rating = HumanRating(token=secrets.token_urlsafe(24), response_id=response_id,
                         rater_id=rater.id, served_at=utcnow())
    session.add(rating)
    session.flush()
    return rating


def for_rater(session: Session, token: str, rater: Rater) -> HumanRating:
    rating = session.scalar(select(HumanRating).where(HumanRating.token == token))
    if rating is None or rating.rater_id != rater.id:
        raise NotFound("no such rating task for you")
    return rating


def record(session: Session, token: str, rater: Rater, score: str) -> HumanRating:
    """Set the score once; a second answer to the same task is refused."""
    if score not in {"1", "2", "3", "4", "5"}:
        raise InvalidInput("the score must be a whole number from 1 to 5")
    rating = for_rater(session, token, rater)
    updated = session.execute(
        update(HumanRating).where(HumanRating.id == rating.id, HumanRating.score.is_(None))
        .values(score=int(score), scored_at=func.now()).returning(HumanRating.id)
    ).one_or_none()
    if updated is None:
        raise Conflict("you have already rated this answer")
    return rating


def clip_key(session: Session, task: HumanRating, slot: str) -> str:
    """The canonical audio of a rating task's request ("prompt") or answer ("answer")."""
    answer = session.get(Response, task.response_id)
    if slot == "prompt":
        return session.scalar(select(Prompt.audio_key).where(Prompt.id == answer.prompt_id))
    if slot == "answer":
        return answer.audio_key
    raise NotFound("no such clip: the slots are prompt and answer")


def prepare_clips(session: Session, task: HumanRating | None, storage: AudioStorage) -> None:
    """Make the served form of a task's two clips as it is served (app/audio/serving.py)."""
    if task is not None:
        for slot in ("prompt", "answer"):
            serving.prepare(storage, clip_key(session, task, slot))

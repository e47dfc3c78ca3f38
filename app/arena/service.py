"""Serving battles and recording votes: the arena's hot path."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.accounts import quality
from app.arena import plays
from app.arena.pairing import PairingState, choose_pair
from app.audio import serving
from app.audio.storage import AudioStorage
from app.config import Outcomes, Settings, get_settings
from app.db.base import utcnow
from app.db.models import Battle, Prompt, Rater, Response, SpeechModel, Vote
from app.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from app.leaderboard import service as leaderboard

ALLOWED_OUTCOMES = {
    Outcomes.strict: ("a", "b"),
    Outcomes.with_tie: ("a", "b", "tie"),
    Outcomes.with_tie_and_both_bad: ("a", "b", "tie", "both_bad"),
}
RECENT_PROMPTS = 50  # a rater is not served a prompt again among their last this many battles


def human_rater(session: Session, name: str) -> Rater:
    """The rater row for a human identity, created on first use (safe under concurrency)."""
    session.execute(
        insert(Rater).values(kind="human", name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "name"])
    )
    return session.scalars(select(Rater).where(Rater.kind == "human", Rater.name == name)).one()


def candidate_pairs(session: Session) -> list[tuple[int, int]]:
    """Pairs of active models (lower id first) with ready responses to a common active prompt.
    A model in an outage (most of its recent inference requests failed) sits out."""
    r1, r2 = aliased(Response), aliased(Response)
    m1, m2 = aliased(SpeechModel), aliased(SpeechModel)
    rows = session.execute(
        select(r1.model_id, r2.model_id)
        .join(r2, and_(r2.prompt_id == r1.prompt_id, r2.model_id > r1.model_id))
        .join(Prompt, Prompt.id == r1.prompt_id)
        .join(m1, m1.id == r1.model_id)
        .join(m2, m2.id == r2.model_id)
        .where(r1.status == "ready", r2.status == "ready", Prompt.active, m1.active, m2.active,
               m1.outage_since.is_(None), m2.outage_since.is_(None))
        .distinct()
    )
    return [(a, b) for a, b in rows]


def pairing_state(session: Session) -> PairingState:
    """What the pairing strategies know, from the newest overall leaderboard snapshot: each
    model's Bradley–Terry rating, its spread (the 95% interval's width over 2·1.96), its votes,
    and the votes of every pair."""
    payload = leaderboard.current_payload(session)
    if not payload:
        return PairingState()
    entries = payload["models"]
    ids = [entry["id"] for entry in entries]
    battles = payload["matrix"]["battles"]
    return PairingState(
        ratings={e["id"]: e["rating"] for e in entries},
        spread={e["id"]: (e["ci_upper"] - e["ci_lower"]) / (2 * 1.96) for e in entries
                if e["ci_upper"] is not None and e["ci_lower"] is not None},
        votes={e["id"]: e["matches"] for e in entries},
        pair_votes={(ids[x], ids[y]): battles[x][y] for x in range(len(ids))
                    for y in range(x + 1, len(ids)) if battles[x][y]},
    )


def serve_battle(
    session: Session, rater: Rater, settings: Settings, rng: random.Random | None = None
) -> Battle | None:
    """Pick two models by the pairing strategy and a prompt both answered; record the battle.

    Returns None when no two active models have answered a common prompt yet.
    """
    rng = rng or random.SystemRandom()
    gold_share = settings.arena.gold_share
    if rater.kind == "human" and gold_share and rng.random() < gold_share:
        gold = quality.gold_item(session, rater, rng)
        if gold is not None:  # an attention check: a good answer beside a known-bad one
            return _record(session, rater, settings, rng, gold.prompt_id, [gold.good, gold.bad],
                           gold=gold)
    if rater.kind == "human" and rng.random() < settings.arena.double_served_share:
        again = _voted_by_another(session, rater, rng)
        if again is not None:
            prompt_id, (model_x, response_x), (model_y, response_y) = again
            return _record(session, rater, settings, rng, prompt_id,
                           [(model_x, response_x), (model_y, response_y)])
    pairs = candidate_pairs(session)
    if not pairs:
        return None
    model_x, model_y = choose_pair(pairs, pairing_state(session), settings.arena.pairing, rng)

    rx, ry = aliased(Response), aliased(Response)
    shared = (
        select(Prompt.id, rx.id, ry.id)
        .join(rx, and_(rx.prompt_id == Prompt.id, rx.model_id == model_x, rx.status == "ready"))
        .join(ry, and_(ry.prompt_id == Prompt.id, ry.model_id == model_y, ry.status == "ready"))
        .where(Prompt.active)
    )
    recent = (
        select(Battle.prompt_id)
        .where(Battle.rater_id == rater.id)
        .order_by(Battle.id.desc())
        .limit(RECENT_PROMPTS)
    )
    options = session.execute(shared.where(Prompt.id.not_in(recent.scalar_subquery()))).all()
    options = options or session.execute(shared).all()
    prompt_id, response_x, response_y = rng.choice(options)
    return _record(session, rater, settings, rng, prompt_id,
                   [(model_x, response_x), (model_y, response_y)])


def _voted_by_another(session: Session, rater: Rater,
                      rng: random.Random) -> tuple[int, tuple, tuple] | None:
    """A recent item (prompt and two answers) another person voted on and this rater has not
    heard, so that inter-annotator agreement can be measured (the S2S-Arena paper had 10% of
    its battles judged twice). Only answers still ready from active models qualify."""
    heard = select(Battle.prompt_id).where(Battle.rater_id == rater.id)
    ra, rb = aliased(Response), aliased(Response)
    ma, mb = aliased(SpeechModel), aliased(SpeechModel)
    rows = session.execute(
        select(Battle.prompt_id, Battle.model_a_id, Battle.response_a_id, Battle.model_b_id,
               Battle.response_b_id)
        .join(Vote, Vote.battle_id == Battle.id)
        .join(Rater, Rater.id == Vote.rater_id)
        .join(ra, ra.id == Battle.response_a_id).join(rb, rb.id == Battle.response_b_id)
        .join(ma, ma.id == Battle.model_a_id).join(mb, mb.id == Battle.model_b_id)
        .join(Prompt, Prompt.id == Battle.prompt_id)
        .where(Rater.kind == "human", Vote.rater_id != rater.id, Battle.gold_bad_slot.is_(None),
               Battle.prompt_id.not_in(heard), ra.status == "ready", rb.status == "ready",
               ma.active, mb.active, ma.outage_since.is_(None), mb.outage_since.is_(None),
               Prompt.active)
        .order_by(Vote.id.desc())
        .limit(50)
    ).all()
    if not rows:
        return None
    prompt_id, model_a, response_a, model_b, response_b = rng.choice(rows)
    return prompt_id, (model_a, response_a), (model_b, response_b)


def _record(session: Session, rater: Rater, settings: Settings, rng: random.Random,
            prompt_id: int, sides: list[tuple[int, int]],
            gold: quality.GoldItem | None = None) -> Battle:
    """Record the battle served, with the two answers on sides drawn at random (`gold`: an
    attention check, whose bad side is marked)."""
    sides = list(sides)
    rng.shuffle(sides)
    (model_a, response_a), (model_b, response_b) = sides
    gold_bad_slot = None if gold is None else ("a" if sides[0] == gold.bad else "b")
    now = utcnow()
    battle = Battle(
        token=secrets.token_urlsafe(24),
        prompt_id=prompt_id,
        response_a_id=response_a,
        response_b_id=response_b,
        model_a_id=model_a,
        model_b_id=model_b,
        rater_id=rater.id,
        served_at=now,
        expires_at=now + timedelta(minutes=settings.arena.battle_ttl_minutes),
        gold_bad_slot=gold_bad_slot,
        gold_kind=None if gold is None else gold.kind,
        gold_audio_key=None if gold is None else quality.gold_clip_key(gold.kind, gold.seconds),
    )
    session.add(battle)
    session.flush()
    if rater.kind == "human":
        plays.start(session, battle)
    return battle


def battle_for(session: Session, token: str, rater: Rater, settings: Settings) -> Battle:
    """The battle behind a token, if it was served to this rater and has not expired."""
    battle = session.scalars(select(Battle).where(Battle.token == token)).one_or_none()
    if battle is None:
        raise NotFound("this battle does not exist")
    if battle.rater_id != rater.id:
        raise Forbidden("this battle was served to someone else")
    if battle.expires_at < utcnow():
        raise Gone(f"this battle has expired (a battle is open for "
                   f"{settings.arena.battle_ttl_minutes} minutes); load the page again for a "
                   f"new one")
    return battle


def clip_key(session: Session, battle: Battle, slot: str) -> str:
    """The canonical audio of a battle's prompt ("prompt") or answer ("a", "b")."""
    if slot == "prompt":
        return session.scalar(select(Prompt.audio_key).where(Prompt.id == battle.prompt_id))
    if slot in ("a", "b"):
        if slot == battle.gold_bad_slot and battle.gold_audio_key:
            return battle.gold_audio_key  # an attention check's silence or noise
        response_id = battle.response_a_id if slot == "a" else battle.response_b_id
        key = session.scalar(select(Response.audio_key).where(Response.id == response_id))
        if key is None:
            raise InvalidInput("this answer has no audio")
        return key
    raise NotFound("no such clip: the slots are prompt, a and b")


def prepare_clips(session: Session, battle: Battle | None, storage: AudioStorage) -> None:
    """Make the served form of a battle's three clips now, as it is served, so that fetching
    them later is a file read that takes as long whichever model made them."""
    if battle is not None:
        quality.make_gold_clip(session, storage, battle, get_settings().audio.sample_rate)
        for slot in plays.PLAY_SLOTS:
            serving.prepare(storage, clip_key(session, battle, slot))


def record_vote(
    session: Session, battle: Battle, rater: Rater, outcome: str, settings: Settings
) -> Vote:
    """Count `rater`'s vote on `battle` (from `battle_for`): once, and only while it is open."""
    allowed = ALLOWED_OUTCOMES[settings.arena.outcomes]
    if outcome not in allowed:
        raise InvalidInput(f"outcome must be one of: {', '.join(allowed)}")
    plays.end(session, battle, "voted")  # refuses a battle already voted, skipped or reported
    vote = Vote(battle_id=battle.id, rater_id=rater.id, outcome=outcome, created_at=utcnow())
    session.add(vote)
    try:
        session.flush()
    except IntegrityError as exc:  # the same vote sent twice at once: the database keeps one
        session.rollback()
        raise Conflict("you have already voted on this battle") from exc
    if battle.gold_bad_slot is not None:
        quality.grade(session, rater, settings)
    return vote

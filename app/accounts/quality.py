"""Quality control: attention checks (gold battles), flagging the people who fail them, and the
per-person statistics admins read.

A gold battle pairs a good answer with a known-bad one, of one of three kinds drawn at random:
another prompt's answer (by another model), silence, or noise, each as long as the good answer.
Silence and noise are stored as canonical clips and served like any clip, through the same
loudness levelling; the bad slot's answer row is then another prompt's answer whose audio they
stand in for. The bad slot is kept in battles.gold_bad_slot and never reaches the page before
the vote. Votes on gold battles never enter the ratings; they grade the voter.
A flagged rater's votes are left out when the leaderboard is computed (a filter in its log
read), so clearing the flag brings them back.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from collections import Counter, defaultdict

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audio import codec
from app.audio.storage import AudioStorage
from app.config import Settings
from app.db.base import utcnow
from app.db.models import GOLD_KINDS, Annotator, Battle, BattlePlay, Prompt, Rater, Response, SpeechModel, Vote
from app.errors import NotFound

OTHER_SLOT = {"a": "b", "b": "a"}


@dataclass(frozen=True)
class GoldItem:
    prompt_id: int
    good: tuple[int, int]  # (model, response)
    bad: tuple[int, int]  # another model's answer to another prompt
    kind: str  # one of GOLD_KINDS
    seconds: float  # the good answer's length: silence and noise are as long


def gold_item(session: Session, rater: Rater, rng: random.Random) -> GoldItem | None:
    """A prompt with a good answer, and a known-bad answer for it."""
    heard = select(Battle.prompt_id).where(Battle.rater_id == rater.id).order_by(
        Battle.id.desc()).limit(50).scalar_subquery()
    ready = (
        select(Response.id, Response.model_id, Response.prompt_id, Response.duration_s)
        .join(SpeechModel, SpeechModel.id == Response.model_id)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Response.status == "ready", Response.audio_key.is_not(None), SpeechModel.active,
               SpeechModel.outage_since.is_(None), Prompt.active)
    )
    seed = rng.random()  # postgres' random() would ignore a seeded rng
    order = func.md5(func.concat(Response.id, str(seed)))
    good = (session.execute(ready.where(Response.prompt_id.not_in(heard)).order_by(order).limit(1))
            .first() or session.execute(ready.order_by(order).limit(1)).first())
    if good is None:
        return None
    good_id, good_model, prompt_id, seconds = good
    bad = session.execute(
        ready.where(Response.prompt_id != prompt_id, Response.model_id != good_model)
        .order_by(order).limit(1)).first()
    if bad is None:
        return None
    return GoldItem(prompt_id, (good_model, good_id), (bad[1], bad[0]), rng.choice(GOLD_KINDS),
                    seconds or 3.0)


def _half_seconds(seconds: float) -> int:
    return max(1, round(seconds * 2))


def gold_clip_key(kind: str, seconds: float) -> str | None:
    """The storage key of a silence or noise clip of about this length (half-second steps, so
    a handful of files serve every battle); None for another prompt's answer."""
    if kind == "other_answer":
        return None
    digest = hashlib.sha256(f"gold:{kind}:{_half_seconds(seconds)}".encode()).hexdigest()
    return f"{digest[:2]}/{digest[:32]}.flac"


def make_gold_clip(session: Session, storage: AudioStorage, battle: Battle, rate: int) -> None:
    """Store a gold battle's silence or noise clip (as long as its good answer, at the
    canonical rate) unless it is there already."""
    key = battle.gold_audio_key
    if key is None or storage.exists(key):
        return
    good = battle.response_a_id if battle.gold_bad_slot == "b" else battle.response_b_id
    seconds = session.scalar(select(Response.duration_s).where(Response.id == good)) or 3.0
    length = round(_half_seconds(seconds) / 2 * rate)
    if battle.gold_kind == "noise":
        samples = np.random.default_rng(length).normal(0.0, 0.1, length).clip(-1, 1)
    else:
        samples = np.zeros(length)
    storage.put_at(key, codec.encode(samples.astype(np.float32), rate))


def _gold_score(session: Session, rater_id: int, since=None) -> tuple[int, int]:
    """(gold votes, correct ones) of a rater, optionally only those after a time."""
    correct = Vote.outcome == func.translate(Battle.gold_bad_slot, "ab", "ba")
    query = (select(func.count(), func.count().filter(correct))
             .select_from(Vote).join(Battle, Battle.id == Vote.battle_id)
             .where(Vote.rater_id == rater_id, Battle.gold_bad_slot.is_not(None)))
    if since is not None:
        query = query.where(Vote.created_at > since)
    total, right = session.execute(query).one()
    return total, right


def grade(session: Session, rater: Rater, settings: Settings) -> bool:
    """After a gold vote: flag the rater when their accuracy on attention checks (counted since
    an admin last cleared their flag) is below the threshold. True when newly flagged."""
    if rater.flagged_at is not None:
        return False
    total, right = _gold_score(session, rater.id, rater.flag_cleared_at)
    wanted = settings.arena.gold_min_accuracy
    if total < settings.arena.gold_min_votes or right >= wanted * total:
        return False
    rater.flagged_at = utcnow()
    rater.flag_reason = (f"answered {right} of {total} attention checks right, below "
                         f"{wanted:.0%}")
    session.flush()
    return True


def set_flag(session: Session, rater_id: int, flagged: bool) -> Rater:
    """An admin flags a rater (their votes leave the leaderboard) or clears the flag (they
    return; attention checks from before no longer count towards flagging them again)."""
    rater = session.get(Rater, rater_id)
    if rater is None or rater.kind != "human":
        raise NotFound(f"no person with rater id {rater_id}")
    if flagged and rater.flagged_at is None:
        rater.flagged_at, rater.flag_reason = utcnow(), "flagged by an admin"
    elif not flagged and rater.flagged_at is not None:
        rater.flagged_at, rater.flag_reason, rater.flag_cleared_at = None, None, utcnow()
    session.flush()
    return rater


def _label(model_a: int, model_b: int, outcome: str) -> str:
    if outcome in ("tie", "both_bad"):
        return "tie"
    return str(model_a if outcome == "a" else model_b)


def rater_stats(session: Session) -> list[dict]:
    """Per person with an account or a vote: votes, median listening time, how often they chose
    the left (A) answer, agreement with the other people's majority on the same item, and
    accuracy on attention checks."""
    votes = session.execute(
        select(Vote.rater_id, Battle.prompt_id, Battle.model_a_id, Battle.model_b_id,
               Vote.outcome, Battle.gold_bad_slot)
        .join(Battle, Battle.id == Vote.battle_id).join(Rater, Rater.id == Vote.rater_id)
        .where(Rater.kind == "human")).all()
    per_item: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    mine: dict[int, list] = defaultdict(list)
    for rater_id, prompt_id, model_a, model_b, outcome, bad in votes:
        mine[rater_id].append((prompt_id, model_a, model_b, outcome, bad))
        if bad is None:
            item = (prompt_id, min(model_a, model_b), max(model_a, model_b))
            per_item[item].append((rater_id, _label(model_a, model_b, outcome)))
    listened = dict(session.execute(
        select(Battle.rater_id, func.percentile_cont(0.5).within_group(BattlePlay.listened_s))
        .join(BattlePlay, BattlePlay.battle_id == Battle.id)
        .where(BattlePlay.ending == "voted").group_by(Battle.rater_id)).all())
    accounts = {a.rater_id: a for a in session.scalars(select(Annotator))}
    ids = sorted(set(mine) | set(accounts))
    raters = {r.id: r for r in session.scalars(select(Rater).where(Rater.id.in_(ids)))}
    rows = []
    for rater_id in ids:
        rater, account = raters[rater_id], accounts.get(rater_id)
        rated = [v for v in mine[rater_id] if v[4] is None]
        gold = [v for v in mine[rater_id] if v[4] is not None]
        sided = [v for v in rated if v[3] in ("a", "b")]
        agreed = compared = 0
        for prompt_id, model_a, model_b, outcome, _ in rated:
            item = (prompt_id, min(model_a, model_b), max(model_a, model_b))
            others = Counter(label for who, label in per_item[item] if who != rater_id)
            ranked = others.most_common(2)
            if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
                continue  # nobody else voted on it, or the others are split evenly
            compared += 1
            agreed += ranked[0][0] == _label(model_a, model_b, outcome)
        right = sum(1 for v in gold if v[3] == OTHER_SLOT[v[4]])
        rows.append({
            "rater_id": rater_id,
            "name": account.username if account else rater.name,
            "annotator_id": account.id if account else None,
            "role": account.role if account else None,
            "active": account.active if account else None,
            "votes": len(rated),
            "median_listening_s": (round(listened[rater_id], 2)
                                   if listened.get(rater_id) is not None else None),
            "left_side_rate": round(sum(v[3] == "a" for v in sided) / len(sided), 3)
            if sided else None,
            "majority_agreement": round(agreed / compared, 3) if compared else None,
            "majority_compared": compared,
            "gold_votes": len(gold),
            "gold_accuracy": round(right / len(gold), 3) if gold else None,
            "flagged": rater.flagged_at is not None,
            "flagged_at": rater.flagged_at.isoformat() if rater.flagged_at else None,
            "flag_reason": rater.flag_reason,
        })
    return rows

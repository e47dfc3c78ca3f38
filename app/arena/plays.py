"""The play log: how each person listened to each battle served to them (app.db.models.BattlePlay),
how it ended (voted, skipped, reported as broken), and the reports admins read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import PLAY_SLOTS, Battle, BattlePlay, Prompt, Rater, Response, SpeechModel, Vote
from app.errors import Conflict, InvalidInput

MAX_NOTE = 500
ALREADY = {
    "voted": "you have already voted on this battle",
    "skipped": "you skipped this battle; it can no longer be voted on",
    "reported": "you reported this battle as broken; it can no longer be voted on",
}


@dataclass(frozen=True)
class Listening:
    """What the page reports about one battle's clips so far (None: not reported)."""

    heard: dict[str, float | None]  # per slot: share of the clip played at least once, 0-1
    ended: dict[str, bool | None]  # per slot: reached its end at least once
    listened_s: float | None = None  # seconds of audio played in all, replays included

    @property
    def empty(self) -> bool:
        return (self.listened_s is None and all(v is None for v in self.heard.values())
                and all(v is None for v in self.ended.values()))


def start(session: Session, battle: Battle) -> None:
    """Log a battle as served to a person."""
    session.add(BattlePlay(battle_id=battle.id))


def record(session: Session, battle: Battle, listening: Listening) -> None:
    """Merge what the page reports into the battle's log. Reports only ever add (the largest
    share heard and time listened, an end once reached), so late or repeated reports are
    harmless."""
    if listening.empty:
        return
    values: dict = {"updated_at": utcnow()}
    for slot in PLAY_SLOTS:
        heard, ended = listening.heard.get(slot), listening.ended.get(slot)
        if heard is not None:
            column = getattr(BattlePlay, f"{slot}_heard")
            values[column.key] = func.greatest(column, heard)
        if ended:
            values[f"{slot}_ended"] = True
    if listening.listened_s is not None:
        values["listened_s"] = func.greatest(BattlePlay.listened_s, listening.listened_s)
    session.execute(update(BattlePlay).where(BattlePlay.battle_id == battle.id).values(**values))


# The server's floor under the page's lock: the page unlocks at the set fraction of each clip
# (less a quarter second the played ranges may miss); the server asks for 80% of that.
HEARD_FLOOR = 0.8


def check_heard(session: Session, battle: Battle, fraction: float) -> None:
    """Refuse a vote unless the play log (the page's reports so far, this vote's included)
    shows both answers heard: the vote buttons' lock, held by the server too."""
    row = session.execute(select(BattlePlay.a_heard, BattlePlay.b_heard)
                          .where(BattlePlay.battle_id == battle.id)).one_or_none()
    unheard = [slot.upper() for slot, heard in zip("ab", row or (0.0, 0.0))
               if heard < HEARD_FLOOR * fraction]
    if unheard:
        raise Conflict(f"listen to answer {' and '.join(unheard)} before you vote: the vote "
                       f"counts only once both answers have been heard")


def end(session: Session, battle: Battle, ending: str, *, report_slot: str | None = None,
        note: str | None = None) -> None:
    """Close the battle as voted, skipped or reported; a battle ends once. Concurrent attempts
    queue on the row, and all but the first are refused."""
    if ending == "reported":
        if report_slot not in PLAY_SLOTS:
            raise InvalidInput("say which clip is broken: prompt, a or b")
        note = (note or "").strip() or None
        if note and len(note) > MAX_NOTE:
            raise InvalidInput(f"the note is {len(note)} characters long; the limit is {MAX_NOTE}")
    ended = session.execute(
        update(BattlePlay)
        .where(BattlePlay.battle_id == battle.id, BattlePlay.ending.is_(None))
        .values(ending=ending, ended_at=utcnow(), report_slot=report_slot, report_note=note)
        .returning(BattlePlay.battle_id)
    ).one_or_none()
    if ended is None:
        earlier = session.scalar(select(BattlePlay.ending)
                                 .where(BattlePlay.battle_id == battle.id))
        if earlier is None:  # a battle served before the play log, or to a judge
            session.add(BattlePlay(battle_id=battle.id, ending=ending, ended_at=utcnow(),
                                   report_slot=report_slot, report_note=note))
            return
        raise Conflict(ALREADY[earlier])


@dataclass(frozen=True)
class Progress:
    today: int
    total: int


def progress(session: Session, rater: Rater) -> Progress:
    """How many votes this person has cast today (UTC) and in all."""
    midnight = datetime.combine(utcnow().date(), time(0), tzinfo=timezone.utc)
    today, total = session.execute(
        select(func.count().filter(Vote.created_at >= midnight), func.count())
        .where(Vote.rater_id == rater.id)
    ).one()
    return Progress(today=today, total=total)


def status_of(play: BattlePlay | None, battle: Battle, now: datetime | None = None) -> str:
    """voted, skipped, reported, abandoned (expired without an ending) or open."""
    if play is not None and play.ending:
        return play.ending
    return "abandoned" if battle.expires_at < (now or utcnow()) else "open"


def reports(session: Session, limit: int = 100) -> list[dict]:
    """Broken-clip reports, newest first, with what admins need to find the clip."""
    rows = session.execute(
        select(BattlePlay, Battle, Prompt.key, Rater.name)
        .join(Battle, Battle.id == BattlePlay.battle_id)
        .join(Prompt, Prompt.id == Battle.prompt_id)
        .join(Rater, Rater.id == Battle.rater_id)
        .where(BattlePlay.ending == "reported")
        .order_by(BattlePlay.ended_at.desc(), BattlePlay.battle_id.desc())
        .limit(limit)
    ).all()
    response_ids = {b.response_a_id if p.report_slot == "a" else b.response_b_id
                    for p, b, _, _ in rows if p.report_slot in ("a", "b")}
    models = dict(session.execute(
        select(Response.id, SpeechModel.name).join(SpeechModel, SpeechModel.id == Response.model_id)
        .where(Response.id.in_(response_ids))
    ).all()) if response_ids else {}
    out = []
    for play, battle, prompt_key, rater_name in rows:
        response_id = {"a": battle.response_a_id, "b": battle.response_b_id}.get(play.report_slot)
        out.append({
            "battle_id": battle.id,
            "reported_at": play.ended_at.isoformat(),
            "rater": rater_name,
            "slot": play.report_slot,
            "note": play.report_note,
            "prompt_key": prompt_key,
            "response_id": response_id,
            "model": models.get(response_id),
        })
    return out


def log(session: Session, *, rater_id: int | None = None, limit: int = 100) -> list[dict]:
    """The play log, newest battle first: one entry per battle served to a person."""
    query = (
        select(BattlePlay, Battle, Rater.name)
        .join(Battle, Battle.id == BattlePlay.battle_id)
        .join(Rater, Rater.id == Battle.rater_id)
        .order_by(Battle.id.desc())
        .limit(limit)
    )
    if rater_id is not None:
        query = query.where(Battle.rater_id == rater_id)
    now = utcnow()
    out = []
    for play, battle, rater_name in session.execute(query).all():
        status = status_of(play, battle, now)
        out.append({
            "battle_id": battle.id,
            "rater_id": battle.rater_id,
            "rater": rater_name,
            "served_at": battle.served_at.isoformat(),
            "expires_at": battle.expires_at.isoformat(),
            "status": status,
            "ended_at": play.ended_at.isoformat() if play.ended_at else None,
            "time_to_vote_s": (play.ended_at - battle.served_at).total_seconds()
            if status == "voted" and play.ended_at else None,
            "heard": {slot: getattr(play, f"{slot}_heard") for slot in PLAY_SLOTS},
            "ended": {slot: getattr(play, f"{slot}_ended") for slot in PLAY_SLOTS},
            "listened_s": play.listened_s,
        })
    return out

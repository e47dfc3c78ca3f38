"""The leaderboard: derived from the vote log, per slice, stored as snapshots.

A recompute reads the log twice, never as ORM objects: once aggregated in SQL into
(model A, model B, outcome) counts per slice for Bradley–Terry, and once streamed in vote-id
order for the paper's online Elo. Each slice's result is stored as a snapshot keyed by the slice,
the method and its parameters, with the highest vote id it covers; readers get the latest.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from app.config import LeaderboardSettings
from app.db.base import utcnow
from app.db.models import Battle, LeaderboardSnapshot, Prompt, Rater, SpeechModel, Vote
from app.errors import InvalidInput
from app.ratings import board
from app.ratings.elo import INITIAL, K, SCORE_A, replay

log = logging.getLogger(__name__)

METHOD = "bradley-terry"
REFRESH_PENDING_KEY = "arena:leaderboard:refresh-pending"
MODEL_FIELDS = ("organisation", "sector", "access", "backbone", "speech_encoder", "speech_decoder")
PROMPT_FIELDS = ("domain", "level", "task", "language", "dataset")


@dataclass(frozen=True)
class Slice:
    """Which votes a table covers: prompt fields, and the raters ("all", "human" or a judge's
    name)."""

    domain: str | None = None
    level: str | None = None
    task: str | None = None
    language: str | None = None
    dataset: str | None = None
    rater: str = "all"

    @property
    def key(self) -> str:
        parts = [f"rater={self.rater}"]
        parts += [f"{name}={getattr(self, name)}" for name in PROMPT_FIELDS
                  if getattr(self, name) is not None]
        return ";".join(parts)

    @property
    def standard(self) -> bool:
        """Kept fresh by the worker after votes: see `standard_slices`."""
        prompt = [name for name in PROMPT_FIELDS if getattr(self, name) is not None]
        return not prompt or (prompt in (["domain"], ["level"]) and self.rater == "all")

    def matches(self, row: dict[str, Any]) -> bool:
        for name in PROMPT_FIELDS:
            wanted = getattr(self, name)
            if wanted is not None and row[name] != wanted:
                return False
        if self.rater == "all":
            return True
        if self.rater == "human":
            return row["rater_kind"] == "human"
        return row["rater_kind"] == "judge" and row["judge"] == self.rater


def standard_slices(session: Session) -> list[Slice]:
    """What every refresh recomputes: everything; humans; each judge; each domain; each level."""
    judges = session.scalars(
        select(Rater.name).where(Rater.kind == "judge").order_by(Rater.name)).all()
    domains = session.scalars(select(Prompt.domain).distinct().order_by(Prompt.domain)).all()
    levels = session.scalars(select(Prompt.level).distinct().order_by(Prompt.level)).all()
    return ([Slice(), Slice(rater="human")] + [Slice(rater=j) for j in judges]
            + [Slice(domain=d) for d in domains] + [Slice(level=lv) for lv in levels])


def params_of(settings: LeaderboardSettings) -> dict[str, Any]:
    return {"rounds": settings.bootstrap_rounds, "seed": settings.seed,
            "min_votes": settings.min_votes, "ridge": settings.ridge,
            "elo": {"k": K, "initial": INITIAL}}


# --- reading the log ----------------------------------------------------------------------

_GROUP_COLUMNS = {
    "domain": Prompt.domain,
    "level": Prompt.level,
    "task": Prompt.task,
    "language": Prompt.language,
    "dataset": Prompt.dataset,
    "rater_kind": Rater.kind,
    "judge": case((Rater.kind == "judge", Rater.name), else_=literal(None)),
}


def _needed(slices: list[Slice]) -> list[str]:
    """The grouping columns these slices filter on."""
    needed = [name for name in PROMPT_FIELDS if any(getattr(s, name) is not None for s in slices)]
    if any(s.rater != "all" for s in slices):
        needed += ["rater_kind", "judge"]
    return needed


def aggregate(session: Session, slices: list[Slice], max_vote_id: int) -> list[list[tuple]]:
    """Per slice, (model_a, model_b, outcome, count) rows, from one GROUP BY over the log."""
    columns = _needed(slices)
    query = (
        select(Battle.model_a_id, Battle.model_b_id, Vote.outcome,
               *[_GROUP_COLUMNS[c].label(c) for c in columns], func.count().label("n"))
        .select_from(Vote)
        .join(Battle, Battle.id == Vote.battle_id)
        .where(Vote.id <= max_vote_id)
        .group_by(Battle.model_a_id, Battle.model_b_id, Vote.outcome,
                  *[_GROUP_COLUMNS[c] for c in columns])
    )
    if set(columns) & set(PROMPT_FIELDS):
        query = query.join(Prompt, Prompt.id == Battle.prompt_id)
    if "rater_kind" in columns:
        query = query.join(Rater, Rater.id == Vote.rater_id)
    per_slice: list[list[tuple]] = [[] for _ in slices]
    memo: dict[tuple, list[list[tuple]]] = {}
    for row in session.execute(query):
        key = tuple(row[3:-1])
        targets = memo.get(key)
        if targets is None:
            values = defaultdict(lambda: None, zip(columns, key))
            targets = memo[key] = [per_slice[k] for k, c in enumerate(slices) if c.matches(values)]
        for target in targets:
            target.append((row[0], row[1], row[2], row[-1]))
    return per_slice


def replay_elo(session: Session, slices: list[Slice], max_vote_id: int,
               model_ids: list[int]) -> list[dict[int, float]]:
    """The paper's online Elo for every slice, in one pass over the log in vote-id order,
    streamed from the server in batches of plain tuples."""
    columns = _needed(slices)
    query = (
        select(Battle.model_a_id, Battle.model_b_id, Vote.outcome,
               *[_GROUP_COLUMNS[c].label(c) for c in columns])
        .select_from(Vote)
        .join(Battle, Battle.id == Vote.battle_id)
        .where(Vote.id <= max_vote_id)
        .order_by(Vote.id)
    )
    if set(columns) & set(PROMPT_FIELDS):
        query = query.join(Prompt, Prompt.id == Battle.prompt_id)
    if "rater_kind" in columns:
        query = query.join(Rater, Rater.id == Vote.rater_id)
    index = {model_id: k for k, model_id in enumerate(model_ids)}
    memo: dict[tuple, list[int]] = {}

    def targets(key: tuple) -> list[int]:
        found = memo.get(key)
        if found is None:
            values = defaultdict(lambda: None, zip(columns, key))
            found = memo[key] = [k for k, chosen in enumerate(slices) if chosen.matches(values)]
        return found

    def votes():
        result = session.execute(query.execution_options(yield_per=50_000))
        for rows in result.partitions():
            for row in rows:
                yield index[row[0]], index[row[1]], SCORE_A[row[2]], targets(tuple(row[3:]))

    ratings = replay(votes(), len(model_ids), len(slices))
    return [dict(zip(model_ids, per_slice)) for per_slice in ratings]


# --- computing and storing ----------------------------------------------------------------


def compute(
    session: Session, slices: list[Slice], settings: LeaderboardSettings
) -> list[LeaderboardSnapshot]:
    """Recompute the given slices from the log and store one snapshot each."""
    max_vote_id = session.scalar(select(func.coalesce(func.max(Vote.id), 0)))
    models = {m.id: m for m in session.scalars(select(SpeechModel).order_by(SpeechModel.id))}
    counts = aggregate(session, slices, max_vote_id)
    elos = replay_elo(session, slices, max_vote_id, list(models))
    params = params_of(settings)
    snapshots = []
    for chosen, rows, elo in zip(slices, counts, elos):
        payload = _table(models, rows, elo, settings)
        snapshot = LeaderboardSnapshot(
            slice_key=chosen.key, method=METHOD, params=params, max_vote_id=max_vote_id,
            vote_count=payload.pop("votes"), payload=payload, computed_at=utcnow(),
        )
        session.add(snapshot)
        snapshots.append(snapshot)
    session.flush()
    return snapshots


def _table(models: dict[int, SpeechModel], rows: list[tuple], elo: dict[int, float],
           settings: LeaderboardSettings) -> dict[str, Any]:
    voted = {m for a, b, _, _ in rows for m in (a, b)}
    shown = [m for m in models if models[m].active or m in voted]
    return board.build(
        rows, elo, models=shown, names={m: models[m].name for m in shown},
        details={m: {**{f: getattr(models[m], f) for f in MODEL_FIELDS},
                     "active": models[m].active} for m in shown},
        rounds=settings.bootstrap_rounds, seed=settings.seed, ridge=settings.ridge,
        min_votes=settings.min_votes,
    )


# --- reading snapshots --------------------------------------------------------------------


def latest(session: Session, chosen: Slice, settings: LeaderboardSettings) -> LeaderboardSnapshot:
    """The newest snapshot of a slice with the current parameters.

    New votes reach the standard slices through the worker's debounced refresh; any other
    slice is recomputed here when it misses votes and is older than `settings.cache_seconds`.
    Every slice is computed here, at once, when it has no snapshot yet (asked for the first
    time, or new parameters) and when a model was added or changed since (rare, and the table
    would show the wrong models)."""
    snapshot = session.scalars(
        select(LeaderboardSnapshot)
        .where(LeaderboardSnapshot.slice_key == chosen.key, LeaderboardSnapshot.method == METHOD,
               LeaderboardSnapshot.params == params_of(settings))
        .order_by(LeaderboardSnapshot.id.desc())
        .limit(1)
    ).first()
    changed = session.scalar(select(func.max(SpeechModel.updated_at)))
    if snapshot is None or (changed is not None and changed > snapshot.computed_at):
        return compute(session, [chosen], settings)[0]
    if not chosen.standard and utcnow() - snapshot.computed_at > timedelta(
            seconds=settings.cache_seconds):
        newest = session.scalar(select(func.coalesce(func.max(Vote.id), 0)))
        if newest > snapshot.max_vote_id:
            return compute(session, [chosen], settings)[0]
    return snapshot


def current_payload(session: Session) -> dict[str, Any] | None:
    """The newest overall snapshot's table (None before the first one)."""
    return session.scalars(
        select(LeaderboardSnapshot.payload)
        .where(LeaderboardSnapshot.slice_key == Slice().key, LeaderboardSnapshot.method == METHOD)
        .order_by(LeaderboardSnapshot.id.desc())
        .limit(1)
    ).first()


def as_json(snapshot: LeaderboardSnapshot, chosen: Slice) -> dict[str, Any]:
    return {
        "slice": asdict(chosen),
        "method": snapshot.method,
        "params": snapshot.params,
        "votes": snapshot.vote_count,
        "max_vote_id": snapshot.max_vote_id,
        "computed_at": snapshot.computed_at.isoformat(),
        **snapshot.payload,
    }


def parse_slice(**filters: str | None) -> Slice:
    values = {name: (value.strip() or None) if isinstance(value, str) else value
              for name, value in filters.items()}
    if values.get("level") is not None:
        values["level"] = values["level"].upper()
        if values["level"] not in ("L1", "L2", "L3", "L4"):
            raise InvalidInput(f"level {filters['level']!r} is not one of L1, L2, L3, L4")
    values["rater"] = values.get("rater") or "all"
    unknown = set(values) - {f.name for f in fields(Slice)}
    if unknown:
        raise InvalidInput(f"unknown filters: {', '.join(sorted(unknown))}")
    return Slice(**values)


# --- scheduling ---------------------------------------------------------------------------


def enqueue_recompute(job_id: int) -> None:
    from workers.celery_app import celery_app

    celery_app.send_task("leaderboard.recompute", args=[job_id], queue="leaderboard")


def schedule_refresh(debounce_seconds: float) -> None:
    """Ask a worker to recompute soon. Many votes within the debounce window share one task:
    the task clears the pending flag before it reads the log, so no committed vote is missed."""
    from app.redis_client import get_redis
    from workers.celery_app import celery_app

    try:
        if get_redis().set(REFRESH_PENDING_KEY, "1", nx=True, ex=120):
            celery_app.send_task(
                "leaderboard.refresh", queue="leaderboard", countdown=debounce_seconds
            )
    except Exception:  # the vote is committed; a late leaderboard is better than a lost vote
        log.exception("could not schedule a leaderboard refresh")

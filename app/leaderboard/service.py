"""The leaderboard: derived from the vote log, per slice, stored as snapshots.

A recompute reads the log once, never as ORM objects: the votes and their battles arrive as
packed arrays (see `read_log`), from which every slice's (model A, model B, outcome) counts for
Bradley–Terry and its online Elo in vote-id order are computed. Each slice's result is stored
as a snapshot keyed by the slice, the method and its parameters, with the highest vote id it
covers; readers get the latest.
"""

from __future__ import annotations

import copy
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import LeaderboardSettings
from app.db.base import utcnow
from app.datasets.schemas import DOMAIN_ALIASES
from app.db.models import DOMAINS, LEVELS, LeaderboardSnapshot, Prompt, Rater, SpeechModel, Vote
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

OUTCOME_CODES = ("a", "b", "tie", "both_bad")
SCORES = np.array([SCORE_A[o] for o in OUTCOME_CODES])
# The log as two packed byte strings, one per table, each aggregated in one scan and decoded
# by numpy in one go: no join and no sort in the database, and no Python object per vote.
_VOTES_QUERY = """
SELECT string_agg(int8send(v.id) || int8send(v.battle_id) || int4send(v.rater_id)
                  || int4send(CASE v.outcome WHEN 'a' THEN 0 WHEN 'b' THEN 1
                                             WHEN 'tie' THEN 2 ELSE 3 END), ''::bytea)
FROM votes v
WHERE v.id <= %s
"""
# a flagged rater's votes are left out until the flag is cleared
_FLAGGED_QUERY = "SELECT id FROM raters WHERE flagged_at IS NOT NULL"
_BATTLES_QUERY = """
SELECT string_agg(int8send(b.id) || int4send(b.model_a_id) || int4send(b.model_b_id)
                  || int4send(b.prompt_id), ''::bytea)
FROM battles b
WHERE b.gold_bad_slot IS NULL  -- attention checks grade the voter, not the models
"""
_VOTE_ROW = np.dtype([("id", ">i8"), ("battle", ">i8"), ("rater", ">i4"), ("outcome", ">i4")])
_BATTLE_ROW = np.dtype([("id", ">i8"), ("model_a", ">i4"), ("model_b", ">i4"), ("prompt", ">i4")])


@dataclass
class Log:
    """The vote log up to a vote id, as arrays in vote-id order: no object per vote."""

    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray  # index into OUTCOME_CODES
    prompt: np.ndarray
    rater: np.ndarray


def read_log(session: Session, max_vote_id: int) -> Log:
    """The votes and their battles, each table read in one scan; joined, filtered and put in
    vote-id order here, where it is an array lookup and a sort of integers."""
    cursor = session.connection().connection.cursor()
    cursor.execute(_VOTES_QUERY, (max_vote_id,), binary=True)
    votes = np.frombuffer(cursor.fetchone()[0] or b"", dtype=_VOTE_ROW)
    cursor.execute(_BATTLES_QUERY, binary=True)  # a vote's battle was committed before it
    battles = np.frombuffer(cursor.fetchone()[0] or b"", dtype=_BATTLE_ROW)
    cursor.execute(_FLAGGED_QUERY)
    flagged = [row[0] for row in cursor.fetchall()]
    if flagged:
        votes = votes[~np.isin(votes["rater"], flagged)]
    if not np.all(votes["id"][1:] > votes["id"][:-1]):
        votes = votes[np.argsort(votes["id"], kind="stable")]
    row_of = np.full(max(int(votes["battle"].max(initial=0)), int(battles["id"].max(initial=0)))
                     + 1, -1)
    row_of[battles["id"]] = np.arange(len(battles))
    row = row_of[votes["battle"]]
    kept = row >= 0  # a vote on an attention check has no battle row here
    votes, row = votes[kept], row[kept]
    return Log(battles["model_a"][row].astype(np.int64), battles["model_b"][row].astype(np.int64),
               votes["outcome"].astype(np.int64), battles["prompt"][row].astype(np.int64),
               votes["rater"].astype(np.int64))


class SliceMasks:
    """Which votes of a log each slice holds, from the prompts' fields and the judges' ids."""

    def __init__(self, session: Session, log: Log) -> None:
        self.log = log
        prompts = session.execute(select(Prompt.id, *[getattr(Prompt, f) for f in PROMPT_FIELDS])).all()
        size = max([p[0] for p in prompts] + [int(log.prompt.max(initial=0))]) + 1
        self.prompt_values = {f: np.full(size, None, dtype=object) for f in PROMPT_FIELDS}
        for row in prompts:
            for k, field_name in enumerate(PROMPT_FIELDS, start=1):
                self.prompt_values[field_name][row[0]] = row[k]
        self.judges = dict(session.execute(
            select(Rater.name, Rater.id).where(Rater.kind == "judge")).all())

    def mask(self, chosen: Slice) -> np.ndarray:
        keep = np.ones(len(self.log.prompt), dtype=bool)
        for field_name in PROMPT_FIELDS:
            wanted = getattr(chosen, field_name)
            if wanted is not None:
                allowed = self.prompt_values[field_name] == wanted
                keep &= allowed.astype(bool)[self.log.prompt]
        if chosen.rater == "human":
            keep &= ~np.isin(self.log.rater, list(self.judges.values()))
        elif chosen.rater != "all":
            keep &= self.log.rater == self.judges.get(chosen.rater, -1)
        return keep


def slice_votes(log: Log, keep: np.ndarray, model_ids: list[int]) -> tuple[list[tuple], dict[int, float]]:
    """A slice's (model_a, model_b, outcome, count) rows and its online Elo per model."""
    lookup = np.full(max(model_ids + [int(log.model_a.max(initial=0)),
                                      int(log.model_b.max(initial=0))]) + 1, -1)
    lookup[model_ids] = np.arange(len(model_ids))
    a, b, outcome = lookup[log.model_a[keep]], lookup[log.model_b[keep]], log.outcome[keep]
    m = len(model_ids)
    cells = np.bincount((a * m + b) * 4 + outcome, minlength=m * m * 4)
    rows = [(model_ids[key // 4 // m], model_ids[key // 4 % m], OUTCOME_CODES[key % 4],
             int(cells[key])) for key in np.flatnonzero(cells)]
    ratings = replay(a.tolist(), b.tolist(), SCORES[outcome].tolist(), m)
    return rows, dict(zip(model_ids, ratings))


# --- computing and storing ----------------------------------------------------------------


def compute(
    session: Session, slices: list[Slice], settings: LeaderboardSettings
) -> list[LeaderboardSnapshot]:
    """Recompute the given slices from the log and store one snapshot each."""
    max_vote_id = session.scalar(select(func.coalesce(func.max(Vote.id), 0)))
    models = {m.id: m for m in session.scalars(select(SpeechModel).order_by(SpeechModel.id))}
    log = read_log(session, max_vote_id)
    masks = SliceMasks(session, log)
    params = params_of(settings)
    payloads = slice_payloads(log, masks, slices, models, settings)
    snapshots = []
    for chosen, payload in zip(slices, payloads):
        snapshot = LeaderboardSnapshot(
            slice_key=chosen.key, method=METHOD, params=params, max_vote_id=max_vote_id,
            vote_count=payload.pop("votes"), payload=payload, computed_at=utcnow(),
        )
        session.add(snapshot)
        snapshots.append(snapshot)
    session.flush()
    return snapshots


def slice_payloads(log: Log, masks: SliceMasks, slices: list[Slice],
                   models: dict[int, SpeechModel], settings: LeaderboardSettings,
                   workers: int = 2) -> list[dict[str, Any]]:
    """Each slice's table, in the order given. Pure computation on the log's arrays, so the
    slices run on `workers` threads (numpy and LAPACK release the GIL for most of a fit), and
    a slice holding exactly the votes of an earlier one (humans when no judge voted, say)
    reuses its table instead of being fitted twice."""
    keeps = [masks.mask(chosen) for chosen in slices]
    first: dict[bytes, int] = {}
    owner = [first.setdefault(np.packbits(keep).tobytes(), k) for k, keep in enumerate(keeps)]

    def one(k: int) -> dict[str, Any]:
        rows, elo = slice_votes(log, keeps[k], list(models))
        payload = _table(models, rows, elo, settings)
        count_rater_votes(payload, log, keeps[k], list(masks.judges.values()))
        return payload

    distinct = sorted(set(owner))
    with ThreadPoolExecutor(max(1, min(workers, len(distinct)))) as pool:
        computed = dict(zip(distinct, pool.map(one, distinct)))
    return [computed[o] if o == k else copy.deepcopy(computed[o]) for k, o in enumerate(owner)]


def count_rater_votes(payload: dict[str, Any], log: Log, keep: np.ndarray,
                      judge_ids: list[int]) -> None:
    """Adds to each model of a table how many of the slice's votes came from people
    (`human_votes`) and how many from automatic judges (`judge_votes`)."""
    judged = np.isin(log.rater, judge_ids)
    for kind, chosen in (("human_votes", keep & ~judged), ("judge_votes", keep & judged)):
        size = max([entry["id"] for entry in payload["models"]], default=0) + 1
        counts = (np.bincount(log.model_a[chosen], minlength=size)[:size]
                  + np.bincount(log.model_b[chosen], minlength=size)[:size])
        for entry in payload["models"]:
            entry[kind] = int(counts[entry["id"]])


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
    """A slice from query parameters (blank means unset), or a clear error: a domain as the
    dataset import names it (aliases and case allowed), a level L1-L4 (or 1-4)."""
    values = {name: (value.strip() or None) if isinstance(value, str) else value
              for name, value in filters.items()}
    if values.get("domain") is not None:
        domain = DOMAIN_ALIASES.get(values["domain"].lower())
        if domain is None:
            raise InvalidInput(f"domain {filters['domain']!r} is not one of {', '.join(DOMAINS)}")
        values["domain"] = domain
    if values.get("level") is not None:
        level = values["level"].upper()
        values["level"] = f"L{level}" if level.isdigit() else level
        if values["level"] not in LEVELS:
            raise InvalidInput(f"level {filters['level']!r} is not one of {', '.join(LEVELS)}")
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

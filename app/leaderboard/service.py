"""The leaderboard: derived from the vote log, stored as snapshots, served from the latest."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Battle, LeaderboardSnapshot, SpeechModel, Vote
from app.ratings.elo import INITIAL, K, online_elo

log = logging.getLogger(__name__)

ALL = "all"
ELO = "elo"
REFRESH_PENDING_KEY = "arena:leaderboard:refresh-pending"
MODEL_FIELDS = ("organisation", "sector", "access", "backbone", "speech_encoder", "speech_decoder")


def compute_elo(session: Session) -> LeaderboardSnapshot:
    """Replay the whole log in vote-id order (streamed as tuples, never ORM objects)."""
    max_vote_id = session.scalar(select(func.coalesce(func.max(Vote.id), 0)))
    rows = session.execute(
        select(Battle.model_a_id, Battle.model_b_id, Vote.outcome)
        .join(Battle, Battle.id == Vote.battle_id)
        .where(Vote.id <= max_vote_id)
        .order_by(Vote.id)
        .execution_options(yield_per=20_000)
    )
    records = online_elo(((a, b, outcome) for a, b, outcome in rows), k=K, initial=INITIAL)
    models = session.scalars(select(SpeechModel)).all()
    entries = []
    for model in models:
        record = records.get(model.id)
        if record is None and not model.active:
            continue
        rating = record.rating if record else INITIAL
        entries.append(
            {
                "id": model.id,
                "name": model.name,
                **{field: getattr(model, field) for field in MODEL_FIELDS},
                "active": model.active,
                "elo": round(rating, 2),
                "wins": record.wins if record else 0,
                "losses": record.losses if record else 0,
                "ties": record.ties if record else 0,
                "matches": record.matches if record else 0,
                "win_rate": round(record.win_rate, 4) if record else 0.0,
            }
        )
    entries.sort(key=lambda e: (-e["elo"], -e["matches"], e["name"]))
    for rank, entry in enumerate(entries, start=1):
        entry["rank"] = rank
    vote_count = sum(e["wins"] + e["ties"] / 2 for e in entries)  # each vote: one win or two half-ties
    snapshot = LeaderboardSnapshot(
        slice_key=ALL,
        method=ELO,
        params={"k": K, "initial": INITIAL, "order": "vote id"},
        max_vote_id=max_vote_id,
        vote_count=int(round(vote_count)),
        payload={"models": entries},
        computed_at=utcnow(),
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def latest(session: Session) -> LeaderboardSnapshot:
    """The newest snapshot; the first request ever computes one."""
    snapshot = session.scalars(
        select(LeaderboardSnapshot)
        .where(LeaderboardSnapshot.slice_key == ALL, LeaderboardSnapshot.method == ELO)
        .order_by(LeaderboardSnapshot.id.desc())
        .limit(1)
    ).first()
    return snapshot or compute_elo(session)


def current_elo(session: Session) -> dict[int, float]:
    """Model id → Elo from the latest snapshot, for pairing (no snapshot yet: everyone 1000)."""
    snapshot = session.scalars(
        select(LeaderboardSnapshot.payload)
        .where(LeaderboardSnapshot.slice_key == ALL, LeaderboardSnapshot.method == ELO)
        .order_by(LeaderboardSnapshot.id.desc())
        .limit(1)
    ).first()
    if not snapshot:
        return {}
    return {entry["id"]: entry["elo"] for entry in snapshot["models"]}


def as_json(snapshot: LeaderboardSnapshot) -> dict[str, Any]:
    return {
        "slice": snapshot.slice_key,
        "method": snapshot.method,
        "params": snapshot.params,
        "votes": snapshot.vote_count,
        "max_vote_id": snapshot.max_vote_id,
        "computed_at": snapshot.computed_at.isoformat(),
        "models": snapshot.payload["models"],
    }


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

"""Every ORM class of the arena, together, because they refer to each other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.db.base import Base, utcnow

LEVELS = ("L1", "L2", "L3", "L4")
DOMAINS = ("education", "social companionship", "entertainment", "medical consultation")
OUTCOMES = ("a", "b", "tie", "both_bad")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Prompt(Base):
    """A spoken query with the S2S-Arena schema, the domain and the ParaS2S style labels."""

    __tablename__ = "prompts"
    __table_args__ = (
        CheckConstraint(_in("level", LEVELS), name="level"),
        CheckConstraint(_in("domain", DOMAINS), name="domain"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the manifest's "id"
    dataset: Mapped[str] = mapped_column(String(200), index=True)
    text: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(String(200), index=True)
    category: Mapped[str | None] = mapped_column(String(200))
    task_description: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(32))
    text_cn: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(2))
    domain: Mapped[str] = mapped_column(String(64))
    emotion: Mapped[str | None] = mapped_column(String(64))
    sarcasm: Mapped[str | None] = mapped_column(String(64))
    age: Mapped[str | None] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(64))
    contrast_group: Mapped[str | None] = mapped_column(String(200), index=True)
    audio_key: Mapped[str] = mapped_column(String(200))
    duration_s: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SpeechModel(Base):
    """A system under test. Secrets in its adapter config are environment-variable names."""

    __tablename__ = "speech_models"
    __table_args__ = (
        CheckConstraint("sector IS NULL OR sector IN ('industry', 'academia')", name="sector"),
        CheckConstraint("access IS NULL OR access IN ('open', 'closed')", name="access"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    organisation: Mapped[str | None] = mapped_column(String(200))
    backbone: Mapped[str | None] = mapped_column(String(200))
    speech_encoder: Mapped[str | None] = mapped_column(String(200))
    speech_decoder: Mapped[str | None] = mapped_column(String(200))
    sector: Mapped[str | None] = mapped_column(String(16))
    access: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    input_sample_rate: Mapped[int] = mapped_column(Integer, default=16_000)
    adapter: Mapped[dict[str, Any]] = mapped_column(JSONB, default=lambda: {"kind": "upload"})
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    # The outage breaker: set while most recent inference requests fail; such a model leaves
    # pairing until a probe request succeeds again.
    outage_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outage_probe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outage_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Response(Base):
    """One model's spoken answer to one prompt."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("prompt_id", "model_id"),
        CheckConstraint("status IN ('pending', 'running', 'ready', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("speech_models.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    audio_key: Mapped[str | None] = mapped_column(String(200))
    duration_s: Mapped[float | None] = mapped_column(Float)
    transcript: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32), default="upload")  # adapter kind
    model_version: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Inference bookkeeping: the job that asked for it, how often it was tried, and the claim
    # of the task working on it now (a fencing token with a lease, so a redelivered task
    # neither runs twice nor waits forever for a dead worker).
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), onupdate=utcnow)

    prompt: Mapped[Prompt] = relationship()
    model: Mapped[SpeechModel] = relationship()


class Rater(Base):
    """Who votes: a human annotator (or anonymous visitor) or an automatic judge."""

    __tablename__ = "raters"
    __table_args__ = (
        UniqueConstraint("kind", "name"),
        CheckConstraint("kind IN ('human', 'judge')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Battle(Base):
    """A prompt and two responses from two different models, served to one rater.

    Recorded when served; the sides are randomised, so model_a is whatever played as "A".
    """

    __tablename__ = "battles"
    __table_args__ = (
        CheckConstraint("model_a_id <> model_b_id", name="two_models"),
        Index("ix_battles_rater_served", "rater_id", "served_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # opaque, goes in URLs
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"))
    response_a_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    response_b_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    model_a_id: Mapped[int] = mapped_column(ForeignKey("speech_models.id"))
    model_b_id: Mapped[int] = mapped_column(ForeignKey("speech_models.id"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"))
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    prompt: Mapped[Prompt] = relationship()
    response_a: Mapped[Response] = relationship(foreign_keys=[response_a_id])
    response_b: Mapped[Response] = relationship(foreign_keys=[response_b_id])
    model_a: Mapped[SpeechModel] = relationship(foreign_keys=[model_a_id])
    model_b: Mapped[SpeechModel] = relationship(foreign_keys=[model_b_id])


class Vote(Base):
    """One rater's verdict on one battle. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("battle_id", "rater_id"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    battle_id: Mapped[int] = mapped_column(ForeignKey("battles.id"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    battle: Mapped[Battle] = relationship()


class Job(Base):
    """A long batch (import, inference, judging run, recompute) and its progress."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Judge(Base):
    """An automatic judge: an audio LLM with its prompt, voting as the rater it owns."""

    __tablename__ = "judges"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('gemini_pairwise', 'openai_pairwise', 'pipeline_pointwise')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)  # secrets are env-variable names
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    rater: Mapped[Rater] = relationship()


class JudgeWork:
    """What a judge's unit of work records besides its verdict: its job, its raw replies and
    the prompt that produced them, and the claim of the task working on it (app/jobs/claims.py)."""

    @declared_attr
    def job_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("jobs.id"), index=True)

    status: Mapped[str] = mapped_column(String(16), default="pending")
    replies: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), onupdate=utcnow)


class Judgement(JudgeWork, Base):
    """A judge's work on one battle: its replies in each order, what they meant, and whether
    a vote came of it. Invalid and inconsistent judgements are kept, never counted as votes."""

    __tablename__ = "judgements"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'voted', 'inconsistent', 'invalid', 'failed')",
            name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    battle_id: Mapped[int] = mapped_column(ForeignKey("battles.id"), unique=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id"), index=True)
    forward: Mapped[str | None] = mapped_column(String(8))  # A played first: "first" | "second"
    reverse: Mapped[str | None] = mapped_column(String(8))  # B played first, when both orders
    outcome: Mapped[str | None] = mapped_column(String(16))  # the vote cast, if any
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(200))


class Score(JudgeWork, Base):
    """A pointwise judge's 1–5 score of one response, with the transcript and style caption it
    was given (ParaS2S's pipeline judge)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("response_id", "judge_id"),
        CheckConstraint("status IN ('pending', 'running', 'scored', 'invalid', 'failed')",
                        name="status"),
        CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"), index=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id"), index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)


class HumanRating(Base):
    """A person's blind 1–5 rating of one spoken answer (ParaS2S's human evaluation), recorded
    when served; the score is set once, by the person it was served to."""

    __tablename__ = "human_ratings"
    __table_args__ = (
        UniqueConstraint("response_id", "rater_id"),
        CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # opaque, goes in URLs
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LeaderboardSnapshot(Base):
    """Ratings derived from the vote log for one slice, method and parameter set."""

    __tablename__ = "leaderboard_snapshots"
    __table_args__ = (Index("ix_snapshots_lookup", "slice_key", "method", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    slice_key: Mapped[str] = mapped_column(String(400))
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    max_vote_id: Mapped[int] = mapped_column(BigInteger, default=0)
    vote_count: Mapped[int] = mapped_column(BigInteger, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # JSON keeps the key order
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

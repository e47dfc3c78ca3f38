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
    # Quality control: a flagged rater's votes are left out when ratings are computed (a
    # filter, never a deletion). An admin clearing the flag sets flag_cleared_at; gold votes
    # from before it no longer count towards flagging again.
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    flag_reason: Mapped[str | None] = mapped_column(Text)
    flag_cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


ANNOTATOR_ROLES = ("annotator", "admin")


class Annotator(Base):
    """A person's account: logs in with a password or an invite link, votes as its rater."""

    __tablename__ = "annotators"
    __table_args__ = (CheckConstraint(_in("role", ANNOTATOR_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; None: invite only
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    # In every session cookie; bumped when the account is deactivated or its password changes,
    # which logs out the sessions signed before.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    rater: Mapped[Rater] = relationship()


class AnnotatorInvite(Base):
    """A single-use login link; only the SHA-256 of its token is kept."""

    __tablename__ = "annotator_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int] = mapped_column(
        ForeignKey("annotators.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


GOLD_KINDS = ("other_answer", "silence", "noise")


class Battle(Base):
    """A prompt and two responses from two different models, served to one rater.

    Recorded when served; the sides are randomised, so model_a is whatever played as "A".
    """

    __tablename__ = "battles"
    __table_args__ = (
        CheckConstraint("model_a_id <> model_b_id", name="two_models"),
        CheckConstraint("(gold_bad_slot IS NULL AND gold_kind IS NULL) OR "
                        "(gold_bad_slot IN ('a', 'b') AND " + _in("gold_kind", GOLD_KINDS) + ")",
                        name="gold"),
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
    # An attention check: the slot holding the known-bad answer, never shown before the vote.
    # Votes on such battles grade the rater; they never enter the ratings.
    gold_bad_slot: Mapped[str | None] = mapped_column(String(1))
    gold_kind: Mapped[str | None] = mapped_column(String(16))
    # For "silence" and "noise": the clip played in the bad slot instead of its answer's audio.
    gold_audio_key: Mapped[str | None] = mapped_column(String(200))

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


PLAY_SLOTS = ("prompt", "a", "b")
BATTLE_ENDINGS = ("voted", "skipped", "reported")


class BattlePlay(Base):
    """How a person listened to one battle served to them: one row per battle served to a
    human, written when it is served and updated as the page reports play events.

    - `<slot>_heard`: the share (0–1) of the clip's length the page played at least once (the
      union of the played ranges: replaying a part does not add, seeking past a part skips it);
      `<slot>_ended`: the clip reached its end at least once (seeking there counts too, so
      `<slot>_heard` is the measure of listening).
    - `listened_s`: seconds of audio played in all, over the three clips, replays included
      (a person's median listening time is the median of this over their battles).
    - `ending` and `ended_at`: "voted", "skipped" or "reported" and when. The time to vote is
      `ended_at - battles.served_at` where `ending = 'voted'`. A battle with no ending once
      `battles.expires_at` has passed was abandoned: that is read from the row, never written.
    - `report_slot` and `report_note`: for a reported battle, the broken clip and what the
      person said about it.

    Who listened and when it was served are in `battles` (rater_id, served_at, expires_at).
    """

    __tablename__ = "battle_plays"
    __table_args__ = (
        CheckConstraint("ending IS NULL OR " + _in("ending", BATTLE_ENDINGS), name="ending"),
        CheckConstraint("report_slot IS NULL OR " + _in("report_slot", PLAY_SLOTS),
                        name="report_slot"),
        CheckConstraint("prompt_heard BETWEEN 0 AND 1 AND a_heard BETWEEN 0 AND 1 "
                        "AND b_heard BETWEEN 0 AND 1", name="heard"),
    )

    battle_id: Mapped[int] = mapped_column(ForeignKey("battles.id", ondelete="CASCADE"),
                                           primary_key=True)
    prompt_heard: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    a_heard: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    b_heard: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    prompt_ended: Mapped[bool] = mapped_column(Boolean, default=False,
                                               server_default=sql_text("false"))
    a_ended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    b_ended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    listened_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    ending: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report_slot: Mapped[str | None] = mapped_column(String(8))
    report_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

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

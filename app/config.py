"""Settings: one pydantic-settings class with the ARENA_ prefix and nested groups.

Flat variables name the deployment (ARENA_DATABASE_URL, ARENA_REDIS_URL, ARENA_PORT,
ARENA_DATA_DIR, ARENA_ADMIN_TOKEN, ARENA_SECRET_KEY); groups use a double underscore,
for example ARENA_AUDIO__MAX_SECONDS=60 or ARENA_ARENA__OUTCOMES=with_tie.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-secret-change-me"
# The Celery queues a worker consumes by default: one per kind of work. A deployment runs the
# CPU-bound queues in a prefork worker and the waiting-bound ones in a thread-pool worker.
WORKER_QUEUES = "default,leaderboard,inference,judging"
CPU_QUEUES = "default,leaderboard"
REMOTE_QUEUES = "inference,judging"


class ConfigurationError(RuntimeError):
    """A setting the arena needs is missing or wrong."""


class Outcomes(StrEnum):
    """Which verdicts a rater may give. The S2S-Arena paper uses strict win/loss."""

    strict = "strict"  # A or B
    with_tie = "with_tie"  # A, B or tie
    with_tie_and_both_bad = "with_tie_and_both_bad"  # A, B, tie or both bad


class AudioSettings(BaseModel):
    max_bytes: int = 25 * 1024 * 1024
    max_seconds: float = 120.0
    sample_rate: int = 24_000  # canonical storage rate: every clip is kept mono at this rate
    max_archive_bytes: int = 500 * 1024 * 1024


class ArenaSettings(BaseModel):
    outcomes: Outcomes = Outcomes.strict
    pairing: Literal["uniform", "elo_gap", "uncertainty"] = "uncertainty"
    battle_ttl_minutes: int = Field(default=120, ge=1)  # a battle and its audio URLs expire
    # The share of a person's battles that repeat an item another person already voted on, to
    # measure agreement between people (the S2S-Arena paper judged 10% twice).
    double_served_share: float = Field(default=0.1, ge=0, le=1)
    leaderboard_debounce_seconds: float = 1.0
    # The vote buttons unlock once each answer has been heard over this share of its length.
    listen_fraction: float = Field(default=1.0, gt=0, le=1)
    # The server's own check of that: a vote whose play log shows either answer heard over
    # less than 80% of listen_fraction is refused (a script, or a page that skipped the lock).
    require_listening: bool = True
    # The prompt's text on the vote page: hidden by default, as the paper judges in speech.
    show_prompt_text: bool = False
    # Attention checks: the share of a person's battles that pair a good answer with a known-bad
    # one; a person whose accuracy on them (over at least gold_min_votes) falls below
    # gold_min_accuracy is flagged and their votes are left out of the leaderboard.
    gold_share: float = Field(default=0.05, ge=0, le=1)
    gold_min_votes: int = Field(default=5, ge=1)
    gold_min_accuracy: float = Field(default=0.7, ge=0, le=1)
    # Votes per minute, counted in Redis: for each person and for each IP address.
    votes_per_minute: int = Field(default=30, ge=1)
    votes_per_minute_per_ip: int = Field(default=120, ge=1)


class AccountsSettings(BaseModel):
    """Who may vote: "open" lets anonymous visitors vote under a signed per-visitor cookie,
    "closed" asks everyone to log in with an annotator account."""

    mode: Literal["open", "closed"] = "open"
    session_hours: float = Field(default=14 * 24, gt=0)
    invite_hours: float = Field(default=7 * 24, gt=0)  # an invite link is good for this long
    logins_per_minute_per_ip: int = Field(default=20, ge=1)  # password attempts


class LeaderboardSettings(BaseModel):
    bootstrap_rounds: int = Field(default=1000, ge=0, le=100_000)
    seed: int = 0
    min_votes: int = Field(default=20, ge=0)  # fewer: shown as provisional, not ranked
    ridge: float = Field(default=1e-4, gt=0)  # keeps a model that never won (or lost) finite
    cache_seconds: float = Field(default=30.0, ge=0)  # other slices: recomputed when older


class InferenceSettings(BaseModel):
    """How inference and judging tasks retry, lease their work, and trip the outage breaker."""

    max_attempts: int = Field(default=6, ge=1, le=50)
    backoff_base_s: float = Field(default=2.0, gt=0)  # the wait doubles from here, with jitter
    backoff_max_s: float = Field(default=300.0, gt=0)
    lease_margin_s: float = Field(default=30.0, gt=0)  # a claim lasts the timeout plus this
    breaker_window: int = Field(default=20, ge=2)  # the recent requests the breaker looks at
    breaker_min_requests: int = Field(default=10, ge=1)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_cooldown_s: float = Field(default=60.0, gt=0)  # until the next probe request
    allow_command_adapter: bool = False  # "command" runs programs on the workers: opt in
    # A response whose task is this overdue (its message lost by the broker, its worker gone)
    # is queued again; inference workers look for such responses at this interval.
    lost_after_s: float = Field(default=300.0, gt=0)
    recovery_interval_s: float = Field(default=60.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ARENA_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = None
    redis_url: str | None = None
    port: int = 8000
    data_dir: Path = PROJECT_ROOT / ".arena-data"
    admin_token: str | None = None
    secret_key: str = DEV_SECRET
    # A task taken by a worker that then dies unseen is handed out again after this long.
    broker_visibility_timeout_s: int = Field(default=3600, ge=1)

    audio: AudioSettings = Field(default_factory=AudioSettings)
    arena: ArenaSettings = Field(default_factory=ArenaSettings)
    leaderboard: LeaderboardSettings = Field(default_factory=LeaderboardSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.database_url:
            self.database_url = normalise_database_url(self.database_url)
        if self.environment == "production":
            if self.secret_key == DEV_SECRET:
                raise ValueError("ARENA_SECRET_KEY must be set to a random value in production")
            if not self.admin_token:
                raise ValueError("ARENA_ADMIN_TOKEN must be set in production")
        return self

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigurationError(
                "ARENA_DATABASE_URL is not set (the `s2s-arena demo` command sets it for the "
                "embedded Postgres it starts)"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigurationError(
                "ARENA_REDIS_URL is not set (the `s2s-arena demo` command sets it for the "
                "embedded Redis it starts)"
            )
        return self.redis_url


def normalise_database_url(url: str) -> str:
    """Point postgres:// and postgresql:// URLs at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def new_token() -> str:
    return secrets.token_urlsafe(24)


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""What every adapter is: a call that turns the prompt's audio into a spoken answer.

An adapter does one request and classifies what went wrong. It never retries: the Celery task
owns retrying (SDK retries are switched off), so that backoff, Retry-After and rate limits are
decided in one place.
"""

from __future__ import annotations

import email.utils
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.audio.codec import pcm16_wav



@dataclass(frozen=True)
class PromptAudio:
    """The prompt as the model should hear it: mono 16-bit WAV at the model's input rate."""

    key: str  # the prompt's id in its dataset
    wav: bytes
    sample_rate: int
    text: str | None = None  # the transcript; speech-to-speech adapters do not send it


@dataclass
class Generated:
    """A spoken answer as it came back. `audio` is an audio file (WAV, FLAC, MP3, OGG), or raw
    little-endian 16-bit mono PCM when `pcm_rate` is set."""

    audio: bytes
    pcm_rate: int | None = None
    transcript: str | None = None
    model_version: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


class AdapterError(Exception):
    """A request that did not give an answer; the message says why, for the admin."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(AdapterError):
    """Worth retrying: 429, 408, 5xx, timeouts, connection failures."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class PermanentError(AdapterError):
    """Not worth retrying: other 4xx, a blocked or empty reply, audio that does not decode,
    a missing secret."""


class Adapter(ABC):
    kind: ClassVar[str]

    def __init__(self, config: Any, *, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        # The worker's environment: where secrets are looked up (and what a command sees).
        self.environ = os.environ if environ is None else environ

    @abstractmethod
    def generate(self, prompt: PromptAudio) -> Generated:
        """Ask the model once; raise TransientError or PermanentError when it gives no answer."""

    def probe(self) -> str | None:
        """A warning when the endpoint does not answer now (checked when a model is added)."""
        return None

    def secret(self, env_name: str | None) -> str | None:
        if env_name is None:
            return None
        value = self.environ.get(env_name)
        if not value:
            raise PermanentError(f"the environment variable {env_name} is not set on the worker")
        return value


def error_for_status(status: int, detail: str, headers: Mapping[str, str] | None = None,
                     body: Any = None) -> AdapterError:
    """Classify an HTTP error reply: 408, 429 and 5xx are transient, other 4xx permanent."""
    message = f"HTTP {status}: {_short(detail)}"
    if status in (408, 429) or status >= 500:
        return TransientError(message, status=status,
                              retry_after=retry_after_seconds(headers or {}, body))
    return PermanentError(message, status=status)


def retry_after_seconds(headers: Mapping[str, str], body: Any = None) -> float | None:
    """The wait a server asked for: a Retry-After header (seconds or an HTTP date), OpenAI's
    retry-after-ms, or Google's RetryInfo retryDelay ("12s", "1.5s") in an error body."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(float(lowered["retry-after-ms"]) / 1000, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):  # neither seconds nor a date: ignore the header
                parsed = None
            if parsed is not None:
                return max(parsed.timestamp() - time.time(), 0.0)
    return _retry_delay(body)


def _retry_delay(body: Any) -> float | None:
    if isinstance(body, dict):
        if body.get("@type", "").endswith("RetryInfo") and "retryDelay" in body:
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(body["retryDelay"]))
            if match:
                return float(match.group(1))
        for value in body.values():
            found = _retry_delay(value)
            if found is not None:
                return found
    elif isinstance(body, list):
        for value in body:
            found = _retry_delay(value)
            if found is not None:
                return found
    return None


def pcm16_to_wav(pcm: bytes, rate: int) -> bytes:
    """Wrap raw little-endian 16-bit mono PCM in a WAV header."""
    if len(pcm) % 2:
        raise PermanentError("the raw PCM reply has an odd number of bytes (not 16-bit audio)")
    return pcm16_wav(pcm, rate)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"

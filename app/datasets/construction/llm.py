"""One structured-output request to a text LLM, and the retry loop every remote call of the
dataset commands goes through.

`StructuredLLM.ask(system, user, schema)` sends one request whose output is held to a JSON
schema by the provider (Gemini: `response_mime_type` "application/json" with
`response_json_schema`; OpenAI-compatible: `response_format` of type "json_schema"), and
`parse_reply(text, model)` reads the reply into a pydantic model. A reply that is not JSON, or
not the schema's JSON, raises `InvalidOutput`
(the caller decides whether to ask again); a fenced reply (```json ... ```) is read as the JSON
inside the fence. Transport and HTTP errors are the inference adapters' `TransientError` and
`PermanentError`, classified by the same code, and `with_retries` retries the transient ones
exactly as an inference task does: exponential backoff with jitter from the `ARENA_INFERENCE__*`
settings, never shorter than the server's Retry-After or retryDelay, at most `max_attempts`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from app.config import InferenceSettings
from app.datasets.construction.limits import Limiter, service_name
from app.inference.adapters.base import PermanentError, TransientError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_MODELS = {"gemini": "gemini-2.5-flash", "openai": "gpt-4o"}
DEFAULT_KEYS = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}
OPENAI_URL = "https://api.openai.com/v1"
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?```\s*$", re.DOTALL)


class InvalidOutput(Exception):
    """The model answered, but not with the JSON asked for."""

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply


@dataclass
class Usage:
    """Tokens spent so far, in and out, and the number of requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.requests += other.requests

    def describe(self) -> str:
        if not self.requests:
            return "no remote requests"
        return (f"{self.requests} requests, {self.input_tokens} tokens in, "
                f"{self.output_tokens} out")


@dataclass(frozen=True)
class LLMConfig:
    kind: Literal["gemini", "openai"] = "gemini"
    model: str | None = None
    base_url: str | None = None  # None: Google's endpoint, or OpenAI's
    api_key_env: str | None = None  # None: GEMINI_API_KEY or OPENAI_API_KEY
    timeout_s: float = 120.0
    temperature: float | None = None

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODELS[self.kind]

    @property
    def key_name(self) -> str:
        return self.api_key_env or DEFAULT_KEYS[self.kind]

    def describe(self) -> str:
        return service_name(self.kind, self.model_name, self.base_url)


@dataclass
class Answer:
    text: str
    usage: Usage = field(default_factory=Usage)


class StructuredLLM:
    def __init__(self, config: LLMConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        api_key = environ.get(config.key_name)
        if not api_key:  # before any request: a missing key costs no calls
            if config.kind == "openai" and config.api_key_env is None and config.base_url:
                api_key = None  # a local OpenAI-compatible server that wants no key
            else:
                raise PermanentError(f"the environment variable {config.key_name} is not set")
        self.api_key = api_key

    def ask(self, system: str | None, user: str, schema: dict[str, Any], *,
            name: str = "item") -> Answer:
        """One request whose output is held to `schema`; its text is read with `parse_reply`.
        InvalidOutput when the model answered with no text at all."""
        if self.config.kind == "gemini":
            return self._gemini(system, user, schema)
        return self._openai(system, user, schema, name)

    def _gemini(self, system: str | None, user: str, schema: dict[str, Any]) -> Answer:
        from google.genai import types

        from app.inference.adapters.gemini import usage_counts
        from app.inference.gemini_client import client_for, gemini_errors
        from app.judges.clients import gemini_text

        config = self.config
        client = client_for(self.api_key, config.base_url, config.timeout_s)
        with gemini_errors(timeout_s=config.timeout_s):
            response = client.models.generate_content(
                model=config.model_name, contents=user,
                config=types.GenerateContentConfig(
                    system_instruction=system, temperature=config.temperature,
                    response_mime_type="application/json", response_json_schema=schema))
        usage = usage_counts(response.usage_metadata)
        spent = Usage(usage.get("prompt_token_count", 0),
                      usage.get("candidates_token_count", 0), 1)
        return Answer(_answered(lambda: gemini_text(response)), spent)

    def _openai(self, system: str | None, user: str, schema: dict[str, Any],
                name: str) -> Answer:
        from app.inference.adapters.openai_chat_audio import NO_KEY, openai_client
        from app.judges.clients import int_usage, openai_errors, openai_text

        config = self.config
        base_url = config.base_url or OPENAI_URL
        client = openai_client(base_url, self.api_key or NO_KEY, config.timeout_s)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}]
        extra: dict[str, Any] = {}
        if config.temperature is not None:
            extra["temperature"] = config.temperature
        with openai_errors(base_url, config.timeout_s):
            response = client.chat.completions.create(
                model=config.model_name, messages=messages, response_format={
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": True}},
                **extra)
        usage = int_usage(getattr(response, "usage", None))
        spent = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 1)
        return Answer(_answered(lambda: openai_text(base_url, response)), spent)


def _answered(read: Callable[[], tuple[str, str | None]]) -> str:
    """The reply's text, read by the judges' reader; no text at all (blocked, refused, cut
    off) is InvalidOutput here, as the round may well succeed when asked again."""
    try:
        text, _ = read()
    except PermanentError as exc:
        raise InvalidOutput(exc.message) from None
    return text


def parse_reply(text: str, model: type[M]) -> M:
    """The reply's JSON (inside a ``` fence, if it has one) read into `model`."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"the reply is not valid JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno})", text) from exc
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'reply'}: {error['msg']}"
            for error in exc.errors()[:5])
        raise InvalidOutput(f"the reply does not follow the schema: {problems}", text) from exc


def with_retries(call: Callable[[], T], policy: InferenceSettings, *, what: str,
                 notify: Callable[[str], None] = lambda message: None,
                 sleep: Callable[[float], None] = time.sleep,
                 limiter: Limiter | None = None) -> T:
    """`call()`, retried after a TransientError by the inference tasks' rules; the last
    TransientError, and any PermanentError, goes to the caller. With a limiter, every attempt
    waits for its turn (and holds it only while it runs, not while it backs off)."""
    from app.inference.runner import backoff

    for attempt in range(policy.max_attempts):
        try:
            with limiter.turn() if limiter is not None else nullcontext():
                return call()
        except TransientError as exc:
            if attempt + 1 >= policy.max_attempts:
                exc.message = f"{what}: {exc.message} (gave up after {policy.max_attempts} tries)"
                exc.args = (exc.message,)
                raise
            delay = backoff(attempt, exc.retry_after, policy)
            notify(f"{what}: {exc.message}; trying again in {delay:.1f} s")
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover

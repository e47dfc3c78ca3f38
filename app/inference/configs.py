"""Adapter configurations: one pydantic model per kind, validated when an admin adds a model.

These classes import no SDK, so the web process validates configs without loading clients.
Secrets are never values here: a field ending in "_env" names the environment variable that
holds the secret on the workers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SECRET_NAME = re.compile(r"(key|token|secret|password)$", re.IGNORECASE)


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value) or value != value.upper():
        raise ValueError(
            "give the NAME of an environment variable that holds the secret (for example "
            "OPENAI_API_KEY), never the secret itself; names are upper case letters, digits "
            "and underscores"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in data:
                if name not in cls.model_fields and _SECRET_NAME.search(str(name)):
                    raise ValueError(
                        f"{name!r}: secrets are never stored; give {name}_env, the name of an "
                        "environment variable that holds it on the workers"
                    )
        return data


class RemoteCall(_Config):
    """What every adapter that calls something shares: its time and rate limits."""

    timeout_s: float = Field(default=120.0, gt=0, le=3600)
    max_concurrency: int = Field(default=4, ge=1, le=256)  # across all workers
    requests_per_minute: int | None = Field(default=60, ge=1, le=100_000)  # None: no limit


class UploadAdapter(_Config):
    """Responses arrive only through REST uploads."""

    kind: Literal["upload"] = "upload"


class OpenAIChatAudioAdapter(RemoteCall):
    """OpenAI-compatible chat completions with audio in and audio out (gpt-4o-audio-preview,
    vLLM-Omni serving Qwen2.5-Omni or Qwen3-Omni, DashScope's Qwen-Omni, ...)."""

    kind: Literal["openai_chat_audio"]
    base_url: HttpUrl = "https://api.openai.com/v1"
    model: Text
    api_key_env: EnvName | None = None  # None: send no key (a local vLLM server)
    voice: Text | None = "alloy"
    audio_format: Literal["wav", "pcm16"] = "wav"  # the reply format asked for
    pcm_sample_rate: int = Field(default=24_000, ge=8_000, le=48_000)  # of raw PCM replies
    stream: bool = False  # DashScope's Qwen-Omni needs true
    system_prompt: Annotated[str | None, Field(max_length=10_000)] = None
    max_tokens: int | None = Field(default=None, ge=1)
    extra_body: dict = Field(default_factory=dict)  # sent as is, for server-specific options


class GeminiAdapter(RemoteCall):
    """Gemini through google-genai: audio in; text out and, where the model speaks, audio."""

    kind: Literal["gemini"]
    model: Text = "gemini-2.5-flash"
    api_key_env: EnvName = "GEMINI_API_KEY"
    base_url: HttpUrl | None = None  # None: Google's endpoint
    voice: Text | None = None  # a prebuilt voice name; asks for audio output
    system_prompt: Annotated[str | None, Field(max_length=10_000)] = None
    max_output_tokens: int | None = Field(default=None, ge=1)


class HttpAdapter(RemoteCall):
    """A lab's own server: POST the prompt audio, get audio back."""

    kind: Literal["http"]
    url: HttpUrl
    request_format: Literal["multipart", "json"] = "multipart"
    audio_field: Text = "audio"  # multipart file field, or JSON key holding base64 audio
    params: dict = Field(default_factory=dict)  # extra form fields or JSON keys
    bearer_token_env: EnvName | None = None
    response_audio_field: Text = "audio"  # in a JSON reply: base64 audio
    response_transcript_field: Text = "transcript"  # in a JSON reply: optional text


class CommandAdapter(RemoteCall):
    """A local command (a GPU inference script, say), run on the worker."""

    kind: Literal["command"]
    command: list[Annotated[str, Field(min_length=1, max_length=4000)]] = Field(min_length=1)
    working_dir: Annotated[str | None, Field(max_length=4000)] = None
    max_concurrency: int = Field(default=1, ge=1, le=256)
    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, command: list[str]) -> list[str]:
        joined = " ".join(command)
        missing = [p for p in ("{input}", "{output}") if p not in joined]
        if missing:
            raise ValueError(
                "the command must name " + " and ".join(missing) + " (the prompt's audio file "
                "and the file the command writes its spoken answer to); {transcript} is optional"
            )
        return command


AdapterConfig = Annotated[
    Union[UploadAdapter, OpenAIChatAudioAdapter, GeminiAdapter, HttpAdapter, CommandAdapter],
    Field(discriminator="kind"),
]
RemoteConfig = Union[OpenAIChatAudioAdapter, GeminiAdapter, HttpAdapter, CommandAdapter]

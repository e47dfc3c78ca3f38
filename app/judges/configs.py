"""Judge configurations: one pydantic model per kind, validated when an admin creates a judge.
Like adapter configs, they name secrets by environment variable and import no SDK."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from app.inference.configs import EnvName, HttpUrl, RemoteCall, Text, _Config

JudgeName = Annotated[str, Field(min_length=1, max_length=200)]


class _Pairwise(RemoteCall):
    name: JudgeName
    both_orders: bool = True  # judge A-B and B-A; a vote counts only when both agree
    answer_format: Literal["phrase", "json"] = "phrase"  # "First one wins" or JSON + reason
    audio_layout: Literal["concatenated", "parts"] = "concatenated"  # one clip, as the paper
    max_inline_bytes: int = Field(default=18_000_000, ge=100_000)  # beyond: the Files API
    requests_per_minute: int | None = Field(default=30, ge=1, le=100_000)


class GeminiPairwise(_Pairwise):
    """The S2S-Arena judge: Gemini hears the instruction and both answers and picks one."""

    kind: Literal["gemini_pairwise"]
    model: Text = "gemini-2.5-pro"
    api_key_env: EnvName = "GEMINI_API_KEY"
    base_url: HttpUrl | None = None


class OpenAIPairwise(_Pairwise):
    """Any OpenAI-compatible audio model as a pairwise judge (Qwen2.5-Omni in the paper)."""

    kind: Literal["openai_pairwise"]
    model: Text
    base_url: HttpUrl = "https://api.openai.com/v1"
    api_key_env: EnvName | None = None


class Stage(_Config):
    """One model in the pointwise pipeline. "gemini": the Gemini API (Google's endpoint when
    `base_url` is None, key in GEMINI_API_KEY unless named). "openai": an OpenAI-compatible
    server (OpenAI's when `base_url` is None; no key sent when `api_key_env` is None, as a local
    vLLM server wants); as the ASR stage it is called through the transcription API
    (/audio/transcriptions: whisper-1, gpt-4o-transcribe, or Whisper-large-v3 on vLLM, the
    paper's ASR), as the caption or scorer stage through chat completions."""

    kind: Literal["gemini", "openai"]
    model: Text
    base_url: HttpUrl | None = None
    api_key_env: EnvName | None = None

    @model_validator(mode="after")
    def _defaults(self) -> Stage:
        if self.kind == "gemini" and self.api_key_env is None:
            self.api_key_env = "GEMINI_API_KEY"
        if self.kind == "openai" and self.base_url is None:
            self.base_url = "https://api.openai.com/v1"
        return self


def _gemini(model: str) -> Stage:
    return Stage(kind="gemini", model=model)


class PipelinePointwise(RemoteCall):
    """The ParaS2S pointwise judge (§3.2, A.11.5): an ASR transcript and a speaking-style caption
    of the response, then a text LLM scoring it 1–5 against the guideline, given the prompt's
    transcript and style labels. `timeout_s` is per request; a score is three requests."""

    kind: Literal["pipeline_pointwise"]
    name: JudgeName
    asr: Stage = Field(default_factory=lambda: _gemini("gemini-2.5-flash"))
    caption: Stage = Field(default_factory=lambda: _gemini("gemini-2.5-flash"))
    scorer: Stage = Field(default_factory=lambda: _gemini("gemini-2.5-pro"))
    # The scoring guideline r, as plain text; None: the paper's (prompts.SCORING_GUIDELINE).
    guideline: Annotated[str | None, Field(min_length=1, max_length=50_000)] = None
    answer_format: Literal["phrase", "json"] = "json"  # "The score is _ ." or JSON + reason
    requests_per_minute: int | None = Field(default=20, ge=1, le=100_000)  # scores: 3 requests


JudgeConfig = Annotated[Union[GeminiPairwise, OpenAIPairwise, PipelinePointwise],
                        Field(discriminator="kind")]

"""Judge configurations: one pydantic model per kind, validated when an admin creates a judge.
Like adapter configs, they name secrets by environment variable and import no SDK."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from app.inference.configs import EnvName, HttpUrl, Text, RemoteCall

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


JudgeConfig = Annotated[Union[GeminiPairwise, OpenAIPairwise], Field(discriminator="kind")]

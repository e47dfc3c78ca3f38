from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.inference.configs import AdapterConfig, UploadAdapter

SUPPORTED_SAMPLE_RATES = (8_000, 16_000, 22_050, 22_500, 24_000, 32_000, 44_100, 48_000)


Name = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str | None, Field(default=None, max_length=200)]


class SpeechModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    organisation: Label = None
    backbone: Label = None
    speech_encoder: Label = None
    speech_decoder: Label = None
    sector: Literal["industry", "academia"] | None = None
    access: Literal["open", "closed"] | None = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    input_sample_rate: int = 16_000
    adapter: AdapterConfig = Field(default_factory=UploadAdapter)

    @field_validator("input_sample_rate")
    @classmethod
    def _rate(cls, rate: int) -> int:
        if rate not in SUPPORTED_SAMPLE_RATES:
            raise ValueError(
                f"{rate} Hz is not supported; use one of "
                + ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
            )
        return rate


class SpeechModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organisation: Label = None
    backbone: Label = None
    speech_encoder: Label = None
    speech_decoder: Label = None
    sector: Literal["industry", "academia"] | None = None
    access: Literal["open", "closed"] | None = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    input_sample_rate: int | None = None
    adapter: AdapterConfig | None = None
    active: bool | None = None

    _rate = field_validator("input_sample_rate")(
        lambda cls, rate: rate if rate is None else SpeechModelCreate._rate(rate))

    @model_validator(mode="after")
    def _not_null(self) -> "SpeechModelUpdate":
        if "active" in self.model_fields_set and self.active is None:
            raise ValueError("active must be true or false")
        for name in ("adapter", "input_sample_rate"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ResponseRead(BaseModel):
    prompt_id: str
    status: str
    duration_s: float | None
    transcript: str | None
    source: str
    error: str | None
    attempts: int
    latency_ms: float | None
    model_version: str | None
    usage: dict | None  # token counts the model's API reported
    created_at: datetime


class SpeechModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    organisation: str | None
    backbone: str | None
    speech_encoder: str | None
    speech_decoder: str | None
    sector: str | None
    access: str | None
    description: str | None
    input_sample_rate: int
    adapter: dict
    active: bool
    outage_since: datetime | None
    outage_reason: str | None
    created_at: datetime
    responses_ready: int = 0
    responses_pending: int = 0
    responses_failed: int = 0
    warnings: list[str] = []  # from checks made when the model was added or changed


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry_failed: bool = False  # also try again the prompts whose response failed
    prompt_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=100_000)  # only these prompts

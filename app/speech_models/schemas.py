from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SUPPORTED_SAMPLE_RATES = (8_000, 16_000, 22_050, 22_500, 24_000, 32_000, 44_100, 48_000)


class UploadAdapter(BaseModel):
    """Responses arrive only through REST uploads."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["upload"] = "upload"


# The registry of adapter kinds; inference adapters join this union.
AdapterConfig = Annotated[Union[UploadAdapter], Field(discriminator="kind")]

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
    active: bool | None = None

    @model_validator(mode="after")
    def _active_is_true_or_false(self) -> "SpeechModelUpdate":
        if "active" in self.model_fields_set and self.active is None:
            raise ValueError("active must be true or false")
        return self


class ResponseRead(BaseModel):
    prompt_id: str
    status: str
    duration_s: float | None
    transcript: str | None
    source: str
    error: str | None
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
    created_at: datetime
    responses_ready: int = 0

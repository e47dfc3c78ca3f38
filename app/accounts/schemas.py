from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AnnotatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    role: Literal["annotator", "admin"] = "annotator"
    password: str | None = Field(default=None, max_length=200)


class AnnotatorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["annotator", "admin"] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=200)


class FlagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flagged: bool

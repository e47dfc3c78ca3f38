"""The manifest formats: one JSON object per line of manifest.jsonl."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.db.models import DOMAINS, LEVELS
from app.errors import InvalidInput

DOMAIN_ALIASES = {
    "education": "education",
    "social": "social companionship",
    "social companionship": "social companionship",
    "social interaction": "social companionship",
    "entertainment": "entertainment",
    "medical": "medical consultation",
    "medical consultation": "medical consultation",
}

Text200 = Field(min_length=1, max_length=200)


class PromptLine(BaseModel):
    """A prompt: the S2S-Arena schema plus domain, ParaS2S style labels and a contrast group."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Text200
    audio: str = Field(min_length=1)
    text: str = Field(min_length=1)
    task: str = Text200
    level: str
    domain: str
    category: str | None = Field(default=None, max_length=200)
    task_description: str | None = None
    language: str = Field(default="en", min_length=1, max_length=32)
    text_cn: str | None = None
    emotion: str | None = Field(default=None, max_length=64)
    sarcasm: str | None = Field(default=None, max_length=64)
    age: str | None = Field(default=None, max_length=64)
    gender: str | None = Field(default=None, max_length=64)
    contrast_group: str | None = Field(default=None, max_length=200)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> str:
        level = f"L{value}" if isinstance(value, int) else str(value).strip().upper()
        if level not in LEVELS:
            raise ValueError(f"level {value!r} is not one of {', '.join(LEVELS)}")
        return level

    @field_validator("domain", mode="before")
    @classmethod
    def _domain(cls, value: Any) -> str:
        domain = DOMAIN_ALIASES.get(str(value).strip().lower())
        if domain is None:
            raise ValueError(f"domain {value!r} is not one of {', '.join(DOMAINS)}")
        return domain


class ResponseLine(BaseModel):
    """One model's answer to one prompt, keyed by the prompt's id."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    prompt_id: str = Text200
    audio: str = Field(min_length=1)
    transcript: str | None = None


T = TypeVar("T", bound=BaseModel)


def validate_lines(
    schema: type[T], lines: list[tuple[int, dict[str, Any]]]
) -> list[tuple[int, T]]:
    """Validate every line; report up to ten bad lines at once, each with its number."""
    good: list[tuple[int, T]] = []
    problems: list[str] = []
    for number, raw in lines:
        try:
            good.append((number, schema.model_validate(raw)))
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "line"
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "missing":
                    message = "required field is missing"
                problems.append(f"line {number}: {where}: {message}")
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise InvalidInput("manifest.jsonl has invalid lines: " + "; ".join(shown),
                           detail=problems)
    return good


class DatasetImported(BaseModel):
    dataset: str
    prompts: int
    prompt_ids: list[str]


class ResponsesImported(BaseModel):
    model: str
    responses: int
    prompt_ids: list[str]


class PromptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="key")
    dataset: str
    text: str
    task: str
    category: str | None
    task_description: str | None
    language: str
    text_cn: str | None
    level: str
    domain: str
    emotion: str | None
    sarcasm: str | None
    age: str | None
    gender: str | None
    contrast_group: str | None
    duration_s: float
    active: bool

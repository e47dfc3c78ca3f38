"""Admin exports, streamed: the vote log, preference and score data for training, prompts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import exists, select

from app.db.models import Prompt
from app.deps import AdminAuth, SessionDep, SettingsDep, StorageDep
from app.errors import NotFound
from app.exports import audiofolder, prompts, votes
from app.exports.stream import Filters, check_rater, checked, parse_filters

router = APIRouter(prefix="/api/v1/exports", tags=["exports"], dependencies=[AdminAuth])

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet",
               "zip": "application/zip"}


def prompt_filters(
    domain: Annotated[str | None, Query(description="education, social companionship, "
                                                    "entertainment or medical consultation")] = None,
    level: Annotated[str | None, Query(description="L1, L2, L3 or L4")] = None,
    task: str | None = None,
    language: str | None = None,
    dataset: str | None = None,
) -> Filters:
    return parse_filters(domain=domain, level=level, task=task, language=language,
                         dataset=dataset)


PromptFilters = Annotated[Filters, Depends(prompt_filters)]
RaterQuery = Query(description='"all", "human", or the name of a judge')
AfterIdQuery = Query(ge=0, description="only votes with a larger vote id (incremental pulls)")


def vote_filters(
    session: SessionDep, filters: PromptFilters,
    rater: Annotated[str, RaterQuery] = "all",
    after_id: Annotated[int, AfterIdQuery] = 0,
    include_excluded: Annotated[bool, Query(
        description="also the votes the leaderboard leaves out: attention checks and flagged "
                    "raters' votes (marked in attention_check and rater_flagged)")] = False,
) -> Filters:
    return replace(filters, rater=check_rater(session, rater), after_id=after_id,
                   include_excluded=include_excluded)


def preference_filters(session: SessionDep, filters: PromptFilters,
                       rater: Annotated[str, RaterQuery] = "human",
                       after_id: Annotated[int, AfterIdQuery] = 0) -> Filters:
    return replace(filters, rater=check_rater(session, rater), after_id=after_id)


def score_filters(session: SessionDep, filters: PromptFilters,
                  rater: Annotated[str, RaterQuery] = "all") -> Filters:
    return replace(filters, rater=check_rater(session, rater))


def _download(body: Iterator[bytes], filename: str, kind: str) -> StreamingResponse:
    return StreamingResponse(body, media_type=MEDIA_TYPES[kind], headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })


@router.get("/votes")
def export_votes(
    settings: SettingsDep,
    filters: Annotated[Filters, Depends(vote_filters)],
    format: Annotated[Literal["jsonl", "parquet"], Query(description="jsonl or parquet")] = "jsonl",
) -> StreamingResponse:
    """The vote log in vote-id order, one record per vote: the battle, both models, the
    outcome, the rater (a stable pseudonym for a person, the name for a judge), timestamps and
    the prompt's slice fields (schema in README, "Exports"). The votes are those the
    leaderboard counts, unless `include_excluded`. JSONL is what `s2s-arena leaderboard FILE`
    reads. Filter by the slice parameters; `after_id` pulls only the votes after the last one
    you have."""
    body = (votes.parquet if format == "parquet" else votes.jsonl)(filters, settings.secret_key)
    return _download(body, f"votes.{format}", format)


@router.get("/preferences")
def export_preferences(
    settings: SettingsDep,
    storage: StorageDep,
    filters: Annotated[Filters, Depends(preference_filters)],
) -> StreamingResponse:
    """Preference data for reward models and RL (ParaS2S §4): for every vote with a winner,
    the prompt audio, the chosen answer's audio and the rejected one's, and their metadata.
    A zip in the layout the Hugging Face `datasets` audiofolder loader reads
    (`load_dataset("audiofolder", data_files="preferences.zip")`). People's votes by default;
    `rater=all` adds the judges', a judge's name gives that judge's. Attention checks and
    flagged raters' votes are left out, as the leaderboard leaves them out."""
    return _download(checked(audiofolder.preferences(filters, settings.secret_key, storage)),
                     "preferences.zip", "zip")


@router.get("/scores")
def export_scores(
    settings: SettingsDep,
    storage: StorageDep,
    filters: Annotated[Filters, Depends(score_filters)],
) -> StreamingResponse:
    """Pointwise 1-5 scores of single answers (ParaS2S), by judges and by people: the prompt
    audio, the answer's audio, the score and its metadata, as an audiofolder zip. Flagged
    raters' ratings are left out."""
    return _download(checked(audiofolder.scores(filters, settings.secret_key, storage)),
                     "scores.zip", "zip")


@router.get("/prompts")
def export_prompts(
    session: SessionDep,
    storage: StorageDep,
    filters: PromptFilters,
) -> StreamingResponse:
    """Prompts with their metadata and audio as a dataset bundle in the import format:
    importing the zip again (POST /api/v1/datasets) gives the same prompts. The file is named
    after the dataset when `dataset` is given, which the import takes as the name."""
    if not session.scalar(select(exists().where(*filters.prompt_conditions()).select_from(Prompt))):
        raise NotFound("no prompts match these filters")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", filters.dataset or "prompts")
    return _download(checked(prompts.bundle(filters, storage)), f"{name}.zip", "zip")

"""REST for automatic judges: create them, start runs, read their position bias."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db.models import Judge
from app.deps import AdminAuth, SessionDep, SettingsDep
from app.errors import Conflict, InvalidInput
from app.judges import service
from app.judges.agreement_service import agreement
from app.judges.configs import JudgeConfig
from app.web import templates

router = APIRouter(prefix="/api/v1/judges", tags=["judges"], dependencies=[AdminAuth])


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A pairwise judge votes on this many battles, served by the arena's pairing strategy.
    battles: int | None = Field(default=None, ge=1, le=100_000)
    # A pointwise judge scores this many ready responses it has not scored (None: all).
    responses: int | None = Field(default=None, ge=1, le=1_000_000)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_judge(config: Annotated[JudgeConfig, Body()], session: SessionDep) -> dict[str, Any]:
    """Add a judge. Its votes enter the log under a rater of kind "judge" with its name, so
    GET /api/v1/leaderboard?rater=<name> ranks by its votes alone."""
    judge = service.create(session, config)
    try:
        session.commit()
    except IntegrityError as exc:
        raise Conflict(f"a judge named {config.name!r} already exists") from exc
    return service.read(session, [judge])[0]


@router.get("")
def list_judges(session: SessionDep) -> list[dict[str, Any]]:
    """Every judge with its judgements by status and its first-position pick rate (an
    unbiased judge picks the answer it heard first half the time)."""
    return service.read(session, list(session.scalars(select(Judge).order_by(Judge.id))))


@router.get("/{judge_id}")
def get_judge(judge_id: int, session: SessionDep) -> dict[str, Any]:
    return service.read(session, [service.get(session, judge_id)])[0]


@router.post("/{judge_id}/runs", status_code=status.HTTP_202_ACCEPTED)
def start_run(judge_id: int, data: RunRequest, session: SessionDep,
              settings: SettingsDep) -> dict[str, int]:
    """Serve N battles to the judge and have it vote on each, on the workers' judging queue.
    Follow the job at GET /api/v1/jobs/{job_id}."""
    judge = service.get(session, judge_id)
    if judge.kind == "pipeline_pointwise":
        if data.battles is not None:
            raise InvalidInput("a pointwise judge scores responses: send {\"responses\": N} "
                               "or nothing (every response it has not scored)")
        job, ids = service.start_scoring(session, judge, data.responses)
        session.commit()
        service.enqueue_scores(ids)
    else:
        if data.battles is None:
            raise InvalidInput("a pairwise judge needs {\"battles\": N}")
        job, ids = service.start_run(session, judge, data.battles, settings)
        session.commit()
        service.enqueue(ids)
    return {"job_id": job.id}


@router.get("/{judge_id}/scores")
def judge_scores(judge_id: int, session: SessionDep) -> dict[str, Any]:
    """A pointwise judge's mean score per model, overall and per style label of the prompts
    (ParaS2S's Table 3)."""
    judge = service.get(session, judge_id)
    if judge.kind != "pipeline_pointwise":
        raise InvalidInput(f"judge {judge.name!r} is pairwise: it votes, it does not score")
    return service.score_table(session, judge)


agreement_router = APIRouter(prefix="/api/v1/agreement", tags=["judges"])


@agreement_router.get("")
def rater_agreement(session: SessionDep) -> dict[str, Any]:
    """Observed agreement and Cohen's kappa, with 95% bootstrap intervals: each judge against
    the humans who voted on the same items, and humans against each other."""
    return agreement(session)


pages = APIRouter(tags=["judges pages"], include_in_schema=False)


@pages.get("/agreement", response_class=HTMLResponse)
def agreement_page(request: Request, session: SessionDep) -> Response:
    found = agreement(session)
    rows = [{"rater": j["judge"], **j} for j in found["judges"]]
    rows.append({"rater": "humans", **found["humans"]})
    return templates.TemplateResponse(request, "agreement.html",
                                      {"rows": rows, "pointwise": found["pointwise"]})


@pages.get("/scores", response_class=HTMLResponse)
def scores_page(request: Request, session: SessionDep) -> Response:
    judges = session.scalars(select(Judge).where(Judge.kind == "pipeline_pointwise")
                             .order_by(Judge.id)).all()
    tables = [service.score_table(session, judge) for judge in judges]
    return templates.TemplateResponse(request, "scores.html", {"tables": tables})

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import LeaderboardSettings
from app.db.models import LeaderboardSnapshot, Prompt
from app.deps import AdminAuth, SessionDep, SettingsDep
from app.errors import InvalidInput
from app.jobs import service as jobs
from app.leaderboard import service
from app.leaderboard.service import Slice

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])

# Anyone may keep a copy for a few seconds; after that it is checked again with its ETag, which
# costs the server one lookup and the client no body when nothing changed.
CACHE_CONTROL = "public, max-age=5, must-revalidate"


def slice_filter(
    domain: Annotated[str | None, Query(description="education, social companionship, ...")] = None,
    level: Annotated[str | None, Query(description="L1, L2, L3 or L4")] = None,
    task: str | None = None,
    language: str | None = None,
    dataset: str | None = None,
    rater: Annotated[str, Query(description='"all", "human", or the name of a judge')] = "all",
) -> Slice:
    return service.parse_slice(domain=domain, level=level, task=task, language=language,
                               dataset=dataset, rater=rater)


SliceDep = Annotated[Slice, Depends(slice_filter)]


def etag(snapshot: LeaderboardSnapshot, representation: str) -> str:
    """A weak ETag from the snapshot's identity: its slice, method, parameters, the highest
    vote id it covers and its table (which changes when a model is renamed or added without a
    vote), per representation. A recompute of the same votes gives the same tag."""
    identity = json.dumps([snapshot.slice_key, snapshot.method, snapshot.params,
                           snapshot.max_vote_id, snapshot.payload, representation],
                          sort_keys=True, separators=(",", ":"))
    return f'W/"{hashlib.sha256(identity.encode()).hexdigest()[:32]}"'


def not_modified(request: Request, tag: str) -> bool:
    """If-None-Match holds this tag (compared weakly, as RFC 9110 asks for GET) or `*`."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    wanted = tag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == wanted
               for t in header.split(","))


def cache_headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": CACHE_CONTROL, "Access-Control-Allow-Origin": "*"}


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP's "CSV
# injection"): a model or organisation named "=HYPERLINK(...)" would run in a lab's Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: empty for null, true/false for booleans, numbers as they are, and text that
    a spreadsheet would take for a formula behind a leading apostrophe, so it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(models: list[dict[str, Any]]) -> str:
    """One row per model with the fields of the JSON's model objects, in their order (see
    `_cell` for how a value is written)."""
    columns = list(dict.fromkeys(key for model in models for key in model))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for model in models:
        writer.writerow([_cell(model.get(key)) for key in columns])
    return out.getvalue()


def csv_filename(chosen: Slice) -> str:
    return "leaderboard-" + re.sub(r"[^A-Za-z0-9.]+", "-", chosen.key).strip("-") + ".csv"


@router.get("/leaderboard", responses={304: {"description": "unchanged since the ETag sent in "
                                                              "If-None-Match"}})
def get_leaderboard(
    request: Request, session: SessionDep, settings: SettingsDep, chosen: SliceDep,
    format: Annotated[Literal["json", "csv"], Query(
        description="json: the whole snapshot; csv: its table, one row per model")] = "json",
) -> Response:
    """The leaderboard of a slice of the log: per model the Bradley–Terry rating with its 95%
    bootstrap interval and Rank (UB), the S2S-Arena paper's online Elo (init 1000, K = 32, votes
    in log order), wins, losses, ties, matches, win rate, whether it is provisional, and its
    votes from people and from judges; the pairwise win-rate and battle-count matrices; whether
    the comparison graph is connected; and the ranking's bootstrap stability (Spearman mean ±
    sd). `format=csv` gives the models' table as CSV. Responses carry an ETag: send it back in
    If-None-Match to get 304 while the table is unchanged."""
    snapshot = service.latest(session, chosen, settings.leaderboard)
    session.commit()
    tag = etag(snapshot, format)
    if not_modified(request, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=cache_headers(tag))
    board = service.as_json(snapshot, chosen)
    if format == "csv":
        return Response(to_csv(board["models"]), media_type="text/csv; charset=utf-8", headers={
            **cache_headers(tag),
            "Content-Disposition": f'attachment; filename="{csv_filename(chosen)}"'})
    return JSONResponse(board, headers=cache_headers(tag))


BREAKDOWNS = ("domain", "level")


def breakdown(session: Session, chosen: Slice, by: str,
              settings: LeaderboardSettings) -> tuple[dict[str, Any], str]:
    """The S2S-Arena paper's Tables 5 and 6: each model's rating in every domain (or level)
    of a slice, from the slice's own snapshot per column, and the macro average over the
    columns where the model has votes. Returns the table and a tag naming its snapshots."""
    if by not in BREAKDOWNS:
        raise InvalidInput(f"cannot break down by {by!r}: choose domain or level")
    column = Prompt.level if by == "level" else Prompt.domain
    values = list(session.scalars(select(column).distinct().order_by(column)))
    snapshots = [service.latest(session, replace(chosen, **{by: value}), settings)
                 for value in values]
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for value, snapshot in zip(values, snapshots):
        for model in snapshot.payload["models"]:
            cells.setdefault(model["name"], {})[value] = {
                "rating": model["rating"] if model["matches"] else None, "elo": model["elo"],
                "matches": model["matches"], "provisional": model["provisional"]}
    rows = []
    for name, by_value in cells.items():
        rated = [cell["rating"] for cell in by_value.values() if cell["rating"] is not None]
        rows.append({"name": name, "average": round(sum(rated) / len(rated), 2) if rated else None,
                     "columns": {value: by_value.get(value) for value in values}})
    rows.sort(key=lambda row: (row["average"] is None, -(row["average"] or 0), row["name"]))
    table = {"by": by, "slice": asdict(replace(chosen, **{by: None})), "columns": values,
             "votes": {value: s.vote_count for value, s in zip(values, snapshots)}, "models": rows}
    return table, "+".join(etag(s, by) for s in snapshots)


def breakdown_csv(table: dict[str, Any]) -> str:
    """One row per model: its rating in each column (empty without votes) and the average."""
    return to_csv([{"name": row["name"],
                    **{value: (row["columns"][value] or {}).get("rating") for value in table["columns"]},
                    "average": row["average"]} for row in table["models"]])


@router.get("/leaderboard/breakdown", responses={304: {"description": "unchanged"}})
def get_breakdown(
    request: Request, session: SessionDep, settings: SettingsDep, chosen: SliceDep,
    by: Annotated[str, Query(description="domain (the paper's Table 5) or level (Table 6)")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Each model's Bradley–Terry rating per domain or per level of a slice (its other filters
    apply), with the macro average over the columns where the model has votes, as the
    S2S-Arena paper's Tables 5 and 6; each cell also carries the online Elo, the matches and
    whether the model is provisional there. ETag and If-None-Match as GET /api/v1/leaderboard."""
    table, identity = breakdown(session, chosen, by, settings.leaderboard)
    session.commit()
    tag = f'W/"{hashlib.sha256(f"{identity}+{format}".encode()).hexdigest()[:32]}"'
    if not_modified(request, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=cache_headers(tag))
    if format == "csv":
        filename = csv_filename(replace(chosen, **{by: None})).replace(".csv", f"-by-{by}.csv")
        return Response(breakdown_csv(table), media_type="text/csv; charset=utf-8", headers={
            **cache_headers(tag), "Content-Disposition": f'attachment; filename="{filename}"'})
    return JSONResponse(table, headers=cache_headers(tag))


@router.post("/leaderboard/recompute", status_code=status.HTTP_202_ACCEPTED,
             dependencies=[AdminAuth])
def recompute(session: SessionDep) -> dict[str, int]:
    """Recompute every standard slice from the whole vote log in a worker; follow the job at
    GET /api/v1/jobs/{job_id}."""
    job = jobs.create(session, "leaderboard_recompute", total=1)
    session.commit()
    service.enqueue_recompute(job.id)
    return {"job_id": job.id}

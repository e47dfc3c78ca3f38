"""The public leaderboard page: a slice's table (sortable on the server), its plots as inline
SVG, the methodology and the models' architectures. It works without JavaScript; with htmx it
refreshes itself, and only when the table changed."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.db.models import LeaderboardSnapshot, Prompt, Rater
from app.deps import SessionDep, SettingsDep
from app.errors import ArenaError, InvalidInput
from app.leaderboard import plots, service
from app.leaderboard.api import BREAKDOWNS, breakdown, etag, not_modified
from app.web import is_htmx, templates

router = APIRouter(tags=["leaderboard pages"], include_in_schema=False)

SLICE_PARAMS = ("rater", "domain", "level", "task", "language", "dataset")
# Columns a visitor can sort by, and the order a first click gives.
SORTS = {"rank": "asc", "name": "asc", "organisation": "asc", "sector": "asc", "rating": "desc",
         "elo": "desc", "win_rate": "desc", "wins": "desc", "losses": "desc", "ties": "desc",
         "matches": "desc", "human_votes": "desc", "judge_votes": "desc"}
SORT_FIELDS = {"rank": "rank_ub"}
HISTORY_POINTS = 120

# The slice's stored snapshots, one per distinct number of votes (the first that covered
# them), thinned to at most :points evenly spread ones (always with the newest), each with the
# rating of every model that had votes by then. The tables are read in SQL; only the ratings
# come back.
_HISTORY = text("""
WITH versions AS (
  SELECT DISTINCT ON (vote_count) id FROM leaderboard_snapshots
  WHERE slice_key = :key AND method = :method AND params = :params AND id <= :upto
  ORDER BY vote_count, id
), numbered AS (
  SELECT id, row_number() OVER (ORDER BY id) AS k, count(*) OVER () AS n FROM versions
)
SELECT s.id, s.computed_at, s.vote_count, m ->> 'name', (m ->> 'rating')::float
FROM numbered JOIN leaderboard_snapshots s USING (id)
CROSS JOIN LATERAL json_array_elements(s.payload -> 'models') AS m
WHERE (m ->> 'matches')::int > 0 AND (k = n OR (k - 1) % greatest(1, ceil(n / CAST(:points AS float))::int) = 0)
ORDER BY s.id
""").bindparams(bindparam("params", type_=JSONB))


def history(session: Session, snapshot: LeaderboardSnapshot,
            points: int = HISTORY_POINTS) -> list[tuple[datetime, int, dict[str, float]]]:
    """(time, votes covered, {model: rating}) per snapshot of this slice, oldest first."""
    rows = session.execute(_HISTORY, {
        "key": snapshot.slice_key, "method": snapshot.method, "params": snapshot.params,
        "upto": snapshot.id, "points": points}).all()
    series: dict[int, tuple[datetime, int, dict[str, float]]] = {}
    for snapshot_id, computed_at, votes, name, rating in rows:
        _, _, ratings = series.setdefault(snapshot_id, (computed_at, votes, {}))
        if rating is not None:
            ratings[name] = rating
    return list(series.values())


def slice_options(session: Session) -> dict[str, list[str]]:
    """What each filter can be: the values the prompts and the judges have."""
    def distinct(column) -> list[str]:
        return list(session.scalars(select(column).where(column.is_not(None))
                                    .distinct().order_by(column)))

    judges = list(session.scalars(
        select(Rater.name).where(Rater.kind == "judge").order_by(Rater.name)))
    return {"rater": ["all", "human", *judges], "domain": distinct(Prompt.domain),
            "level": distinct(Prompt.level), "task": distinct(Prompt.task),
            "language": distinct(Prompt.language), "dataset": distinct(Prompt.dataset)}


def sort_models(models: list[dict[str, Any]], sort: str | None, order: str) -> list[dict[str, Any]]:
    """The table sorted by one column (text case-insensitively); models without a value (not
    ranked, no interval) stay last, and equal values keep the table's order."""
    if sort is None:
        return models
    field = SORT_FIELDS.get(sort, sort)
    present = [m for m in models if m.get(field) is not None]
    missing = [m for m in models if m.get(field) is None]
    present.sort(key=lambda m: m[field].casefold() if isinstance(m[field], str) else m[field],
                 reverse=order == "desc")
    return present + missing


def _choice(request: Request) -> tuple[service.Slice, str | None, str]:
    query = request.query_params
    chosen = service.parse_slice(**{name: query.get(name) for name in SLICE_PARAMS})
    sort, order = query.get("sort") or None, query.get("order") or None
    if sort is not None and sort not in SORTS:
        raise InvalidInput(f"cannot sort by {sort!r}: choose one of {', '.join(SORTS)}")
    if order is not None and order not in ("asc", "desc"):
        raise InvalidInput(f"order {order!r} is neither asc nor desc")
    return chosen, sort, order or SORTS.get(sort or "", "asc")


def _link(request: Request, **changes: str | None) -> str:
    """This page's address with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    params.update(changes)
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return request.url.path + ("?" + urlencode(kept) if kept else "")


@router.get("/leaderboard", response_class=HTMLResponse, name="leaderboard")
def leaderboard_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Query: the slice filters of GET /api/v1/leaderboard, and sort (a column) with order
    (asc or desc)."""
    try:
        chosen, sort, order = _choice(request)
    except ArenaError as error:
        if is_htmx(request):
            raise
        return templates.TemplateResponse(request, "leaderboard.html", {
            "error": error.message, "options": slice_options(session), "link": _link,
            "chosen": None}, status_code=error.status_code)
    snapshot = service.latest(session, chosen, settings.leaderboard)
    session.commit()
    tag = etag(snapshot, "html")
    if is_htmx(request) and not_modified(request, tag):
        return Response(status_code=204)  # htmx keeps what it shows: nothing changed
    # The paper's Tables 5 and 6 on the whole leaderboard, whose domain and level slices the
    # worker keeps fresh with it (a vote that changes them changes this table too); for any
    # other slice they are at GET /api/v1/leaderboard/breakdown.
    breakdowns = ({by: breakdown(session, chosen, by, settings.leaderboard)[0] for by in BREAKDOWNS}
                  if chosen == service.Slice() else {})
    session.commit()
    board = service.as_json(snapshot, chosen)
    filters = {name: value for name, value in asdict(chosen).items()
               if value is not None and not (name == "rater" and value == "all")}
    context = {
        "board": board, "models": sort_models(board["models"], sort, order),
        "sort": sort, "order": order, "sorts": SORTS, "chosen": chosen, "filters": filters,
        "etag": tag, "link": _link, "self_url": _link(request),
        "data_url": "/api/v1/leaderboard" + ("?" + urlencode(filters) if filters else ""),
        "csv_url": "/api/v1/leaderboard?" + urlencode({**filters, "format": "csv"}),
        "ties": any(m["ties"] for m in board["models"]),
        "breakdowns": breakdowns,
        "plots": {
            "ratings": plots.ratings_svg(board["models"]),
            "win_rate": plots.heatmap_svg(board["matrix"]["models"], board["matrix"]["win_rate"],
                                          "win_rate"),
            "battles": plots.heatmap_svg(board["matrix"]["models"], board["matrix"]["battles"],
                                         "battles"),
            "history": plots.history_svg(history(session, snapshot),
                                         [m["name"] for m in board["models"]]),
        },
    }
    if is_htmx(request):
        return templates.TemplateResponse(request, "partials/leaderboard_board.html", context)
    context["options"] = slice_options(session)
    return templates.TemplateResponse(request, "leaderboard.html", context)

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import SessionDep, SettingsDep
from app.leaderboard import service
from app.leaderboard.api import SliceDep
from app.web import is_htmx, templates

router = APIRouter(tags=["leaderboard pages"], include_in_schema=False)


@router.get("/leaderboard", response_class=HTMLResponse, name="leaderboard")
def leaderboard_page(request: Request, session: SessionDep, settings: SettingsDep,
                     chosen: SliceDep) -> Response:
    board = service.as_json(service.latest(session, chosen, settings.leaderboard), chosen)
    session.commit()
    template = "partials/leaderboard_table.html" if is_htmx(request) else "leaderboard.html"
    return templates.TemplateResponse(request, template, {"board": board})

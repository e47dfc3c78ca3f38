"""The web application: JSON API under /api/v1, pages, health checks."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.accounts import api as accounts_api
from app.accounts import pages as accounts_pages
from app.accounts.csrf import CsrfCookieMiddleware, csrf_protect
from app.accounts.identity import LoginRequired
from app.accounts.limits import RateLimited
from app.admin import pages as admin_pages
from app.arena import api as arena_api
from app.arena import pages as arena_pages
from app.config import PROJECT_ROOT
from app.datasets import api as datasets_api
from app.errors import ArenaError
from app.exports import api as exports_api
from app.health import router as health_router
from app.jobs import api as jobs_api
from app.judges import api as judges_api
from app.leaderboard import api as leaderboard_api
from app.leaderboard import pages as leaderboard_pages
from app.speech_models import api as models_api
from app.web import VisitorCookieMiddleware, is_htmx, templates

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # forms carry their Origin; other sites learn nothing
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
# Pages run only the arena's own scripts (no inline script, no eval), load nothing from other
# sites, and cannot be framed. FastAPI's /docs pages load Swagger UI from a CDN: left out.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


def create_app() -> FastAPI:
    app = FastAPI(
        title="S2S Arena",
        description="Blind pairwise listening votes that rank speech-to-speech models. "
        "Admin endpoints take `Authorization: Bearer $ARENA_ADMIN_TOKEN`.",
        version="0.1.0",
        dependencies=[Depends(csrf_protect)],  # page forms; the bearer-token API is exempt
    )
    app.add_middleware(VisitorCookieMiddleware)
    app.add_middleware(CsrfCookieMiddleware)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(DOCS_PATHS):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.url.scheme == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    for router in (health_router, models_api.router, datasets_api.router,
                   leaderboard_api.router, jobs_api.router, judges_api.router, exports_api.router,
                   judges_api.agreement_router, arena_api.router, arena_pages.router,
                   leaderboard_pages.router,
                   admin_pages.router, judges_api.pages, accounts_pages.router,
                   accounts_api.router, accounts_api.raters_router):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/arena")

    app.add_exception_handler(ArenaError, _arena_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


def _error_response(request: Request, status: int, code: str, message: str,
                    detail: object | None = None) -> Response:
    if is_htmx(request):
        # htmx swaps error bodies into #flash (see the responseHandling config in base.html).
        response = templates.TemplateResponse(
            request, "partials/flash.html", {"message": message}, status_code=status
        )
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    body: dict[str, object] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _arena_error(request: Request, exc: ArenaError) -> Response:
    if isinstance(exc, LoginRequired) and request.method == "GET" and not is_htmx(request):
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}),
                                status_code=303)
    response = _error_response(request, exc.status_code, exc.code, exc.message, exc.detail)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = {404: "there is nothing at this address",
               405: f"{request.method} is not allowed here"}.get(exc.status_code, str(exc.detail))
    response = _error_response(request, exc.status_code,
                               HTTP_CODES.get(exc.status_code, "http_error"), message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        if error["type"] == "json_invalid":
            problems.append("the request body is not valid JSON")
            continue
        where = ".".join(str(p) for p in error["loc"] if p not in ("body", "query", "path"))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{where}: {message}" if where else message)
    return _error_response(request, 422, "invalid_input", "; ".join(problems), detail=problems)


app = create_app()

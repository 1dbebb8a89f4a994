"""FastAPI app: routes, one error handler with one error shape, security headers, raw entity paths, body limit."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from core import __version__
from core.api.admin import admin
from core.api.auth import Authenticator
from core.api.document import document
from core.api.middleware import BodyLimitMiddleware, EntityPathMiddleware, SecurityHeadersMiddleware
from core.api.paging import Pager
from core.api.routes import public, router
from core.errors import ChargeLensError
from core.jobs import Jobs
from core.settings import database_path
from core.store import Store

log = logging.getLogger("chargelens.api")
_TITLES = {
    400: "ValidationError",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalError",
}


def problem(
    status: int, title: str, detail: str, errors: dict | None = None, headers: dict | None = None
) -> JSONResponse:
    body = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (the router names only the first route that matched).

    A route of this very path shadows the routes whose parameters happen to match it: `/v1/locations/suggestions`
    is not the location `suggestions`.
    """
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    routes = [inner for r in request.app.routes for inner in getattr(getattr(r, "original_router", r), "routes", [r])]
    found = [(m, r.matches({**request.scope, "method": m, "path_params": {}})) for m in methods for r in routes]
    taken = [(m, child.get("path_params")) for m, (match, child) in found if match == Match.FULL]
    exact = [m for m, params in taken if not params]
    return exact or list(dict.fromkeys(m for m, _ in taken))


def create_app(*, clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """The API app; `clock` (monotonic seconds) drives token expiry and the authentication rate limit."""
    app = FastAPI(
        title="ChargeLens API",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.openapi = lambda: document(app)
    app.state.auth = Authenticator(clock=clock)
    app.state.pager = Pager()
    app.state.jobs = Jobs()
    app.include_router(public)
    app.include_router(router)
    app.include_router(admin)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(EntityPathMiddleware)

    @app.exception_handler(ChargeLensError)
    async def chargelens_error(request: Request, exc: ChargeLensError):
        return problem(exc.status, exc.title, exc.detail, exc.errors, getattr(exc, "headers", None))

    @app.exception_handler(duckdb.TransactionException)
    async def write_conflict(request: Request, exc: duckdb.TransactionException):
        # Two writes to the same rows at once: DuckDB refuses the second; nothing was half-written.
        return problem(409, "Conflict", "Another change to the same data was being saved; send the request again.")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = {".".join(str(p) for p in e["loc"] if p != "body") or "body": e["msg"] for e in exc.errors()}
        return problem(400, "ValidationError", "The request is not valid; see errors for each field.", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no API route {request.url.path}; see /api/docs for the routes."
        elif exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not taken by {request.url.path}; it takes {', '.join(allowed)}."
        return problem(exc.status_code, title, detail, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected API failure on %s", request.url.path)
        return problem(500, "InternalError", "Something went wrong on the server; it was logged. Try again later.")

    # Added last, so outermost: the inner layers' own replies (413) and unexpected failures get the headers too.
    app.add_middleware(SecurityHeadersMiddleware, on_error=unexpected)

    @app.get("/health", tags=["health"])
    def health():
        db = database_path()
        try:
            store = Store.open(db)
            version = store.schema_version()
        except ChargeLensError:
            return JSONResponse(
                {"status": "unavailable", "version": __version__, "database": {"file": db.name}}, status_code=503
            )
        return {"status": "ok", "version": __version__, "database": {"file": db.name, "schemaVersion": version}}

    return app


def api_mount(prefix: str = "/api") -> Mount:
    """The API app mounted at `prefix` for the serving process.

    Starlette matches a mount with `.`, which stops at a newline, so an entity id holding a percent-encoded
    line break (`%0A`) would fall through to the dashboard's plain-text 404; matching across line breaks
    keeps every path under the prefix inside the API and its one error shape.
    """
    mount = Mount(prefix, app=create_app())
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


# Replies smaller than this go out as they are: on loopback, compressing a page of sessions costs more CPU than the
# bytes it saves; exports and long listings still shrink.
GZIP_MINIMUM_BYTES = 16 * 1024


class ApiFirst:
    """Sends requests under the API's prefix straight to the API, ahead of the dashboard's own layers.

    The dashboard's middleware (path checks for its static files, its session cookie, its compression) does nothing
    for the API but cost CPU on every request (in bench/load_api.py's mix, 9.37 against 9.22 ms of server CPU per
    request: small, within the run-to-run noise); the API has its own body limit, security headers and compression.
    Everything else (pages, websocket, static files) goes on to the dashboard unchanged.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/api"):
        self.app = app
        self.mount = api_mount(prefix)
        self.api = GZipMiddleware(self.mount.handle, minimum_size=GZIP_MINIMUM_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match, child = self.mount.matches(scope)
            if match == Match.FULL:
                await self.api({**scope, **child}, receive, send)
                return
        await self.app(scope, receive, send)


def api_first(prefix: str = "/api") -> Middleware:
    """The serving process's API: a middleware of `st.App` that answers every path under `prefix`."""
    return Middleware(ApiFirst, prefix=prefix)

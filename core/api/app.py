"""FastAPI app: routes, one error handler with one error shape, security headers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import __version__
from core.errors import ChargeLensError
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


def problem(status: int, title: str, detail: str, errors: dict | None = None) -> JSONResponse:
    body = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def create_app() -> FastAPI:
    app = FastAPI(
        title="ChargeLens API",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )

    @app.exception_handler(ChargeLensError)
    async def chargelens_error(request: Request, exc: ChargeLensError):
        return problem(exc.status, exc.title, exc.detail, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = {".".join(str(p) for p in e["loc"] if p != "body") or "body": e["msg"] for e in exc.errors()}
        return problem(400, "ValidationError", "The request is not valid; see errors for each field.", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no API route {request.url.path}; see /api/docs for the routes."
        return problem(exc.status_code, title, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected API failure on %s", request.url.path)
        return problem(500, "InternalError", "Something went wrong on the server; it was logged. Try again later.")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith(f"{request.scope.get('root_path', '')}/v1"):
            response.headers["Content-Security-Policy"] = "default-src 'none'"
        return response

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

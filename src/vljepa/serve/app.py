"""The FastAPI application: the API behind an optional bearer token, JSON errors, the web page.

Ours: every refusal is `{"error": "<message>"}` with a 4xx status (validation errors are flattened to one
line naming the field); an unexpected exception is a 500 with the same shape, logged with its traceback,
and the server goes on. The request body is capped (`limits.BodyLimit`: 413 before a large upload is
read, answered by the same JSON handler). The token, when set, is accepted as `Authorization: Bearer T` or as the `vljepa_token`
cookie the page sets (a browser's EventSource, <video> and <img> requests cannot carry a header); the
page itself, its static files and /healthz are open. The model thread and the stream jobs' thread start
and stop with the app (its lifespan).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..tasks.requests import TaskRequestError
from .limits import BodyLimit, RequestError, token_accepted
from .routes import router
from .server import Server

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "vljepa_token"
FORM_FIELDS_BYTES = 256 * 1024  # allowed in a request body beside the upload (labels, options, multipart headers)
logger = logging.getLogger("vljepa.serve")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _field_errors(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(server: Server) -> FastAPI:
    """The app serving `server` (started and stopped with the app's lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            server.stop()

    async def require_token(request: Request) -> None:
        if not token_accepted(
            server.settings.token, request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE)
        ):
            raise RequestError(
                401, "missing or wrong token: send `Authorization: Bearer <token>`", {"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(
        title="vljepa",
        summary="VL-JEPA over HTTP: classify, ask, caption and search videos; caption long streams live.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=server.limits.max_upload_bytes + FORM_FIELDS_BYTES)
    app.state.server = server

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, str(error), error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = "request body too large" if error.status_code == 413 else str(error.detail)
        if error.status_code == 413:
            message += f": the server takes uploads up to {server.limits.max_upload_mb:g} MB"
        return _error(error.status_code, message, getattr(error, "headers", None))

    @app.exception_handler(TaskRequestError)
    async def out_of_limits(request: Request, error: TaskRequestError) -> JSONResponse:
        return _error(422, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, _field_errors(error))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(error).__name__})")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the server answers."""
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router, dependencies=[Depends(require_token)])
    return app

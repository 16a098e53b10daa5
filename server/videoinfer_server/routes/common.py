"""What the routers share: the error answer, authentication, and request helpers.

Handlers reach the server's state through the :data:`Authenticated` or :data:`Runtime`
dependencies, which read it from ``request.app.state.runtime`` (set by :func:`~..app.create_app`).
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from videoinfer_server.runtime import ServerRuntime
from videoinfer_server.signing import SignatureError

Handler = Callable[..., Any]
# After a 413 mid-stream, read (and discard) this much more so the client gets the answer.
_DRAIN_AFTER_REFUSAL = 16 * 1024 * 1024


class ApiError(Exception):
    """An error answer ``{"message": ...}`` with an HTTP status.

    :param status: the HTTP status.
    :param message: what went wrong and what to do, for the client.
    :param headers: extra response headers, e.g. ``Retry-After``.
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


async def api_error_answer(_request: Request, exc: Exception) -> JSONResponse:
    """The app's exception handler of :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)


async def _runtime(request: Request) -> ServerRuntime:
    runtime: ServerRuntime = request.app.state.runtime
    return runtime


async def _authenticated(request: Request) -> ServerRuntime:
    runtime: ServerRuntime = request.app.state.runtime
    key = request.query_params.get("api_key")
    if not key:
        raise ApiError(401, "missing api_key query parameter")
    if not hmac.compare_digest(key.encode(), runtime.config.api_key.encode()):
        raise ApiError(401, "invalid api_key")
    return runtime


Runtime = Annotated[ServerRuntime, Depends(_runtime)]
"""The server's state, for routes authenticated otherwise (signed URLs)."""

Authenticated = Annotated[ServerRuntime, Depends(_authenticated)]
"""The server's state, once the request's ``api_key`` is checked (401 otherwise)."""


def route(router: APIRouter, path: str, methods: list[str]) -> Callable[[Handler], Handler]:
    """Register a handler on ``path`` and on ``path + "/"``: the SDK calls one, the docs show the other."""

    def decorate(handler: Handler) -> Handler:
        router.add_api_route(path, handler, methods=methods)
        router.add_api_route(path + "/", handler, methods=methods, include_in_schema=False)
        return handler

    return decorate


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body; 400 when it is not JSON or not an object."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise ApiError(400, "the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def base_url(runtime: ServerRuntime, request: Request) -> str:
    """The base of the URLs handed out: ``--public-url``, else the URL the request came to."""
    return runtime.config.public_url or str(request.base_url).rstrip("/")


def verify_signed_url(runtime: ServerRuntime, request: Request) -> None:
    """Check a signed upload or result URL; 403 when forged, altered or expired."""
    try:
        runtime.signer.verify(request.url.path, dict(request.query_params))
    except SignatureError as err:
        raise ApiError(403, str(err)) from None


async def receive_file(request: Request, final: Path, limit: int) -> int | None:
    """Stream a ``PUT`` body to ``final`` (through a ``.part`` file), at most ``limit`` bytes; return its size.

    :return: the size, or None when the client disconnected (nothing is kept).
    :raise ApiError: 413 when the body is above ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the upload is {declared} bytes, above this server's limit of {limit} bytes")
    part = final.with_name(f"{final.name}.{uuid.uuid4().hex}.part")
    total = 0
    try:
        with open(part, "wb") as out:
            async for chunk in request.stream():
                total += len(chunk)
                if total <= limit:
                    out.write(chunk)
                elif total > limit + _DRAIN_AFTER_REFUSAL:
                    # Reading the rest (discarded) lets the client see the 413; past this, hang up.
                    break
    except ClientDisconnect:
        part.unlink(missing_ok=True)
        return None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if total > limit:
        part.unlink(missing_ok=True)
        raise ApiError(413, f"the upload is above this server's limit of {limit} bytes")
    os.replace(part, final)
    return total

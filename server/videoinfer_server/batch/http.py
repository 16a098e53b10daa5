"""What both Batch Processing routers share: the service dependency, the error answer, pages, datetimes."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from videoinfer_contract import batch as contract
from videoinfer_server.batch.service import BatchRequestError, BatchService
from videoinfer_server.routes.common import Authenticated

#: Page sizes when the client gives none, and at most (Choice: the service documents neither).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


async def batch_error_answer(_request: Request, exc: Exception) -> JSONResponse:
    """The app's exception handler of :class:`BatchRequestError`: ``{"error": ...}``, the contract's body."""
    assert isinstance(exc, BatchRequestError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _service(workspace: str, runtime: Authenticated) -> BatchService:
    service: BatchService = runtime.batch
    service.check_workspace(workspace)
    return service


Service = Annotated[BatchService, Depends(_service)]
"""The Batch Processing service, once the ``api_key`` and the path's ``{workspace}`` are checked."""


def page_window(request: Request) -> tuple[int, int]:
    """``(offset, limit)`` of the page a request asks for (``pageSize``, ``nextPageToken``); 400 when malformed."""
    size_text = request.query_params.get("pageSize")
    size = DEFAULT_PAGE_SIZE
    if size_text is not None:
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            raise BatchRequestError(
                400, f"pageSize must be a whole number from 1 to {MAX_PAGE_SIZE}, got {size_text!r}"
            )
        size = int(size_text)
    token = request.query_params.get("nextPageToken")
    if not token:
        return 0, size
    try:
        offset_text = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode()
        kind, _, number = offset_text.partition(":")
        if kind != "offset" or not number.isdigit():
            raise ValueError(token)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BatchRequestError(
            400, "nextPageToken is not one this server handed out: pass the nextPageToken of the previous page"
        ) from None
    return int(number), size


def next_token(offset: int, limit: int, more: bool) -> str | None:
    """The token of the page after the one read at ``offset``; None on the last page.

    :param more: whether a row exists past this page (the caller reads ``limit + 1`` rows to know).
    """
    if not more:
        return None
    return base64.urlsafe_b64encode(f"offset:{offset + limit}".encode()).decode().rstrip("=")


def iso(moment: float) -> str:
    """A POSIX time as the wire carries it (aware, UTC)."""
    import datetime

    return contract.format_datetime(datetime.datetime.fromtimestamp(moment, tz=datetime.UTC))

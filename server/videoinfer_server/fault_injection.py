"""Fault injection (only with ``enable_faults``): make the next N requests to an endpoint fail.

``POST /_faults`` with ``{"endpoint", "count", "action", "status_code", "retry_after",
"stall_seconds"}``; see :data:`ENDPOINTS` and :data:`ACTIONS`. The faults are applied by an ASGI
middleware in front of the whole app, before authentication. The same middleware notes when each
request to a named endpoint arrived: ``GET /_requests?endpoint=status`` lists the times, so a test
can check a client's pacing from the server's side, and counts them per endpoint, so that a test
waits for requests, not for time.

Actions: ``status`` answers ``status_code`` (with ``Retry-After`` when given) without running the
request; ``stall`` waits ``stall_seconds`` then runs it; ``drop`` closes the connection without
running it; ``malformed`` answers 200 with a body that is not JSON; ``lose_answer`` runs the request
(its effect happens) and then closes the connection before the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from videoinfer_contract import batch as contract_batch

log = logging.getLogger(__name__)

#: Batch Processing's endpoints (both path families and the signed URLs), by name.
BATCH_ENDPOINTS = {
    "staging_batches": contract_batch.LIST_BATCHES_ENDPOINT,
    "staging_batch": contract_batch.BATCH_METADATA_ENDPOINT,
    "staging_count": contract_batch.BATCH_COUNT_ENDPOINT,
    "staging_parts": contract_batch.BATCH_PARTS_ENDPOINT,
    "staging_list": contract_batch.BATCH_LIST_ENDPOINT,
    "staging_shards": contract_batch.BATCH_SHARDS_ENDPOINT,
    "staging_upload_video": contract_batch.UPLOAD_VIDEO_ENDPOINT,
    "staging_video_references": contract_batch.VIDEO_REFERENCES_ENDPOINT,
    "staging_put": ("PUT", "/staging-uploads/{file_id}"),
    "staging_download": ("GET", "/staging-downloads/{file_id}/{name}"),
    "batch_create_job": contract_batch.CREATE_JOB_ENDPOINT,
    "batch_jobs": contract_batch.LIST_JOBS_ENDPOINT,
    "batch_job": contract_batch.JOB_METADATA_ENDPOINT,
    "batch_stages": contract_batch.JOB_STAGES_ENDPOINT,
    "batch_tasks": contract_batch.STAGE_TASKS_ENDPOINT,
    "batch_logs": contract_batch.JOB_LOGS_ENDPOINT,
    "batch_abort": contract_batch.ABORT_JOB_ENDPOINT,
    "batch_restart": contract_batch.RESTART_JOB_ENDPOINT,
}
ENDPOINTS = ("workspace", "upload_url", "upload", "submit", "status", "result", *BATCH_ENDPOINTS)
ACTIONS = ("status", "stall", "drop", "malformed", "lose_answer")


def _template_pattern(template: str) -> re.Pattern[str]:
    """A path template's regex: each ``{field}`` one path segment."""
    return re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(template)) + "$")


_ROUTES = (
    ("GET", re.compile(r"^/$"), "workspace"),
    ("POST", re.compile(r"^/$"), "workspace"),
    ("POST", re.compile(r"^/video_upload_signed_url/?$"), "upload_url"),
    ("PUT", re.compile(r"^/uploads/[^/]+/[^/]+$"), "upload"),
    ("POST", re.compile(r"^/videoinfer/?$"), "submit"),
    ("GET", re.compile(r"^/videoinfer/?$"), "status"),
    ("GET", re.compile(r"^/results/[^/]+/?$"), "result"),
    *((method, _template_pattern(template), name) for name, (method, template) in BATCH_ENDPOINTS.items()),
)


@dataclass
class Fault:
    """One armed fault.

    :param action: ``status``, ``stall``, ``drop``, ``malformed``, or ``lose_answer`` (the request is
        served in full, e.g. a job is created, then the connection is closed before the answer).
    :param remaining: how many more requests it hits.
    :param status_code: the HTTP status of a ``status`` fault.
    :param retry_after: seconds put in ``Retry-After`` of a ``status`` fault; none when None.
    :param stall_seconds: delay of a ``stall`` fault.
    """

    action: str
    remaining: int
    status_code: int = 503
    retry_after: float | None = None
    stall_seconds: float = 5.0

    @classmethod
    def from_body(cls, body: Any) -> tuple[str, Fault]:
        """Validate a ``POST /_faults`` body; raise ValueError with a message for the user."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        endpoint, action = body.get("endpoint"), body.get("action", "status")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        count = body.get("count", 1)
        status_code = body.get("status_code", 503)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        if isinstance(status_code, bool) or not isinstance(status_code, int) or not 100 <= status_code <= 599:
            raise ValueError(f"status_code must be an HTTP status, got {status_code!r}")
        retry_after = body.get("retry_after")
        stall = body.get("stall_seconds", 5.0)
        for name, value in (("retry_after", retry_after), ("stall_seconds", stall)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        return endpoint, cls(action, count, status_code, retry_after, float(stall))


class FaultRegistry:
    """The armed faults, per endpoint, first armed first served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, deque[Fault]] = {}
        self._seen: deque[tuple[float, str]] = deque(maxlen=100_000)

    def record(self, endpoint: str) -> None:
        """Note a request to ``endpoint`` (its arrival time), for tests that check a client's pacing."""
        with self._lock:
            self._seen.append((time.time(), endpoint))

    def seen(self, endpoint: str | None = None) -> list[float]:
        """The arrival times (UNIX seconds) of the requests noted, to ``endpoint`` or to any."""
        with self._lock:
            return [at for at, name in self._seen if endpoint is None or name == endpoint]

    def counts(self) -> dict[str, int]:
        """How many requests were noted per endpoint."""
        with self._lock:
            return dict(Counter(name for _, name in self._seen))

    def add(self, endpoint: str, fault: Fault) -> None:
        """Arm a fault."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The fault hitting this request to ``endpoint``, if any; counts it down."""
        with self._lock:
            armed = self._faults.get(endpoint)
            if not armed:
                return None
            fault = armed[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                armed.popleft()
            return fault


def endpoint_of(method: str, path: str) -> str | None:
    """The fault endpoint name of a request, or None."""
    for route_method, pattern, name in _ROUTES:
        if method == route_method and pattern.match(path):
            return name
    return None


async def _drain(receive: Any, limit: int | None = None) -> None:
    read = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body") or (limit is not None and read >= limit):
            return


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(receive: Any) -> None:
    """Close the client connection without a response.

    Uvicorn's ``receive`` is a bound method of its request cycle, which holds the transport.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("injected drop fault: cannot reach the connection; answering 500 instead")
    transport.close()
    # Let the server notice the closed connection, so that it does not try to answer.
    for _ in range(3):
        await asyncio.sleep(0)


async def _discard(message: Any) -> None:
    """An ASGI ``send`` that sends nothing: the answer of a ``lose_answer`` fault never leaves."""


class FaultMiddleware:
    """ASGI middleware applying the faults of a :class:`FaultRegistry`."""

    def __init__(self, app: Any, faults: FaultRegistry) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_of(scope["method"], scope["path"])
        if endpoint:
            self.faults.record(endpoint)
        fault = self.faults.take(endpoint) if endpoint else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        log.info("injecting fault %s into %s %s", fault.action, scope["method"], endpoint)
        if fault.action == "stall":
            await asyncio.sleep(fault.stall_seconds)
            await self.app(scope, receive, send)
        elif fault.action == "drop":
            if endpoint == "upload":
                await _drain(receive, limit=1)  # read part of the body, then hang up
            await _drop(receive)
        elif fault.action == "lose_answer":
            await self.app(scope, receive, _discard)
            await _drop(receive)
        elif fault.action == "malformed":
            await _drain(receive)
            await _send(send, 200, b"<html>injected fault: this is not JSON", [(b"content-type", b"application/json")])
        else:
            await _drain(receive)
            headers = [(b"content-type", b"application/json")]
            if fault.retry_after is not None:
                retry = fault.retry_after
                headers.append((b"retry-after", str(int(retry) if float(retry).is_integer() else retry).encode()))
            await _send(send, fault.status_code, json.dumps({"message": "injected fault"}).encode(), headers)

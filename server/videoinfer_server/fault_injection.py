"""Fault injection (only with ``enable_faults``): make the next N requests to an endpoint fail.

``POST /_faults`` with ``{"endpoint", "count", "action", "status_code", "retry_after",
"stall_seconds"}``; see :data:`ENDPOINTS` and :data:`ACTIONS`. The faults are applied by an ASGI
middleware in front of the whole app, before authentication. The actions:

- ``status``: answer ``status_code`` (any HTTP status: 429, 503, a CDN's 520 to 530, 408...), with
  ``Retry-After: retry_after`` when given; the app never sees the request.
- ``stall``: wait ``stall_seconds``, then let the app answer.
- ``drop``: close the connection without an answer; the app never sees the request.
- ``malformed``: answer 200 with a body that is not JSON; the app never sees the request.
- ``lose_answer``: the app processes the request in full (a submission creates its job), then the
  connection is closed without its answer, as when a proxy or the network loses it on the way back.

The same middleware keeps a :class:`RequestLog` of every request to an endpoint: when it arrived,
what it asked for, how it was answered (``GET /_requests``), so that a test can check how a client
paced its requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

ENDPOINTS = ("workspace", "upload_url", "upload", "submit", "status", "result")
ACTIONS = ("status", "stall", "drop", "malformed", "lose_answer")
#: How many requests the :class:`RequestLog` keeps (the oldest are forgotten first).
REQUEST_LOG_SIZE = 10_000

_ROUTES = (
    ("GET", re.compile(r"^/$"), "workspace"),
    ("POST", re.compile(r"^/video_upload_signed_url/?$"), "upload_url"),
    ("PUT", re.compile(r"^/uploads/[^/]+/[^/]+$"), "upload"),
    ("POST", re.compile(r"^/videoinfer/?$"), "submit"),
    ("GET", re.compile(r"^/videoinfer/?$"), "status"),
    ("GET", re.compile(r"^/results/[^/]+/?$"), "result"),
)


@dataclass
class Fault:
    """One armed fault.

    :param action: one of :data:`ACTIONS` (see the module's docstring).
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
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        return endpoint, cls(action, count, status_code, retry_after, float(stall))


class FaultRegistry:
    """The armed faults, per endpoint, first armed first served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, deque[Fault]] = {}

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


@dataclass
class LoggedRequest:
    """One request to an endpoint, as :class:`RequestLog` keeps it (no key, no signature).

    :param time: when it arrived, in seconds since the epoch.
    :param endpoint: its endpoint name (see :data:`ENDPOINTS`).
    :param job_id: the job it asked about (status and result requests), else None.
    :param fault: the action of the fault that hit it, else None.
    :param status: the HTTP status of its answer; None while none was sent, or when none was (a
        ``drop`` or ``lose_answer`` fault, a client that went away).
    """

    time: float
    endpoint: str
    job_id: str | None
    fault: str | None
    status: int | None = None


class RequestLog:
    """The last :data:`REQUEST_LOG_SIZE` requests to an endpoint, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_SIZE)

    def record(self, endpoint: str, scope: dict[str, Any], fault: str | None, send: Any) -> Any:
        """Log a request as it arrives; return the ``send`` to answer it with, which notes the answer's status."""
        job_id: str | None = None
        if endpoint == "status":
            job_id = next(iter(parse_qs(scope.get("query_string", b"").decode("latin-1")).get("job_id", [])), None)
        elif endpoint == "result":
            job_id = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        entry = LoggedRequest(time.time(), endpoint, job_id, fault)
        with self._lock:
            self._requests.append(entry)

        async def noting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            await send(message)

        return noting

    def list(self, endpoint: str | None = None, job_id: str | None = None) -> list[dict[str, Any]]:
        """The logged requests, oldest first, as JSON objects; only those to ``endpoint`` or about
        ``job_id`` when given."""
        with self._lock:
            entries = list(self._requests)
        return [
            asdict(entry)
            for entry in entries
            if (endpoint is None or entry.endpoint == endpoint) and (job_id is None or entry.job_id == job_id)
        ]

    def clear(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._requests.clear()


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


class FaultMiddleware:
    """ASGI middleware applying the faults of a :class:`FaultRegistry` and logging requests in a :class:`RequestLog`."""

    def __init__(self, app: Any, faults: FaultRegistry, requests: RequestLog | None = None) -> None:
        self.app = app
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_of(scope["method"], scope["path"])
        fault = self.faults.take(endpoint) if endpoint else None
        if endpoint is not None and self.requests is not None:
            send = self.requests.record(endpoint, scope, fault.action if fault else None, send)
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
            await self.app(scope, receive, _swallow)
            await _drop(receive)
        elif fault.action == "malformed":
            await _drain(receive)
            await _send(
                send, 200, b"<html>injected fault: this is not JSON", [(b"content-type", b"application/json")]
            )
        else:
            await _drain(receive)
            headers = [(b"content-type", b"application/json")]
            if fault.retry_after is not None:
                retry = fault.retry_after
                headers.append(
                    (b"retry-after", str(int(retry) if float(retry).is_integer() else retry).encode())
                )
            await _send(send, fault.status_code, json.dumps({"message": "injected fault"}).encode(), headers)


async def _swallow(message: dict[str, Any]) -> None:
    """The ``send`` of a ``lose_answer`` fault: the app's answer goes nowhere."""

"""Routes only the local server has: its models, the jobs it received, and fault injection.

``/_faults`` is served only when the server runs with ``enable_faults`` (``--enable-faults``):
:data:`faults_router` is then included by :func:`~videoinfer_server.app.create_app`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from videoinfer_contract.redaction import redact
from videoinfer_server.fault_injection import Fault
from videoinfer_server.routes.common import ApiError, Authenticated, json_body, route
from videoinfer_server.runtime import ServerRuntime
from videoinfer_server.store import Job

router = APIRouter()
faults_router = APIRouter()


@route(router, "/models", ["GET"])
async def models(runtime: Authenticated) -> dict[str, Any]:
    """``GET /models``: the models jobs may ask for."""
    return {"models": runtime.registry.describe()}


@route(router, "/_jobs", ["GET"])
async def jobs(runtime: Authenticated) -> dict[str, Any]:
    """``GET /_jobs``: every job received, newest last, without secrets."""
    return {"jobs": [_job_summary(runtime, job) for job in runtime.store.list_jobs()]}


def _job_summary(runtime: ServerRuntime, job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "status": runtime.reported_status(job),
        "state": job.state.value,
        "infer_fps": job.infer_fps,
        "models": job.models,
        "input_url": redact(job.input_url, runtime.config.api_key),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "frames": job.frames,
        "error": job.error,
    }


@route(faults_router, "/_faults", ["POST"])
async def add_fault(request: Request, runtime: Authenticated) -> dict[str, Any]:
    """``POST /_faults``: arm a fault for the next requests to an endpoint (see :mod:`..faults`)."""
    try:
        endpoint, fault = Fault.from_body(await json_body(request))
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    runtime.faults.add(endpoint, fault)
    return {"ok": True}


@route(faults_router, "/_requests", ["GET"])
async def seen_requests(runtime: Authenticated, endpoint: str | None = None) -> dict[str, Any]:
    """``GET /_requests[?endpoint=status]``: when each request to a named endpoint arrived (UNIX seconds),
    and how many requests each endpoint received (``requests``, by the names of
    :data:`~videoinfer_server.fault_injection.ENDPOINTS`), for tests that wait for requests."""
    return {"times": runtime.faults.seen(endpoint), "requests": runtime.faults.counts()}


@route(faults_router, "/_faults", ["DELETE"])
async def clear_faults(runtime: Authenticated) -> dict[str, Any]:
    """``DELETE /_faults``: disarm every fault."""
    runtime.faults.clear()
    return {"ok": True}


@route(faults_router, "/_faults/jobs/{job_id}", ["POST"])
async def fail_job(request: Request, runtime: Authenticated, job_id: str) -> dict[str, Any]:
    """``POST /_faults/jobs/{job_id}``: make a job fail with ``status`` and ``error`` when it ends."""
    body = await json_body(request)
    code, error = body.get("status", 2), body.get("error", "injected failure")
    if isinstance(code, bool) or not isinstance(code, int) or code < 2:
        raise ApiError(400, f"status must be an integer above 1, got {code!r}")
    if not runtime.store.force_failure(job_id, code, str(error)):
        raise ApiError(404, f"no job {job_id}")
    return {"ok": True}

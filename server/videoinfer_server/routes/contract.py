"""The hosted Video Inference API's routes, and the signed upload and result URLs they hand out.

Every contract path is served with and without its trailing slash, never redirected. Request
bodies are validated by the same functions of :mod:`videoinfer_contract.validation` that the
provider runs before its calls, so both refuse the same input with the same message.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.jobs import JobRequest
from videoinfer_contract.redaction import redact
from videoinfer_contract.validation import validate_job_id, validate_video_file_name
from videoinfer_server.inputs import RemoteInput, UploadInput, classify_input
from videoinfer_server.routes.common import (
    ApiError,
    Authenticated,
    Runtime,
    base_url,
    json_body,
    receive_file,
    route,
    verify_signed_url,
)
from videoinfer_server.runtime import ServerRuntime
from videoinfer_server.store import Job, JobStatus

log = logging.getLogger(__name__)

router = APIRouter()

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(file_name: str, ext: str) -> str:
    """A display name for a URL: the last path segment, only ``[A-Za-z0-9._-]``, never ``..``."""
    base = re.split(r"[/\\]", file_name)[-1]
    stem = _SAFE_NAME.sub("_", PurePosixPath(base).stem).strip("._")[:80] or "video"
    return f"{stem}.{ext}"


@router.get("/")
async def workspace(runtime: Authenticated) -> dict[str, Any]:
    """``GET /``: the workspace, to test a connection."""
    return {"workspace": runtime.config.workspace}


@route(router, "/video_upload_signed_url", ["POST"])
async def upload_url(request: Request, runtime: Authenticated) -> dict[str, Any]:
    """``POST /video_upload_signed_url``: a signed URL for one ``PUT`` of the video."""
    body = await json_body(request)
    try:
        file_name = validate_video_file_name(body.get("file_name"))
    except InvalidInputError as err:
        raise ApiError(400, str(err)) from None
    ext = PurePosixPath(file_name).suffix.lstrip(".").lower()
    upload_id = uuid.uuid4().hex
    runtime.store.add_upload(upload_id, file_name[:300], ext)
    path = f"/uploads/{upload_id}/{safe_file_name(file_name, ext)}"
    signed = runtime.signer.sign(path, runtime.config.upload_url_seconds)
    return {"signed_url": base_url(runtime, request) + signed}


@router.put("/uploads/{upload_id}/{name}")
async def upload(request: Request, runtime: Runtime, upload_id: str) -> Response:
    """``PUT`` to a signed upload URL: stream the video to disk, at most ``max_upload_bytes``."""
    verify_signed_url(runtime, request)
    record = runtime.store.get_upload(upload_id)
    if record is None:
        raise ApiError(404, "this upload URL is unknown or was deleted after the retention period")
    final = runtime.paths.upload(upload_id, record.ext)
    total = await receive_file(request, final, runtime.config.max_upload_bytes)
    if total is None:
        log.info("upload %s: the client disconnected", upload_id)
        return Response(status_code=400)
    runtime.store.mark_uploaded(upload_id, total)
    return Response(status_code=200)


@route(router, "/videoinfer", ["POST"])
async def submit(request: Request, runtime: Authenticated) -> dict[str, Any]:
    """``POST /videoinfer``: validate the job, record it and queue it."""
    body = await json_body(request)
    try:
        job = JobRequest.build(body.get("input_url"), body.get("infer_fps"), body.get("models"))
    except InvalidInputError as err:
        raise ApiError(400, str(err)) from None
    input_url, infer_fps, specs = job.input_url, job.infer_fps, job.models
    try:
        source = classify_input(input_url, runtime.signer)
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    if isinstance(source, RemoteInput) and not runtime.config.allow_remote_urls:
        raise ApiError(
            400,
            f"input_url {redact(input_url)!r} is not an upload URL of this server, and this local "
            "server does not fetch remote URLs: upload the video first (POST /video_upload_signed_url), "
            "or start the server with --allow-remote-urls",
        )
    if isinstance(source, UploadInput) and runtime.store.get_upload(source.upload_id) is None:
        raise ApiError(400, "input_url is an upload URL whose upload was deleted after the retention period")
    job_id = str(uuid.uuid4())
    runtime.store.add_job(job_id, input_url, infer_fps, [spec.to_payload() for spec in specs])
    runtime.runner.submit(job_id)
    return {"job_id": job_id, "message": f"job {job_id} scheduled; poll GET /videoinfer?job_id={job_id}"}


@route(router, "/videoinfer", ["GET"])
async def status(request: Request, runtime: Authenticated) -> dict[str, Any]:
    """``GET /videoinfer?job_id=...``: the job's ``status`` (0 done, 1 running, above 1 failed)."""
    try:
        job_id = validate_job_id(request.query_params.get("job_id"))
    except InvalidInputError as err:
        raise ApiError(400, str(err)) from None
    job = runtime.store.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id} on this server (jobs are deleted after the retention period)")
    wait = runtime.polls.check(job_id)
    if wait > 0:
        raise ApiError(
            429,
            f"job {job_id} polled too often: at most once every {runtime.config.poll_min_interval:g} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return _status_body(runtime, job, request)


def _status_body(runtime: ServerRuntime, job: Job, request: Request) -> dict[str, Any]:
    code = runtime.reported_status(job)
    answer: dict[str, Any] = {"job_id": job.job_id, "status": code}
    if code == 0:
        signed = runtime.signer.sign(f"/results/{job.job_id}", runtime.config.result_url_seconds)
        answer["output_signed_url"] = base_url(runtime, request) + signed
        answer["message"] = "job succeeded"
    elif code == 1:
        answer["message"] = "job queued" if job.state is JobStatus.QUEUED else "job running"
    else:
        answer["error"] = job.error or f"job failed with status {code}"
        answer["message"] = answer["error"]
    return answer


@router.get("/results/{job_id}")
async def result(request: Request, runtime: Runtime, job_id: str) -> Response:
    """``GET`` of a signed result URL: the result file."""
    verify_signed_url(runtime, request)
    path = runtime.paths.result(job_id)
    if not re.fullmatch(r"[0-9a-f-]{36}", job_id) or not path.is_file():
        raise ApiError(404, "no result file for this job (deleted after the retention period?)")
    return FileResponse(path, media_type="application/json")

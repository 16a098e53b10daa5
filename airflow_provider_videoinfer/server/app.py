"""The FastAPI app of the local server: the Video Inference API contract plus test helpers.

Every contract path is served with and without its trailing slash, never redirected.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from airflow_provider_videoinfer.api import (
    VIDEO_EXTENSIONS,
    redact,
    validate_infer_fps,
    validate_input_url,
    validate_job_id,
    validate_models,
)
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.server.config import ServerConfig
from airflow_provider_videoinfer.server.faults import Fault, FaultMiddleware
from airflow_provider_videoinfer.server.inputs import RemoteInput, UploadInput, classify_input, upload_file
from airflow_provider_videoinfer.server.models.registry import ModelRegistry
from airflow_provider_videoinfer.server.runtime import ServerRuntime
from airflow_provider_videoinfer.server.signing import SignatureError
from airflow_provider_videoinfer.server.store import Job

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# After a 413 mid-stream, read (and discard) this much more so the client gets the answer.
_DRAIN_AFTER_REFUSAL = 16 * 1024 * 1024


class ApiError(Exception):
    """An error answer ``{"message": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def safe_file_name(file_name: str, ext: str) -> str:
    """A display name for a URL: the last path segment, only ``[A-Za-z0-9._-]``, never ``..``."""
    base = re.split(r"[/\\]", file_name)[-1]
    stem = _SAFE_NAME.sub("_", PurePosixPath(base).stem).strip("._")[:80] or "video"
    return f"{stem}.{ext}"


def _routes(
    app: FastAPI, path: str, methods: list[str]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler on ``path`` and ``path + "/"``."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        app.add_api_route(path, handler, methods=methods)
        app.add_api_route(path + "/", handler, methods=methods, include_in_schema=False)
        return handler

    return decorate


def create_app(config: ServerConfig, registry: ModelRegistry | None = None) -> FastAPI:
    """Build the app; its lifespan starts and stops the workers.

    :param config: the settings.
    :param registry: the models; built from ``config`` (built-ins, entry points, ``config.models``) when None.
    """
    runtime = ServerRuntime(config, registry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        log.info("local videoinfer server started on data dir %s", config.data_dir)
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="videoinfer local server",
        description="Offline server speaking the Video Inference API.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.add_middleware(FaultMiddleware, faults=runtime.faults)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)

    def authenticate(request: Request) -> None:
        key = request.query_params.get("api_key")
        if not key:
            raise ApiError(401, "missing api_key query parameter")
        if not hmac.compare_digest(key.encode(), config.api_key.encode()):
            raise ApiError(401, "invalid api_key")

    def base_url(request: Request) -> str:
        return config.public_url or str(request.base_url).rstrip("/")

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise ApiError(400, "the request body must be JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def signed_query(request: Request) -> None:
        try:
            runtime.signer.verify(request.url.path, dict(request.query_params))
        except SignatureError as err:
            raise ApiError(403, str(err)) from None

    # -- the contract --------------------------------------------------------------------------

    @app.get("/")
    async def workspace(request: Request) -> dict[str, Any]:
        authenticate(request)
        return {"workspace": config.workspace}

    @_routes(app, "/video_upload_signed_url", ["POST"])
    async def upload_url(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request)
        file_name = body.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            raise ApiError(400, "file_name must be a non-empty string, e.g. 'video.mp4'")
        ext = PurePosixPath(re.split(r"[/\\]", file_name.strip())[-1]).suffix.lstrip(".").lower()
        if ext not in VIDEO_EXTENSIONS:
            raise ApiError(
                400,
                f"unsupported file extension {('.' + ext) if ext else '(none)'} of {file_name!r}: "
                f"use one of {', '.join('.' + e for e in VIDEO_EXTENSIONS)} (any case)",
            )
        upload_id = uuid.uuid4().hex
        runtime.store.add_upload(upload_id, file_name[:300], ext)
        path = f"/uploads/{upload_id}/{safe_file_name(file_name, ext)}"
        return {"signed_url": base_url(request) + runtime.signer.sign(path, config.upload_url_seconds)}

    @app.put("/uploads/{upload_id}/{name}")
    async def upload(request: Request, upload_id: str) -> Response:
        signed_query(request)
        record = runtime.store.get_upload(upload_id)
        if record is None:
            raise ApiError(404, "this upload URL is unknown or was deleted after the retention period")
        limit = config.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the upload is {declared} bytes, above this server's limit of {limit} bytes")
        final = upload_file(runtime.paths.uploads, upload_id, record.ext)
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
            log.info("upload %s: the client disconnected after %d bytes", upload_id, total)
            return Response(status_code=400)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        if total > limit:
            part.unlink(missing_ok=True)
            raise ApiError(413, f"the upload is above this server's limit of {limit} bytes")
        os.replace(part, final)
        runtime.store.mark_uploaded(upload_id, total)
        return Response(status_code=200)

    @_routes(app, "/videoinfer", ["POST"])
    async def submit(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request)
        try:
            input_url = validate_input_url(body.get("input_url"))
            infer_fps = validate_infer_fps(body.get("infer_fps"))
            specs = validate_models(body.get("models"))
        except VideoInferValidationError as err:
            raise ApiError(400, str(err)) from None
        ids = [spec.model_id for spec in specs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ApiError(
                400, f"model_id {', '.join(duplicates)} appears twice: the result has one list per model_id"
            )
        try:
            source = classify_input(input_url, runtime.signer)
        except ValueError as err:
            raise ApiError(400, str(err)) from None
        if isinstance(source, RemoteInput) and not config.allow_remote_urls:
            raise ApiError(
                400,
                f"input_url {redact(input_url)!r} is not an upload URL of this server, and this local "
                "server does not fetch remote URLs: upload the video first (POST /video_upload_signed_url), "
                "or start the server with --allow-remote-urls",
            )
        if isinstance(source, UploadInput) and runtime.store.get_upload(source.upload_id) is None:
            raise ApiError(
                400, "input_url is an upload URL whose upload was deleted after the retention period"
            )
        job_id = str(uuid.uuid4())
        runtime.store.add_job(job_id, input_url, infer_fps, [spec.to_payload() for spec in specs])
        runtime.runner.submit(job_id)
        return {"job_id": job_id, "message": f"job {job_id} scheduled; poll GET /videoinfer?job_id={job_id}"}

    @_routes(app, "/videoinfer", ["GET"])
    async def status(request: Request) -> dict[str, Any]:
        authenticate(request)
        try:
            job_id = validate_job_id(request.query_params.get("job_id"))
        except VideoInferValidationError as err:
            raise ApiError(400, str(err)) from None
        job = runtime.store.get_job(job_id)
        if job is None:
            raise ApiError(
                404, f"no job {job_id} on this server (jobs are deleted after the retention period)"
            )
        wait = runtime.polls.check(job_id)
        if wait > 0:
            raise ApiError(
                429,
                f"job {job_id} polled too often: at most once every {config.poll_min_interval:g} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return status_body(job, request)

    def reported_code(job: Job) -> int:
        if config.min_job_seconds > 0 and time.time() < job.created_at + config.min_job_seconds:
            return 1
        return job.code if job.state.is_terminal else 1

    def status_body(job: Job, request: Request) -> dict[str, Any]:
        code = reported_code(job)
        answer: dict[str, Any] = {"job_id": job.job_id, "status": code}
        if code == 0:
            answer["output_signed_url"] = base_url(request) + runtime.signer.sign(
                f"/results/{job.job_id}", config.result_url_seconds
            )
            answer["message"] = "job succeeded"
        elif code == 1:
            answer["message"] = "job queued" if job.state.value == "queued" else "job running"
        else:
            answer["error"] = job.error or f"job failed with status {code}"
            answer["message"] = answer["error"]
        return answer

    @app.get("/results/{job_id}")
    async def result(request: Request, job_id: str) -> Response:
        signed_query(request)
        path = runtime.paths.result(job_id)
        if not re.fullmatch(r"[0-9a-f-]{36}", job_id) or not path.is_file():
            raise ApiError(404, "no result file for this job (deleted after the retention period?)")
        return FileResponse(path, media_type="application/json")

    # -- local extras --------------------------------------------------------------------------

    @_routes(app, "/models", ["GET"])
    async def models(request: Request) -> dict[str, Any]:
        authenticate(request)
        return {"models": runtime.registry.describe()}

    @_routes(app, "/_jobs", ["GET"])
    async def jobs(request: Request) -> dict[str, Any]:
        authenticate(request)
        return {"jobs": [job_summary(job) for job in runtime.store.list_jobs()]}

    def job_summary(job: Job) -> dict[str, Any]:
        return {
            "job_id": job.job_id,
            "status": reported_code(job),
            "state": job.state.value,
            "infer_fps": job.infer_fps,
            "models": job.models,
            "input_url": redact(job.input_url, config.api_key),
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "attempts": job.attempts,
            "frames": job.frames,
            "error": job.error,
        }

    if config.enable_faults:

        @_routes(app, "/_faults", ["POST"])
        async def add_fault(request: Request) -> dict[str, Any]:
            authenticate(request)
            try:
                endpoint, fault = Fault.from_body(await json_body(request))
            except ValueError as err:
                raise ApiError(400, str(err)) from None
            runtime.faults.add(endpoint, fault)
            return {"ok": True}

        @_routes(app, "/_faults", ["DELETE"])
        async def clear_faults(request: Request) -> dict[str, Any]:
            authenticate(request)
            runtime.faults.clear()
            return {"ok": True}

        @_routes(app, "/_faults/jobs/{job_id}", ["POST"])
        async def fail_job(request: Request, job_id: str) -> dict[str, Any]:
            authenticate(request)
            body = await json_body(request)
            code, error = body.get("status", 2), body.get("error", "injected failure")
            if isinstance(code, bool) or not isinstance(code, int) or code < 2:
                raise ApiError(400, f"status must be an integer above 1, got {code!r}")
            if not runtime.store.force_failure(job_id, code, str(error)):
                raise ApiError(404, f"no job {job_id}")
            return {"ok": True}

    return app

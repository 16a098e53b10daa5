"""Batch Processing jobs: ``/batch-processing/v1/external/{workspace}/jobs...``.

A job's id is the client's; ``POST /jobs/{id}`` again with the same definition answers 200 and
starts nothing, with another definition 409. Stage ids are the stage names (``processing``,
``export``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from videoinfer_contract import batch as contract
from videoinfer_server.batch.http import Service, iso, next_token, page_window
from videoinfer_server.batch.service import BatchRequestError
from videoinfer_server.batch.store import JobRow, StageDoc
from videoinfer_server.routes.common import json_body

router = APIRouter()


def job_json(job: JobRow) -> dict[str, Any]:
    """A job as ``JobMetadata``."""
    return {
        "jobId": job.job_id,
        "name": job.name,
        "jobDefinition": job.definition,
        "currentStage": job.current_stage,
        "plannedStages": list(contract.JOB_STAGES),
        "error": job.error,
        "isTerminal": job.is_terminal,
        "lastNotification": job.notification,
        "createdAt": iso(job.created_at),
        "lastUpdate": iso(job.updated_at),
        "restartParametersOverride": job.overrides,
    }


def _stage_json(stage: StageDoc) -> dict[str, Any]:
    return {
        "processingStageId": stage.name,
        "processingStageName": stage.name,
        "tasksNumber": max(1, len(stage.tasks)),
        "outputBatches": stage.output_batches,
        "startTimestamp": iso(stage.started_at),
        "notification": stage.notification,
        "statusType": stage.status_type,
        "lastEventTimestamp": iso(stage.last_event_at),
    }


@router.post(contract.CREATE_JOB_ENDPOINT[1])
async def create_job(request: Request, service: Service, job_id: str) -> dict[str, Any]:
    """Create and start a job under the client's id; idempotent for the same definition, 409 for another."""
    body = await json_body(request)
    created = service.create_job(job_id, request.query_params.get("name"), body)
    message = "Job started successfully" if created else "Job exists with the same definition; nothing started"
    return {"status": "ok", "jobId": job_id, "message": message}


@router.get(contract.LIST_JOBS_ENDPOINT[1])
async def list_jobs(request: Request, service: Service) -> dict[str, Any]:
    """A page of the jobs, oldest first; ``nextPageToken`` is always present (null on the last page)."""
    offset, limit = page_window(request)
    jobs = service.store.list_jobs(offset, limit + 1)
    return {
        "jobs": [job_json(job) for job in jobs[:limit]],
        "nextPageToken": next_token(offset, limit, len(jobs) > limit),
    }


@router.get(contract.JOB_METADATA_ENDPOINT[1])
async def get_job(service: Service, job_id: str) -> dict[str, Any]:
    """A job's metadata."""
    return {"job": job_json(service.job(job_id))}


@router.get(contract.JOB_STAGES_ENDPOINT[1])
async def job_stages(service: Service, job_id: str) -> dict[str, Any]:
    """The stages the job has started (none while queued)."""
    return {"stages": [_stage_json(stage) for stage in service.job(job_id).stages]}


@router.get(contract.STAGE_TASKS_ENDPOINT[1])
async def stage_tasks(request: Request, service: Service, job_id: str, stage_id: str) -> dict[str, Any]:
    """A page of a stage's tasks (one per video); ``nextPageToken`` is always present."""
    job = service.job(job_id)
    stage = next((stage for stage in job.stages if stage.name == stage_id), None)
    if stage is None:
        raise BatchRequestError(404, f"job {job_id!r} has no stage {stage_id!r}: GET its /stages for their ids")
    offset, limit = page_window(request)
    tasks = stage.tasks[offset : offset + limit + 1]
    return {
        "tasks": [
            {
                "taskId": task.task_id,
                "notification": task.notification,
                "statusType": task.status_type,
                "progress": task.progress,
                "eventTimestamp": iso(task.event_at),
            }
            for task in tasks[:limit]
        ],
        "nextPageToken": next_token(offset, limit, len(tasks) > limit),
    }


@router.get(contract.JOB_LOGS_ENDPOINT[1])
async def job_logs(request: Request, service: Service, job_id: str) -> dict[str, Any]:
    """A page of a job's logs, oldest first, of one ``severity`` when given."""
    service.job(job_id)
    severity = request.query_params.get("severity")
    if severity is not None and severity not in contract.LOG_SEVERITIES:
        raise BatchRequestError(400, f"severity must be one of {', '.join(contract.LOG_SEVERITIES)}, got {severity!r}")
    offset, limit = page_window(request)
    logs = service.store.logs(job_id, severity, offset, limit + 1)
    return {
        "logs": [
            {
                "createdAt": iso(entry.created_at),
                "processingStageId": entry.stage_id,
                "taskId": entry.task_id,
                "severity": entry.severity,
                "reportingModule": entry.module,
                "logType": entry.log_type,
                "payload": entry.payload,
            }
            for entry in logs[:limit]
        ],
        "nextPageToken": next_token(offset, limit, len(logs) > limit),
    }


@router.post(contract.ABORT_JOB_ENDPOINT[1])
async def abort_job(service: Service, job_id: str) -> dict[str, Any]:
    """Abort a job: its tasks stop at their next frame; an ended job is left as it is."""
    return service.abort(job_id)


@router.post(contract.RESTART_JOB_ENDPOINT[1])
async def restart_job(request: Request, service: Service, job_id: str) -> dict[str, Any]:
    """Run an aborted or failed job again, with the body's overrides (``parameters-override-v1``) if any."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise BatchRequestError(400, "the restart body must be JSON (or absent)") from None
    return service.restart(job_id, body)

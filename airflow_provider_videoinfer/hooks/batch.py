"""Roboflow Batch Processing through the ``videoinfer`` connection: :class:`VideoInferBatchHook` (sync)
and :class:`VideoInferBatchAsyncClient` (async, for the trigger).

The second backend of the provider. What both backends share is used as is: the connection's
:class:`~airflow_provider_videoinfer.hooks.settings.ClientSettings`, the transports (key, redaction,
one call's retries), the answers' decoding (:func:`~airflow_provider_videoinfer.hooks.responses.decode_response`)
and the one wait step (:mod:`~airflow_provider_videoinfer.hooks.waiting`, fed by :func:`wait_state`).
What differs lives here and in :mod:`videoinfer_contract.batch` (endpoints, the job body, typed answers,
job states): the workspace in every path, client-chosen job ids, abort and restart, paged listings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, TypeVar

from airflow_provider_videoinfer import storage
from airflow_provider_videoinfer.compat import aget_connection
from airflow_provider_videoinfer.contract import JobState, JobStatus, validate_batch_job_id, validate_staging_batch_id
from airflow_provider_videoinfer.exceptions import (
    VideoInferBatchJobFailedError,
    VideoInferConflictError,
    VideoInferError,
    VideoInferNotFoundError,
    VideoInferResponseError,
    VideoInferTimeoutError,
    VideoInferTransientError,
)
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.settings import ClientSettings
from airflow_provider_videoinfer.hooks.transport import StreamingBody
from airflow_provider_videoinfer.hooks.videoinfer import (
    SINGLE_ATTEMPT,
    VideoInferAsyncClient,
    VideoInferConnectionHook,
    mask_in_logs,
)
from videoinfer_contract import batch as wire
from videoinfer_contract.errors import InvalidAnswerError
from videoinfer_contract.redaction import redact

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Tasks read per page when a wait reads the running stage's progress, and at most this many pages:
#: the progress line is a courtesy, so a stage of a million tasks costs a bounded number of calls.
TASKS_PAGE_SIZE = 500
MAX_PROGRESS_PAGES = 4
#: The codes the shared wait step (and the trigger's event) carry for a batch job that ended failed
#: or aborted: the step reads the Video Inference API's codes (0 succeeded, 1 running, above 1 failed).
FAILED_CODE = 2
ABORTED_CODE = 3


def parsed(parse: Callable[[Any], T], body: Any, what: str) -> T:
    """Read an answer with a parser of :mod:`videoinfer_contract.batch`; an answer that breaks the
    contract becomes the provider's :class:`~airflow_provider_videoinfer.exceptions.VideoInferResponseError`.

    :param parse: a ``parse_*`` function of the contract.
    :param body: the decoded JSON answer.
    :param what: what was asked, named in the message.
    """
    try:
        return parse(body)
    except InvalidAnswerError as err:
        raise VideoInferResponseError(f"{what}: {redact(str(err))}") from None


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a job's current stage is, counted as the CLI counts it.

    :param stage: the stage's name (``processing``, ``export``), None before the first.
    :param tasks: the stage's ``tasksNumber``.
    :param finished: tasks that ended (succeeded or failed).
    :param failed: tasks that ended in error.
    :param fraction: the stage's progress from 0 to 1: an ended task counts whole, a running one
        its ``progress``.
    """

    stage: str | None
    tasks: int = 0
    finished: int = 0
    failed: int = 0
    fraction: float = 0.0

    def describe(self) -> str:
        """One phrase for a log line, e.g. ``stage processing: 3 of 10 tasks done (45%)``."""
        if self.stage is None:
            return "queued (no stage started yet)"
        failed = f", {self.failed} failed" if self.failed else ""
        return f"stage {self.stage}: {self.finished} of {self.tasks} tasks done{failed} ({self.fraction:.0%})"


def job_progress(stage: wire.JobStage | None, tasks: Sequence[wire.JobTask]) -> Progress:
    """The progress of a stage from its tasks (pure).

    :param stage: the running stage (or the last one); None before the first.
    :param tasks: the tasks read of it (possibly only the first pages).
    """
    if stage is None:
        return Progress(None)
    total = max(stage.tasks_number, 1)
    finished = [task for task in tasks if not task.is_running]
    failed = sum(1 for task in finished if wire.STATUS_FAILED in task.status_type.lower())
    running = sum(task.progress or 0.0 for task in tasks if task.is_running)
    fraction = min(1.0, (len(finished) + running) / total)
    return Progress(stage.name, stage.tasks_number, len(finished), failed, fraction)


def current_stage(job: wire.BatchJob, stages: Sequence[wire.JobStage]) -> wire.JobStage | None:
    """The stage a job is at: the one named ``currentStage``, else the last started."""
    named = [stage for stage in stages if stage.name == job.current_stage]
    return named[-1] if named else (stages[-1] if stages else None)


def wait_state(job: wire.BatchJob) -> JobState:
    """The view of a batch job that the shared wait step (:func:`~airflow_provider_videoinfer.hooks.waiting.step`)
    reads: succeeded, failed (an abort included) or still running. Its error is redacted here."""
    state = job.state
    if state is wire.BatchJobState.SUCCEEDED:
        return JobState(job.job_id, JobStatus.SUCCEEDED, 0)
    if state.is_terminal():
        code = ABORTED_CODE if state is wire.BatchJobState.ABORTED else FAILED_CODE
        return JobState(job.job_id, JobStatus.FAILED, code, error=failure_reason(job))
    return JobState(job.job_id, JobStatus.RUNNING, 1)


def state_of_code(code: int | None) -> str:
    """How a job ended, from the code :func:`wait_state` gave it: ``aborted`` or ``failed``."""
    return wire.BatchJobState.ABORTED.value if code == ABORTED_CODE else wire.BatchJobState.FAILED.value


def timeout_message(job_id: str, reason: str) -> str:
    """The message of a wait for a batch job that reached its deadline (the job is then aborted).

    :param job_id: the job.
    :param reason: :attr:`~airflow_provider_videoinfer.hooks.waiting.TimedOut.reason`.
    """
    return (
        f"Batch job {job_id} {reason}, so it was aborted (its machines stop being paid for). Raise wait_timeout, "
        "or max_runtime_seconds if the job needs more machine time."
    )


def failure_reason(job: wire.BatchJob) -> str:
    """Why a job ended in error, as its last notification says (redacted)."""
    note = job.message or (job.last_notification if isinstance(job.last_notification, str) else None)
    if note is None and isinstance(job.last_notification, Mapping):
        note = str(job.last_notification.get("type") or "") or None
    return redact(note) if note else "no reason given by the service"


def job_failed(job: wire.BatchJob) -> VideoInferBatchJobFailedError:
    """The error of a job that ended failed or aborted."""
    return VideoInferBatchJobFailedError(job.job_id, job.state.value, failure_reason(job))


def same_definition(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an existing job's ``jobDefinition`` holds every value of ``wanted`` (the body this
    client would send); keys the service added (defaults) are ignored."""
    for key, value in wanted.items():
        if isinstance(value, Mapping):
            found = existing.get(key)
            if not isinstance(found, Mapping) or not same_definition(found, value):
                return False
        elif existing.get(key) != value:
            return False
    return True


def finish(outcome: waiting.Done | waiting.Failed | waiting.TimedOut, last: wire.BatchJob | None) -> wire.BatchJob:
    """The job of a wait that ended; raise for a failed or aborted job, a definite error or the deadline.

    :param outcome: what :func:`~airflow_provider_videoinfer.hooks.waiting.step` decided last.
    :param last: the job as last read.
    :raises VideoInferBatchJobFailedError: the job ended failed or aborted.
    :raises VideoInferTimeoutError: the deadline passed (the caller aborts the job).
    """
    if isinstance(outcome, waiting.TimedOut):
        raise VideoInferTimeoutError(timeout_message(outcome.job_id, outcome.reason))
    if isinstance(outcome, waiting.Failed):
        if outcome.state is not None and last is not None:
            raise job_failed(last)
        raise outcome.error
    if last is None:  # pragma: no cover -- Done comes only from a job read
        raise VideoInferResponseError(f"batch job {outcome.job_id}: the wait ended without reading the job.")
    return last


def log_poll(
    log: Any, outcome: waiting.Outcome, now: float, progress: Progress | None, *, deferring: bool = False
) -> None:
    """Log what a step decided, with the job's stage and progress while it runs.

    :param log: the task's, the trigger's or the hook's logger.
    :param outcome: what the step decided.
    :param now: the step's ``now``.
    :param progress: the job's progress, read when it runs.
    :param deferring: see :func:`~airflow_provider_videoinfer.hooks.waiting.report`.
    """
    if isinstance(outcome, waiting.PollAgain) and outcome.reason is waiting.Reason.RUNNING and progress is not None:
        if outcome.recovered is not None:
            waiting.report(
                log, dataclasses.replace(outcome, reason=waiting.Reason.FIRST, delay=0.0), now, deferring=True
            )
        log.info(
            "Batch job %s is running, %s; next poll in %s.",
            outcome.job_id,
            progress.describe(),
            waiting.duration(outcome.delay),
        )
        return
    waiting.report(log, outcome, now, deferring=deferring)


class VideoInferBatchHook(VideoInferConnectionHook):
    """Talk to Roboflow Batch Processing (hosted, or the local server) through the ``videoinfer`` connection.

    The same connection as :class:`~airflow_provider_videoinfer.hooks.videoinfer.VideoInferHook`:
    password = API key, host = base URL, the same extra. The workspace (in every path) is read once
    from ``GET /`` and kept. One short method per endpoint; listings follow ``nextPageToken``.

    :param videoinfer_conn_id: the Airflow connection of type ``videoinfer``.
    """

    hook_name = "Video Inference (Batch Processing)"

    @cached_property
    def workspace(self) -> str:
        """The key's workspace, read once from ``GET /``."""
        body = self.transport.call(wire.WORKSPACE_ENDPOINT, "workspace of the API key")
        return parsed(wire.parse_workspace, body, "workspace of the API key")

    def _call(
        self,
        endpoint: tuple[str, str],
        what: str,
        *,
        fields: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        policy: RetryPolicy | None = None,
    ) -> Any:
        path = wire.endpoint_path(endpoint, workspace=self.workspace, **(fields or {}))
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        return self.transport.call(
            (endpoint[0], path), what, params=query, json_body=json_body, idempotent=idempotent, policy=policy
        )

    def _pages(
        self,
        endpoint: tuple[str, str],
        what: str,
        parse: Callable[[Any], wire.Page[T]],
        fields: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        max_pages: int | None = None,
        policy: RetryPolicy | None = None,
    ) -> Iterator[T]:
        token: str | None = None
        pages = 0
        while True:
            query = {**(params or {}), "nextPageToken": token}
            body = self._call(endpoint, what, fields=fields, params=query, policy=policy)
            page = parsed(parse, body, what)
            yield from page.items
            pages += 1
            token = page.next_page_token
            if token is None or (max_pages is not None and pages >= max_pages):
                return

    # ---- Data Staging ------------------------------------------------------------------------

    def get_batch(self, batch_id: str) -> wire.StagingBatch | None:
        """A staging batch's metadata; None when the service does not know it (404).

        :param batch_id: the batch.
        """
        batch_id = validate_staging_batch_id(batch_id)
        what = f"metadata of batch {batch_id}"
        try:
            body = self._call(wire.BATCH_METADATA_ENDPOINT, what, fields={"batch_id": batch_id})
        except VideoInferNotFoundError:
            return None
        return parsed(wire.parse_batch, body, what)

    def list_batches(self, page_size: int | None = None) -> Iterator[wire.StagingBatch]:
        """Every staging batch of the workspace, inputs and job outputs alike (all pages).

        :param page_size: entries per page; None for the service's default.
        """
        return self._pages(
            wire.LIST_BATCHES_ENDPOINT, "list of batches", wire.parse_batches_page, {}, {"pageSize": page_size}
        )

    def count(self, batch_id: str, part_name: str | None = None, *, policy: RetryPolicy | None = None) -> int:
        """How many files a batch (or one part of it) holds; 0 for a batch the service does not know.

        :param batch_id: the batch.
        :param part_name: a part of a multipart batch; None for the whole batch.
        :param policy: the retry policy of this call; default the connection's.
        """
        batch_id = validate_staging_batch_id(batch_id)
        what = f"count of batch {batch_id}"
        try:
            body = self._call(
                wire.BATCH_COUNT_ENDPOINT,
                what,
                fields={"batch_id": batch_id},
                params={"partName": part_name},
                policy=policy,
            )
        except VideoInferNotFoundError:
            return 0
        return parsed(wire.parse_count, body, what)

    def list_parts(self, batch_id: str) -> tuple[wire.BatchPart, ...]:
        """The parts of a multipart batch (a job's output batch).

        :param batch_id: the batch.
        """
        batch_id = validate_staging_batch_id(batch_id)
        what = f"parts of batch {batch_id}"
        body = self._call(wire.BATCH_PARTS_ENDPOINT, what, fields={"batch_id": batch_id})
        return parsed(wire.parse_parts, body, what)

    def list_files(self, batch_id: str, part_name: str | None = None) -> Iterator[wire.StagedFile]:
        """Every file of a batch (or of one part), with its signed download URL (all pages).

        :param batch_id: the batch.
        :param part_name: a part of a multipart batch; None for a simple or sharded batch.
        """
        batch_id = validate_staging_batch_id(batch_id)
        what = f"files of batch {batch_id}" + (f" part {part_name}" if part_name else "")
        return self._pages(
            wire.BATCH_LIST_ENDPOINT, what, wire.parse_files_page, {"batch_id": batch_id}, {"partName": part_name}
        )

    def upload_video(
        self,
        batch_id: str,
        source: str | os.PathLike[str] | ObjectStoragePath,
        file_name: str,
        display_name: str | None = None,
    ) -> None:
        """Stage one video by signed-URL upload: ask for the URL, then ``PUT`` the bytes, streamed.

        :param batch_id: the staging batch (created by its first upload).
        :param source: a local path or storage URI; its bytes go through the worker.
        :param file_name: the name the video gets in the batch.
        :param display_name: the batch's display name; default its id.
        """
        batch_id = validate_staging_batch_id(batch_id)
        opener, size, _ = storage.open_video_source(source)
        what = f"upload URL for {file_name!r} in batch {batch_id}"
        body = self._call(
            wire.UPLOAD_VIDEO_ENDPOINT,
            what,
            fields={"batch_id": batch_id},
            params={"fileName": file_name, "displayName": display_name or batch_id},
        )
        url, headers = parsed(wire.parse_upload_details, body, what)
        mask_in_logs(url)
        put = f"upload of {file_name!r} ({size} bytes) to batch {batch_id}"
        data = StreamingBody(opener, size)
        timeout = (self.settings.connect_timeout, self.settings.transfer_timeout)
        transport = self.transport
        transport.retrying(
            lambda: transport.send(
                "PUT", url, put, signed_url=True, data=data, headers=headers, timeout=timeout
            ).close()
        )

    def register_video_references(
        self,
        batch_id: str,
        references: Sequence[tuple[str, str]],
        *,
        ingest_id: str,
        display_name: str | None = None,
    ) -> tuple[str, bool]:
        """Stage videos by reference: the service reads each from its signed URL (nothing crosses the worker).

        Sent again as is when the answer is lost: the same ``ingest_id`` lets the service deduplicate it.

        :param batch_id: the staging batch.
        :param references: ``(name, signed_url)`` of each video; the URLs are credentials, never logged.
        :param ingest_id: the client's label of this ingest.
        :param display_name: the batch's display name; default its id.
        :return: ``(ingestId, duplicated)`` as answered.
        """
        batch_id = validate_staging_batch_id(batch_id)
        what = f"registration of {len(references)} video reference(s) in batch {batch_id}"
        for _, url in references:
            mask_in_logs(url)
        body = {"videoReferences": [{"name": name, "url": url} for name, url in references], "ingestId": ingest_id}
        answer = self._call(
            wire.VIDEO_REFERENCES_ENDPOINT,
            what,
            fields={"batch_id": batch_id},
            params={"displayName": display_name or batch_id},
            json_body=body,
        )
        return parsed(wire.parse_ingest, answer, what)

    def download_file(self, file: wire.StagedFile, out: IO[bytes]) -> None:
        """Stream one staged file from its signed URL to ``out`` (one attempt; the caller retries whole files).

        :param file: an entry of :meth:`list_files`.
        :param out: a binary file open for writing.
        """
        what = f"download of {file.file_name!r}"
        timeout = (self.settings.connect_timeout, self.settings.transfer_timeout)
        response = self.transport.send("GET", file.download_url, what, signed_url=True, stream=True, timeout=timeout)
        with response:
            self.transport.copy(response, out, what)

    # ---- Batch Processing --------------------------------------------------------------------

    def get_job(self, job_id: str, *, policy: RetryPolicy | None = None) -> wire.BatchJob:
        """A job's metadata.

        :param job_id: the job.
        :param policy: the retry policy of this call; default the connection's.
        """
        job_id = validate_batch_job_id(job_id)
        what = f"batch job {job_id}"
        body = self._call(wire.JOB_METADATA_ENDPOINT, what, fields={"job_id": job_id}, policy=policy)
        return parsed(wire.parse_job, body, what)

    def find_job(self, job_id: str) -> wire.BatchJob | None:
        """A job's metadata; None when the service does not know the id (404).

        :param job_id: the job.
        """
        try:
            return self.get_job(job_id)
        except VideoInferNotFoundError:
            return None

    def list_jobs(self, page_size: int | None = None) -> Iterator[wire.BatchJob]:
        """Every job of the workspace (all pages).

        :param page_size: entries per page; None for the service's default.
        """
        return self._pages(
            wire.LIST_JOBS_ENDPOINT, "list of batch jobs", wire.parse_jobs_page, {}, {"pageSize": page_size}
        )

    def create_job(self, job_id: str, definition: wire.VideoJobDefinition, name: str | None = None) -> wire.BatchJob:
        """Create job ``job_id`` once and return it; never pays twice.

        The job id is the client's, so the job is read (``GET``) before any ``POST``: a job that
        exists with this definition is returned as is. A ``POST`` is never sent again blindly: when
        its answer is lost (a dropped connection, a timeout, a 5xx), the job is read again first,
        and a new ``POST`` goes out only when the service does not know the id.

        :param job_id: the client-chosen id (``[a-z0-9_-]``, at most 20 characters).
        :param definition: the job body, from :func:`~airflow_provider_videoinfer.contract.build_batch_job_definition`.
        :param name: the job's display name; default its id.
        :raises VideoInferConflictError: the id exists with another definition (fatal).
        """
        job_id = validate_batch_job_id(job_id)
        body = definition.to_payload()
        what = f"creation of batch job {job_id}"
        lost: VideoInferTransientError | None = None
        for _ in range(self.settings.retry.max_attempts):
            existing = self.find_job(job_id)
            if existing is not None:
                if not same_definition(existing.definition, body):
                    raise self._conflict(job_id)
                if lost is not None:
                    self.log.info(
                        "Batch job %s exists: the creation's lost answer is resolved, nothing is sent again.", job_id
                    )
                return existing
            try:
                self._call(
                    wire.CREATE_JOB_ENDPOINT,
                    what,
                    fields={"job_id": job_id},
                    params={"name": name or job_id},
                    json_body=body,
                    idempotent=False,
                )
            except VideoInferConflictError:
                raise self._conflict(job_id) from None
            except VideoInferTransientError as err:
                lost = err
                self.log.warning(
                    "The answer to the creation of batch job %s was lost (%s): reading the job before any new request.",
                    job_id,
                    err,
                )
                continue
            self.log.info(
                "Created batch job %s (workflow %s, batch %s).", job_id, definition.workflow_id, definition.batch_id
            )
            return self.get_job(job_id)
        raise VideoInferTransientError(
            f"{what}: no answer after {self.settings.retry.max_attempts} attempts (last: {lost}). The job may exist: "
            "a retry of the task reads it first and never creates a second one."
        )

    @staticmethod
    def _conflict(job_id: str) -> VideoInferConflictError:
        return VideoInferConflictError(
            f"Batch job {job_id} already exists with another definition (HTTP 409 or a different jobDefinition): "
            "nothing was created. Clear the task to run it under a new job id, or wait for that job with "
            f"VideoInferBatchJobSensor(job_id={job_id!r})."
        )

    def job_stages(self, job_id: str, *, policy: RetryPolicy | None = None) -> tuple[wire.JobStage, ...]:
        """A job's stages, in the order they started.

        :param job_id: the job.
        :param policy: the retry policy of this call; default the connection's.
        """
        job_id = validate_batch_job_id(job_id)
        what = f"stages of batch job {job_id}"
        body = self._call(wire.JOB_STAGES_ENDPOINT, what, fields={"job_id": job_id}, policy=policy)
        return parsed(wire.parse_stages, body, what)

    def stage_tasks(
        self, job_id: str, stage_id: str, *, max_pages: int | None = None, policy: RetryPolicy | None = None
    ) -> Iterator[wire.JobTask]:
        """The tasks of one stage (one per video), following pages.

        :param job_id: the job.
        :param stage_id: the stage's ``processingStageId``.
        :param max_pages: read at most this many pages; None for all.
        :param policy: the retry policy of each page's call; default the connection's.
        """
        job_id = validate_batch_job_id(job_id)
        return self._pages(
            wire.STAGE_TASKS_ENDPOINT,
            f"tasks of stage {stage_id} of batch job {job_id}",
            wire.parse_tasks_page,
            {"job_id": job_id, "stage_id": stage_id},
            {"pageSize": TASKS_PAGE_SIZE},
            max_pages,
            policy,
        )

    def job_logs(self, job_id: str, severity: str | None = None) -> Iterator[wire.JobLogEntry]:
        """A job's log entries (all pages).

        :param job_id: the job.
        :param severity: ``info``, ``warning`` or ``error``; None for all.
        """
        job_id = validate_batch_job_id(job_id)
        return self._pages(
            wire.JOB_LOGS_ENDPOINT,
            f"logs of batch job {job_id}",
            wire.parse_logs_page,
            {"job_id": job_id},
            {"severity": severity},
        )

    def abort_job(self, job_id: str) -> None:
        """Abort a job: its machines stop, and stop being paid for.

        :param job_id: the job.
        """
        job_id = validate_batch_job_id(job_id)
        self._call(wire.ABORT_JOB_ENDPOINT, f"abort of batch job {job_id}", fields={"job_id": job_id})

    def restart_job(self, job_id: str, overrides: wire.RestartOverride | None = None) -> None:
        """Restart a failed or aborted job (its work is paid for again).

        :param job_id: the job.
        :param overrides: what the restart changes (a new runtime cap...); None sends no body, as the CLI.
        """
        job_id = validate_batch_job_id(job_id)
        body = overrides.to_payload() if overrides is not None else None
        self._call(
            wire.RESTART_JOB_ENDPOINT,
            f"restart of batch job {job_id}",
            fields={"job_id": job_id},
            json_body=body,
            idempotent=False,
        )

    def progress(self, job: wire.BatchJob) -> Progress:
        """How far a job is (its current stage's tasks), read with single attempts; a courtesy for the logs.

        :param job: the job as last read.
        """
        if job.current_stage is None and not job.is_terminal:
            return Progress(None)
        stages = self.job_stages(job.job_id, policy=SINGLE_ATTEMPT)
        stage = current_stage(job, stages)
        tasks = (
            []
            if stage is None
            else list(self.stage_tasks(job.job_id, stage.stage_id, max_pages=MAX_PROGRESS_PAGES, policy=SINGLE_ATTEMPT))
        )
        return job_progress(stage, tasks)

    def poll_job(self, job_id: str) -> wire.BatchJob | VideoInferError:
        """One poll of a wait: a single attempt (the wait paces the next), its error returned, not raised.

        :param job_id: the job.
        """
        try:
            return self.get_job(job_id, policy=SINGLE_ATTEMPT)
        except VideoInferError as err:
            return err

    def safe_progress(self, job: wire.BatchJob) -> Progress | None:
        """:meth:`progress`, or None when it cannot be read (the wait goes on without it)."""
        try:
            return self.progress(job)
        except VideoInferError as err:
            self.log.debug("Could not read the progress of batch job %s: %s", job.job_id, err)
            return None

    def wait_for_job(self, job_id: str, poll_interval: float, timeout: float | None) -> wire.BatchJob:
        """Poll a job in this process until it stops; log its stage and progress while it runs.

        Each poll is one attempt and :func:`~airflow_provider_videoinfer.hooks.waiting.step` decides
        what follows, so outages are ridden out until the deadline, as for the video waits.

        :param job_id: the job.
        :param poll_interval: seconds between polls while the job runs.
        :param timeout: seconds to wait at most; None waits as long as the job runs.
        :raises VideoInferBatchJobFailedError: the job ended failed or aborted.
        :raises VideoInferTimeoutError: the deadline passed (the job still runs: the caller aborts it).
        """
        started = time.time()
        deadline = None if timeout is None else started + timeout
        wait = waiting.Wait(job_id, poll_interval, started, deadline, self.settings.retry)
        outage: waiting.Outage | None = None
        last: wire.BatchJob | None = None
        while True:
            poll = self.poll_job(job_id)
            now = time.time()
            if isinstance(poll, wire.BatchJob):
                last = poll
            outcome = waiting.step(
                wait, outage, wait_state(poll) if isinstance(poll, wire.BatchJob) else poll, now, random.random()
            )
            running = isinstance(outcome, waiting.PollAgain) and outcome.reason is waiting.Reason.RUNNING
            log_poll(self.log, outcome, now, self.safe_progress(last) if running and last is not None else None)
            if not isinstance(outcome, waiting.PollAgain):
                return finish(outcome, last)
            outage = outcome.outage
            time.sleep(outcome.delay)


class VideoInferBatchAsyncClient(VideoInferAsyncClient):
    """The async transport of the batch trigger: reads a job, its progress, and aborts it.

    Shares the connection pools of :class:`~airflow_provider_videoinfer.hooks.videoinfer.VideoInferAsyncClient`
    (one per event loop and connection settings). The workspace is read once per client.

    :param settings: as read from the connection.
    :param share_pool: use the shared pool of the running loop (default).
    """

    _workspace: str | None = None

    @classmethod
    async def from_conn_id(cls, conn_id: str) -> VideoInferBatchAsyncClient:
        """Build a client from an Airflow connection, without blocking the event loop."""
        conn = await aget_connection(conn_id)
        return cls(ClientSettings.from_connection(conn))

    async def _call(
        self,
        endpoint: tuple[str, str],
        what: str,
        fields: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        policy: RetryPolicy | None = None,
    ) -> Any:
        settings = self.settings
        if endpoint == wire.WORKSPACE_ENDPOINT:
            url = settings.base_url + endpoint[1]
        else:
            url = settings.base_url + wire.endpoint_path(endpoint, workspace=await self.workspace(), **(fields or {}))
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        return await self.call(endpoint[0], url, what, query, policy=policy)

    async def workspace(self) -> str:
        """The key's workspace, read once per client from ``GET /``."""
        if self._workspace is None:
            body = await self._call(wire.WORKSPACE_ENDPOINT, "workspace of the API key")
            self._workspace = parsed(wire.parse_workspace, body, "workspace of the API key")
        return self._workspace

    async def get_batch_job(self, job_id: str, *, policy: RetryPolicy | None = None) -> wire.BatchJob:
        """A job's metadata (same contract and retries as the sync hook).

        :param job_id: the job.
        :param policy: the retry policy of this call; default the connection's.
        """
        what = f"batch job {job_id}"
        body = await self._call(wire.JOB_METADATA_ENDPOINT, what, {"job_id": job_id}, policy=policy)
        return parsed(wire.parse_job, body, what)

    async def poll_batch_job(self, job_id: str) -> wire.BatchJob | VideoInferError:
        """One poll of a wait: a single attempt, its error returned, not raised.

        :param job_id: the job.
        """
        try:
            return await self.get_batch_job(job_id, policy=SINGLE_ATTEMPT)
        except VideoInferError as err:
            return err

    async def poll_count(self, batch_id: str) -> int | VideoInferError:
        """One poll of the wait for a batch's videos: its count (0 for a batch the service does not know),
        in a single attempt, its error returned, not raised.

        :param batch_id: the batch.
        """
        what = f"count of batch {batch_id}"
        try:
            body = await self._call(wire.BATCH_COUNT_ENDPOINT, what, {"batch_id": batch_id}, policy=SINGLE_ATTEMPT)
            return parsed(wire.parse_count, body, what)
        except VideoInferNotFoundError:
            return 0
        except VideoInferError as err:
            return err

    async def progress(self, job: wire.BatchJob) -> Progress:
        """How far a job is (see :meth:`VideoInferBatchHook.progress`), with single attempts.

        :param job: the job as last read.
        """
        if job.current_stage is None and not job.is_terminal:
            return Progress(None)
        what = f"stages of batch job {job.job_id}"
        stages = parsed(
            wire.parse_stages,
            await self._call(wire.JOB_STAGES_ENDPOINT, what, {"job_id": job.job_id}, policy=SINGLE_ATTEMPT),
            what,
        )
        stage = current_stage(job, stages)
        tasks: list[wire.JobTask] = []
        if stage is not None:
            async for task in self._tasks(job.job_id, stage.stage_id):
                tasks.append(task)
        return job_progress(stage, tasks)

    async def _tasks(self, job_id: str, stage_id: str) -> AsyncIterator[wire.JobTask]:
        what = f"tasks of stage {stage_id} of batch job {job_id}"
        token: str | None = None
        for _ in range(MAX_PROGRESS_PAGES):
            params = {"pageSize": TASKS_PAGE_SIZE, "nextPageToken": token}
            body = await self._call(
                wire.STAGE_TASKS_ENDPOINT, what, {"job_id": job_id, "stage_id": stage_id}, params, policy=SINGLE_ATTEMPT
            )
            page = parsed(wire.parse_tasks_page, body, what)
            for task in page.items:
                yield task
            token = page.next_page_token
            if token is None:
                return

    async def abort_job(self, job_id: str) -> None:
        """Abort a job (under the connection's retry policy: an abort may be sent again).

        :param job_id: the job.
        """
        await self._call(wire.ABORT_JOB_ENDPOINT, f"abort of batch job {job_id}", {"job_id": job_id})

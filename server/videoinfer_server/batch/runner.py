"""A Batch Processing job's run: stage ``processing`` (one task per video), then stage ``export``.

Each task samples its video at ``maxVideoFPS`` (every frame without it) with the server's frame
sampling (:mod:`videoinfer_server.frames`), runs the Workflow's models on each sampled frame and
writes one row per frame (:data:`videoinfer_contract.batch.ROW_COLUMNS`, then one column per
model) to ``<video file name>.csv`` or ``.jsonl`` in part ``results`` of ``<job>-processing``.
The export stage packs those files into ``results.tar.gz`` in part ``archives`` of ``<job>-export``.

Stops: an abort (the job is already marked aborted; the tasks stop at their next frame), the
cumulative runtime cap (the time of every task added up, checked at every frame; the job ends
failed), and the server stopping (the job stays running and runs again from the start at the next
start, as video jobs do).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from videoinfer_contract import batch as contract
from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.redaction import redact
from videoinfer_contract.results import encode_frame_result
from videoinfer_server.batch.store import (
    ABORTED,
    FAILED,
    QUEUED,
    READY,
    RUNNING,
    SUCCEEDED,
    BatchStore,
    FileRow,
    StageDoc,
    TaskDoc,
)
from videoinfer_server.batch.workflows import WorkflowOutput, resolve_workflow
from videoinfer_server.config import ServerConfig
from videoinfer_server.frames import Interrupted, VideoReader, exact_fps
from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.models.base import VideoContext, VideoFrame
from videoinfer_server.models.registry import ModelRegistry
from videoinfer_server.queue_workers import QueueWorkers

log = logging.getLogger(__name__)

#: How often, at most, a running task writes its progress to the store.
_PROGRESS_EVERY_SECONDS = 0.25
#: What a job's ``lastNotification`` says when it is aborted (its "type" marks it, see the contract).
ABORT_NOTIFICATION_TYPE = "job-aborted"
CAP_NOTIFICATION_TYPE = "job-runtime-cap-reached"


class JobAborted(Exception):
    """The job was aborted; the abort already recorded its state."""


class CapReached(Exception):
    """The job's cumulative runtime reached ``processingTimeoutSeconds``."""


class JobFailed(Exception):
    """The job cannot run (no videos, unknown Workflow); the message says why and what to do."""


class RuntimeBudget:
    """The cumulative runtime of a job's tasks (their times added up, as machines are billed) against its cap.

    :param cap: ``processingTimeoutSeconds``; None for no cap.
    """

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._finished = 0.0
        self._running: dict[int, float] = {}
        self._next = 0

    def start(self) -> int:
        """A task starts; return its token."""
        with self._lock:
            self._next += 1
            self._running[self._next] = time.monotonic()
            return self._next

    def stop(self, token: int) -> None:
        """A task ends."""
        with self._lock:
            started = self._running.pop(token, None)
            if started is not None:
                self._finished += time.monotonic() - started

    def used(self) -> float:
        """Seconds used so far by ended and running tasks."""
        now = time.monotonic()
        with self._lock:
            return self._finished + sum(now - started for started in self._running.values())

    def exceeded(self) -> bool:
        """Whether the cap is reached."""
        return self.cap is not None and self.used() >= self.cap


@dataclass
class JobRun:
    """One run of a job, shared by its tasks.

    :param job_id: the job.
    :param definition: its (validated) definition.
    :param budget: its runtime budget.
    :param parallel: how many tasks run at once.
    """

    job_id: str
    definition: contract.VideoJobDefinition
    budget: RuntimeBudget
    parallel: int
    stages: list[StageDoc] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    abort: threading.Event = field(default_factory=threading.Event)
    cap_hit: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def check(self, server_stop: threading.Event) -> None:
        """Raise when the run must stop: the server stops, the job was aborted, or its cap is reached."""
        if server_stop.is_set():
            raise Interrupted()
        if self.abort.is_set():
            raise JobAborted()
        if self.cap_hit.is_set() or self.budget.exceeded():
            self.cap_hit.set()
            raise CapReached()


class RowWriter:
    """Rows of one video's results, CSV or JSONL, one per sampled frame.

    :param path: the file to write.
    :param fmt: ``csv`` or ``jsonl``.
    :param outputs: the Workflow's output names, one column each after :data:`ROW_COLUMNS`.
    """

    def __init__(self, path: Path, fmt: str, outputs: list[str]) -> None:
        self._fmt = fmt
        self._outputs = outputs
        self._file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 -- closed by close()
        self._csv = csv.writer(self._file) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow([*contract.ROW_COLUMNS, *outputs])

    def add(self, video: str, frame: VideoFrame, results: list[bytes]) -> None:
        """Write one frame's row; ``results`` are the outputs' values as JSON, in column order."""
        if self._csv is not None:
            self._csv.writerow([video, frame.index, frame.time, *(value.decode() for value in results)])
            return
        head = json.dumps({"video": video, "frame_index": frame.index, "time_offset": frame.time})[:-1]
        fields = "".join(
            f", {json.dumps(name)}: {value.decode()}" for name, value in zip(self._outputs, results, strict=True)
        )
        self._file.write(head + fields + "}\n")

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def frame_count(path: Path) -> int:
    """The number of frames the container declares (0 when unknown), for progress only."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        capture.release()


class BatchRunner:
    """Run Batch Processing jobs on ``config.workers`` threads, each job's tasks on up to ``parallel`` more.

    :param config: the server settings (``workers``, ``batch_frame_delay_seconds``).
    :param store: the batch store.
    :param registry: the models.
    :param file_path: where a stored file's bytes are, from its id and extension.
    :param work_dir: scratch folder for files being written.
    :param notify: posts a job's webhook: ``notify(url, payload)``.
    """

    def __init__(
        self,
        config: ServerConfig,
        store: BatchStore,
        registry: ModelRegistry,
        file_path: Callable[[str, str], Path],
        work_dir: Path,
        notify: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._config = config
        self._store = store
        self._registry = registry
        self._file_path = file_path
        self._work = work_dir
        self._notify = notify
        self._workers = QueueWorkers("videoinfer-batch", config.workers, self.run)
        self._stop = self._workers.stopping
        self._runs: dict[str, JobRun] = {}
        self._runs_lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue again what a stopped server left running or queued, and start the workers."""
        for job in self._store.jobs_in(RUNNING):
            self._store.update_job(job.job_id, state=QUEUED, only_if=(RUNNING,))
        for job in self._store.jobs_in(QUEUED):
            log.info("batch job %s queued again", job.job_id)
            self._workers.submit(job.job_id)
        self._workers.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the workers; running jobs stay running in the store and run again at the next start."""
        self._workers.stop(timeout)

    def submit(self, job_id: str) -> None:
        """Queue a job recorded in the store as queued."""
        self._workers.submit(job_id)

    # -- abort ------------------------------------------------------------------------------------

    def abort(self, job_id: str) -> bool:
        """Mark a queued or running job aborted and stop its tasks; False when it had already ended."""
        job = self._store.get_job(job_id)
        if job is None or job.is_terminal:
            return False
        note = {
            "type": ABORT_NOTIFICATION_TYPE,
            "message": f"job {job_id} was aborted on request; its tasks stopped. Restart it to run it again.",
        }
        with self._runs_lock:
            run = self._runs.get(job_id)
        if run is not None and not run.done.is_set():
            run.abort.set()
            with run.lock:
                _close_stages(run.stages, "aborted")
                ended = self._store.update_job(
                    job_id, state=ABORTED, error=True, notification=note, stages=run.stages, only_if=(QUEUED, RUNNING)
                )
        else:
            stages = job.stages
            _close_stages(stages, "aborted")
            ended = self._store.update_job(
                job_id, state=ABORTED, error=True, notification=note, stages=stages, only_if=(QUEUED, RUNNING)
            )
        if ended:
            self._store.add_log(job_id, "warning", "job-aborted", {"message": note["message"]})
            self._end_notification(job_id, succeeded=False)
        return ended

    # -- one run ----------------------------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """Run one queued job to its end (or until the server stops)."""
        with self._runs_lock:
            previous = self._runs.get(job_id)
        if previous is not None:
            previous.done.wait(60)  # an aborted run's tasks are still stopping
        job = self._store.get_job(job_id)
        if job is None or not self._store.update_job(
            job_id, state=RUNNING, runs=job.runs + 1, stages=[], current_stage=None, only_if=(QUEUED,)
        ):
            return
        try:
            definition = contract.VideoJobDefinition.from_payload(job.definition)
        except InvalidInputError as err:  # checked at creation; only a hand-edited database gets here
            note = {"type": "job-failed", "message": f"the job's definition is invalid: {err}"}
            self._store.update_job(job_id, state=FAILED, error=True, notification=note, only_if=(RUNNING,))
            return
        cap, parallel = definition.processing_timeout_seconds, definition.max_parallel_tasks
        for override in job.overrides:
            cap = override.get("processingTimeoutSeconds", cap)
            parallel = override.get("maxParallelTasks", parallel)
        run = JobRun(job_id, definition, RuntimeBudget(cap), parallel or self._config.workers)
        with self._runs_lock:
            self._runs[job_id] = run
        work = self._work / job_id
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            self._execute(run, work)
        except Interrupted:
            log.info("batch job %s interrupted by shutdown; it runs again at the next start", job_id)
        except JobAborted:
            log.info("batch job %s aborted", job_id)
        except CapReached:
            used = run.budget.used()
            message = (
                f"job {job_id} reached its cap of processingTimeoutSeconds={cap} s of cumulative runtime "
                f"(used {used:.1f} s across its tasks) and was stopped; its results are incomplete. Restart it "
                "with a higher processingTimeoutSeconds (or a lower maxVideoFPS) to run it in full."
            )
            self._fail(run, CAP_NOTIFICATION_TYPE, message, {"processingTimeoutSeconds": cap, "usedSeconds": used})
        except JobFailed as err:
            self._fail(run, "job-failed", str(err), {})
        except Exception as err:
            log.exception("batch job %s failed with an internal error", job_id)
            self._fail(
                run, "job-failed", redact(f"internal error of the local server: {type(err).__name__}: {err}"), {}
            )
        finally:
            run.done.set()
            shutil.rmtree(work, ignore_errors=True)

    def _execute(self, run: JobRun, work: Path) -> None:
        definition = run.definition
        try:
            outputs = resolve_workflow(definition.workflow_id, self._registry)
        except LookupError as err:
            raise JobFailed(str(err)) from None
        videos = [
            video
            for video in self._store.files(definition.batch_id, definition.part_name, READY, 0, -1)
            if video.content_type == "videos"
        ]
        if not videos:
            raise JobFailed(
                f"input batch {definition.batch_id!r} holds no stored videos: stage videos into it first and "
                "wait until its count shows them, then restart the job"
            )
        processing = contract.output_batch_id(run.job_id, "processing")
        export = contract.output_batch_id(run.job_id, "export")
        self._prepare_output(run.job_id, processing, contract.PROCESSING_PART, "metadata", None)
        self._prepare_output(run.job_id, export, contract.EXPORT_PART, "archives", "metadata")

        now = time.time()
        stage = StageDoc(
            "processing",
            contract.STATUS_RUNNING,
            {"type": "stage-running", "message": f"processing {len(videos)} videos"},
            now,
            now,
            [processing],
            [
                TaskDoc(
                    f"video-{index:05d}",
                    contract.STATUS_RUNNING,
                    {"type": "task-waiting", "video": video.file_name},
                    now,
                )
                for index, video in enumerate(videos)
            ],
        )
        with run.lock:
            run.stages.append(stage)
            self._save(run, current_stage="processing")
        self._store.add_log(
            run.job_id, "info", "stage-started", {"stage": "processing", "videos": len(videos)}, stage_id="processing"
        )
        with ThreadPoolExecutor(max_workers=max(1, run.parallel), thread_name_prefix=f"batch-{run.job_id}") as pool:
            futures = [
                pool.submit(self._run_task, run, stage, task, video, outputs, work)
                for task, video in zip(stage.tasks, videos, strict=True)
            ]
            outcomes: list[BaseException | bool] = []
            for future in futures:
                error = future.exception()
                outcomes.append(error if error is not None else future.result())
        for kind in (Interrupted, JobAborted, CapReached):
            if any(isinstance(outcome, kind) for outcome in outcomes):
                raise kind()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        failed = sum(1 for outcome in outcomes if outcome is False)
        with run.lock:
            stage.status_type = contract.STATUS_FAILED if failed else contract.STATUS_SUCCEEDED
            stage.notification = {
                "type": "stage-completed",
                "message": f"{len(videos) - failed} of {len(videos)} videos processed",
            }
            stage.last_event_at = time.time()
            self._save(run)
        # Every video is done: the export runs even if the last frames took the runtime to its cap.
        if self._stop.is_set():
            raise Interrupted()
        if run.abort.is_set():
            raise JobAborted()
        self._export(run, processing, export, work)
        results = [processing, export]
        if failed:
            message = (
                f"{failed} of {len(videos)} videos failed (see the tasks and the error logs); the results of "
                "the others are in the output batches"
            )
            self._finish(run, FAILED, {"type": "job-failed", "message": message, "resultsBatches": results})
        else:
            message = f"job {run.job_id} processed {len(videos)} videos; results in {processing} and {export}"
            self._finish(run, SUCCEEDED, {"type": "job-completed", "message": message, "resultsBatches": results})

    def _prepare_output(self, job_id: str, batch_id: str, part: str, content_type: str, nested: str | None) -> None:
        for old in self._store.delete_batch(batch_id):  # a restart writes them anew
            self._file_path(old.file_id, old.ext).unlink(missing_ok=True)
        self._store.add_batch(batch_id, batch_id, "multipart-batch", content_type, job_id=job_id)
        self._store.add_part(batch_id, part, "simple-part", content_type, nested, f"output of job {job_id}")

    def _run_task(
        self, run: JobRun, stage: StageDoc, task: TaskDoc, video: FileRow, outputs: list[WorkflowOutput], work: Path
    ) -> bool:
        run.check(self._stop)
        token = run.budget.start()
        with run.lock:
            _set_task(task, contract.STATUS_RUNNING, {"type": "task-running", "video": video.file_name}, 0.0)
            self._save(run)
        try:
            frames = self._process_video(run, task, video, outputs, work)
        except (Interrupted, JobAborted, CapReached) as stop:
            if not isinstance(stop, Interrupted):
                reason = "aborted" if isinstance(stop, JobAborted) else "runtime cap reached"
                with run.lock:
                    _set_task(
                        task,
                        contract.STATUS_FAILED,
                        {"type": "task-stopped", "video": video.file_name, "reason": reason},
                    )
                    self._save(run)
            raise
        except Exception as err:
            message = redact(err.message if isinstance(err, JobFailure) else f"{type(err).__name__}: {err}")
            with run.lock:
                _set_task(
                    task, contract.STATUS_FAILED, {"type": "task-failed", "video": video.file_name, "message": message}
                )
                self._save(run)
            self._store.add_log(
                run.job_id,
                "error",
                "task-failed",
                {"video": video.file_name, "message": message},
                stage_id=stage.name,
                task_id=task.task_id,
            )
            return False
        finally:
            run.budget.stop(token)
        with run.lock:
            _set_task(
                task,
                contract.STATUS_SUCCEEDED,
                {"type": "task-completed", "video": video.file_name, "rows": frames},
                1.0,
            )
            self._save(run)
        self._store.add_log(
            run.job_id,
            "info",
            "task-completed",
            {"video": video.file_name, "rows": frames},
            stage_id=stage.name,
            task_id=task.task_id,
        )
        return True

    def _process_video(
        self, run: JobRun, task: TaskDoc, video: FileRow, outputs: list[WorkflowOutput], work: Path
    ) -> int:
        definition = run.definition
        path = self._file_path(video.file_id, video.ext)
        if not path.is_file():
            raise JobFailure(
                FailureCode.UNREADABLE_VIDEO, f"video {video.file_name!r} of the input batch is missing (expired?)"
            )
        reader = VideoReader(path)
        try:
            rate = exact_fps(reader.fps)
            if definition.max_video_fps is not None:
                rate = min(rate, Fraction(str(definition.max_video_fps)))
            expected = max(1, math.ceil(frame_count(path) * rate / exact_fps(reader.fps)))
            context = VideoContext(
                fps=reader.fps, infer_fps=max(1, round(float(rate))), width=reader.width, height=reader.height
            )
            params = definition.workflow_parameters or {}
            infers = []
            for output in outputs:
                opened: Any = output.model.open(params, context)
                infers.append(getattr(opened, "infer", opened))
            fmt = definition.aggregation_format or "csv"
            name = f"{video.file_name}.{fmt}"
            file_id = uuid.uuid4().hex
            partial = work / f"{file_id}.{fmt}"
            writer = RowWriter(partial, fmt, [output.name for output in outputs])
            rows = 0
            last_progress = time.monotonic()
            delay = self._config.batch_frame_delay_seconds
            try:
                for frame in reader.frames(rate, self._stop):
                    run.check(self._stop)
                    if delay > 0:
                        run.abort.wait(delay)
                        run.check(self._stop)
                    writer.add(video.file_name, frame, [self._infer(run, infer, frame) for infer in infers])
                    rows += 1
                    if time.monotonic() - last_progress >= _PROGRESS_EVERY_SECONDS:
                        last_progress = time.monotonic()
                        with run.lock:
                            task.progress = min(0.99, rows / expected)
                            task.event_at = time.time()
                            self._save(run)
            finally:
                writer.close()
        finally:
            reader.close()
        final = self._file_path(file_id, fmt)
        os.replace(partial, final)
        self._store.add_file(
            file_id,
            contract.output_batch_id(run.job_id, "processing"),
            name,
            "metadata",
            fmt,
            part_name=contract.PROCESSING_PART,
            state=READY,
            size=final.stat().st_size,
        )
        return rows

    @staticmethod
    def _infer(run: JobRun, infer: Callable[[VideoFrame], Any], frame: VideoFrame) -> bytes:
        try:
            return encode_frame_result(infer(frame))
        except Exception:
            log.warning("a model failed on frame %d of batch job %s", frame.index, run.job_id, exc_info=True)
            return b"null"

    def _export(self, run: JobRun, processing: str, export: str, work: Path) -> None:
        now = time.time()
        task = TaskDoc("export-00000", contract.STATUS_RUNNING, {"type": "task-running"}, now, 0.0)
        stage = StageDoc("export", contract.STATUS_RUNNING, {"type": "stage-running"}, now, now, [export], [task])
        with run.lock:
            run.stages.append(stage)
            self._save(run, current_stage="export")
        self._store.add_log(run.job_id, "info", "stage-started", {"stage": "export"}, stage_id="export")
        file_id = uuid.uuid4().hex
        partial = work / f"{file_id}.tar.gz"
        files = self._store.files(processing, contract.PROCESSING_PART, READY, 0, -1)
        with tarfile.open(partial, "w:gz") as archive:
            for item in files:
                archive.add(self._file_path(item.file_id, item.ext), arcname=item.file_name)
        final = self._file_path(file_id, "tar.gz")
        os.replace(partial, final)
        self._store.add_file(
            file_id,
            export,
            "results.tar.gz",
            "archives",
            "tar.gz",
            part_name=contract.EXPORT_PART,
            state=READY,
            size=final.stat().st_size,
        )
        with run.lock:
            _set_task(task, contract.STATUS_SUCCEEDED, {"type": "task-completed", "files": len(files)}, 1.0)
            stage.status_type = contract.STATUS_SUCCEEDED
            stage.notification = {"type": "stage-completed", "message": f"{len(files)} files archived"}
            stage.last_event_at = time.time()
            self._save(run)

    # -- recording --------------------------------------------------------------------------------

    def _save(self, run: JobRun, **values: Any) -> None:
        """Write the run's stages (and ``values``) while the job is running; call under ``run.lock``."""
        self._store.update_job(run.job_id, stages=run.stages, only_if=(RUNNING,), **values)

    def _finish(self, run: JobRun, state: str, note: dict[str, Any]) -> None:
        with run.lock:
            ended = self._store.update_job(
                run.job_id,
                state=state,
                error=state != SUCCEEDED,
                notification=note,
                stages=run.stages,
                only_if=(RUNNING,),
            )
        if ended:
            log.info("batch job %s ended %s: %s", run.job_id, state, note["message"])
            severity = "info" if state == SUCCEEDED else "error"
            self._store.add_log(run.job_id, severity, note["type"], {k: v for k, v in note.items() if k != "type"})
            self._end_notification(run.job_id, succeeded=state == SUCCEEDED)

    def _fail(self, run: JobRun, kind: str, message: str, extra: dict[str, Any]) -> None:
        with run.lock:
            _close_stages(run.stages, message)
        self._finish(run, FAILED, {"type": kind, "message": message, **extra})

    def _end_notification(self, job_id: str, succeeded: bool) -> None:
        job = self._store.get_job(job_id)
        url = job.definition.get("notificationsURL") if job else None
        if isinstance(url, str) and url:
            self._notify(url, contract.job_notification(job_id, succeeded, str(uuid.uuid4())))


def _set_task(task: TaskDoc, status: str, note: dict[str, Any], progress: float | None = None) -> None:
    task.status_type = status
    task.notification = note
    task.event_at = time.time()
    if progress is not None:
        task.progress = progress


def _close_stages(stages: list[StageDoc], reason: str) -> None:
    """End every running stage and task with an error naming ``reason`` (abort, cap, failure)."""
    now = time.time()
    for stage in stages:
        for task in stage.tasks:
            if task.status_type == contract.STATUS_RUNNING:
                _set_task(task, contract.STATUS_FAILED, {**task.notification, "type": "task-stopped", "reason": reason})
        if stage.status_type == contract.STATUS_RUNNING:
            stage.status_type = contract.STATUS_FAILED
            stage.notification = {"type": "stage-stopped", "message": reason}
            stage.last_event_at = now

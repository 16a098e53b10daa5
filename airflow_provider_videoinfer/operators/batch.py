"""Run a Roboflow Workflow on a staged batch of videos (Batch Processing): create once, wait, abort when stopped.

The service lets the client choose the job id, abort a job and cap its runtime; this operator uses
all three. The job id is derived from the task instance and its try group (a clear starts a new
group, a retry stays in it), kept in the task store, and the job is read before it is created: a
retry reconnects, a lost answer is resolved by reading, and nothing is paid for twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer import contract, exceptions
from airflow_provider_videoinfer.compat import conf
from airflow_provider_videoinfer.exceptions import (
    VideoInferBatchJobFailedError,
    VideoInferBatchTimeoutError,
    VideoInferConfigError,
    VideoInferError,
    VideoInferTimeoutError,
)
from airflow_provider_videoinfer.hooks.batch import (
    VideoInferBatchHook,
    failure_reason,
    same_definition,
    state_of_code,
    timeout_message,
)
from airflow_provider_videoinfer.operators.base import (
    VideoInferBaseOperator,
    is_runtime_value,
    utc_time,
    validate_if_known,
)
from airflow_provider_videoinfer.operators.task_store import (
    TaskStore,
    forget_on_success,
    kept_until_the_task_ends,
    task_store,
)
from airflow_provider_videoinfer.triggers.batch import VideoInferBatchJobTrigger
from airflow_provider_videoinfer.triggers.events import EventKind, JobEvent
from videoinfer_contract import batch as wire
from videoinfer_contract.redaction import redact

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["VideoInferBatchJobOperator", "batch_id_for", "job_id_for"]

#: Task store key of the job a try created, which the next try of the same group reconnects to.
#: Renaming it breaks reconnection for tasks in flight.
JOB_STATE_KEY = "videoinfer_batch_job"
#: The runtime cap's default: one hour of cumulative machine time, across all machines and workers.
#: At Roboflow's published rates (from 1 credit per CPU hour, 4 per GPU hour) that is at most about
#: 1 credit on CPU and 4 on GPU for the job.
DEFAULT_MAX_RUNTIME_SECONDS = 3600
#: How long the operator waits by default: a day, the lifetime of the presigned URLs its staging
#: operator makes (a job that has not started by then could not read its videos any more).
DEFAULT_WAIT_TIMEOUT = 24 * 3600.0
#: Prefix of the ids this provider derives (``af`` for Airflow), so they are told apart in the service's UI.
ID_PREFIX = "af-"


def _digest_id(parts: Sequence[Any], length: int) -> str:
    """``af-`` and a base32 digest of ``parts``, ``length`` characters in all, in ``[a-z0-9_-]``."""
    digest = hashlib.sha256(json.dumps(list(parts), default=str, sort_keys=True).encode()).digest()
    text = base64.b32encode(digest).decode().lower().rstrip("=")
    return ID_PREFIX + text[: length - len(ID_PREFIX)]


def task_identity(context: Context) -> list[Any]:
    """What names a task instance and its try group: DAG, run, task, map index, and ``max_tries``.

    A retry keeps ``max_tries``; clearing a task raises it (Airflow sets it to the try number plus
    the task's retries), so a clear starts a new group.
    """
    ti: Any = context["ti"]
    return [
        getattr(ti, "dag_id", None),
        getattr(ti, "run_id", None),
        getattr(ti, "task_id", None),
        getattr(ti, "map_index", -1),
        getattr(ti, "max_tries", 0),
    ]


def job_id_for(context: Context, fingerprint: str) -> str:
    """The job id of a task instance's try group and job body: 20 characters, ``af-`` and a digest.

    :param context: the running task's context.
    :param fingerprint: the job body's digest; a body changed between tries gets another id.
    """
    return _digest_id([*task_identity(context), fingerprint], wire.MAX_BATCH_JOB_ID_LENGTH)


def batch_id_for(context: Context) -> str:
    """The staging batch id of a task instance's try group: ``af-`` and a digest, 32 characters."""
    return _digest_id(task_identity(context), 32)


def _max_tries(context: Context) -> int:
    return int(getattr(context["ti"], "max_tries", 0) or 0)


class VideoInferBatchJobOperator(VideoInferBaseOperator):
    """Run a Roboflow Workflow on a staged batch of videos; return the job id (XCom ``job_id`` too).

    **Never paid twice.** The job id (``af-`` and 17 characters) is derived from the task instance,
    its try group and the job body, and kept in the task store before the job is created. Every try
    reads the job first: a retry reconnects to it (running, or already done), a lost answer to the
    creation is resolved by reading, and a clear (a new try group) runs a new job under a new id.

    **Stopped means aborted.** When the task is killed (``on_kill``), when the wait reaches
    ``wait_timeout``, and when the wait fails with an error no retry fixes, the job is aborted and the
    log names it. On Airflow 3.3+ a deferred task marked failed or cleared aborts it too, through the
    trigger's ``on_kill``. A retry that finds its job aborted restarts it.

    **Capped.** ``max_runtime_seconds`` is the job's cumulative machine time across all machines
    and workers (``processingTimeoutSeconds``); at the cap the service stops the job, and the task
    fails saying so. Billing is by machine time: from 1 credit per CPU hour and 4 per GPU hour
    (see roboflow.com/credits), so the default hour costs at most about 1 credit on CPU, 4 on GPU.

    A job that fails is restarted by a retry only when ``restart_failed_jobs`` is True; by default
    the task then fails without its retries (a restart is paid for again and usually fails the same way).

    :param batch_id: the staging batch of videos (templated), e.g. ``VideoInferBatchStageOperator``'s return value.
    :param workflow_id: the Workflow of the workspace to run (templated).
    :param workflow_parameters: the Workflow's other inputs, e.g. ``{"confidence": 0.4}`` (templated).
    :param image_input_name: the name of the Workflow's image input; None for the service's default.
    :param machine_type: ``"cpu"`` (default, 1 credit an hour) or ``"gpu"`` (4 credits an hour, faster).
    :param workers_per_machine: workers per machine; None for the service's default.
    :param max_parallel_tasks: videos processed at once at most; None for the service's default.
    :param max_video_fps: frames per second sampled for prediction; None for every frame (fewer cost less).
    :param aggregation_format: ``"jsonl"`` (default, keeps nested detections) or ``"csv"``.
    :param notifications_url: a webhook the service posts the job's end to (templated).
    :param max_runtime_seconds: the cap of cumulative machine time (default 3600) (templated).
    :param part_name: a part of a multipart input batch; None for the whole batch.
    :param job_name: the job's display name; default the task's ``dag_id.task_id``.
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    :param wait_for_completion: wait for the job to end (default True); False returns at once.
    :param deferrable: wait in the triggerer. Default: Airflow's ``[operators] default_deferrable``.
    :param poll_interval: seconds between polls (default 60).
    :param wait_timeout: seconds to wait at most (default a day); the job is then aborted.
    :param restart_failed_jobs: whether a retry restarts a job that failed (default False).
    """

    template_fields: Sequence[str] = (
        *VideoInferBaseOperator.template_fields,
        "batch_id",
        "workflow_id",
        "workflow_parameters",
        "notifications_url",
        "job_name",
        "max_runtime_seconds",
    )
    ui_color = "#f0e4d4"

    def __init__(
        self,
        *,
        batch_id: str,
        workflow_id: str,
        workflow_parameters: Mapping[str, Any] | None = None,
        image_input_name: str | None = None,
        machine_type: str = "cpu",
        workers_per_machine: int | None = None,
        max_parallel_tasks: int | None = None,
        max_video_fps: float | None = None,
        aggregation_format: str = "jsonl",
        notifications_url: str | None = None,
        max_runtime_seconds: int = DEFAULT_MAX_RUNTIME_SECONDS,
        part_name: str | None = None,
        job_name: str | None = None,
        videoinfer_conn_id: str = VideoInferBatchHook.default_conn_name,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        restart_failed_jobs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        self.batch_id = batch_id
        self.workflow_id = workflow_id
        self.workflow_parameters = workflow_parameters
        self.image_input_name = image_input_name
        self.machine_type = machine_type
        self.workers_per_machine = workers_per_machine
        self.max_parallel_tasks = max_parallel_tasks
        self.max_video_fps = max_video_fps
        self.aggregation_format = aggregation_format
        self.notifications_url = notifications_url
        self.max_runtime_seconds = max_runtime_seconds
        self.part_name = part_name
        self.job_name = job_name
        self.wait_for_completion = contract.validate_flag("wait_for_completion", wait_for_completion)
        self.deferrable = contract.validate_flag("deferrable", deferrable)
        self.restart_failed_jobs = contract.validate_flag("restart_failed_jobs", restart_failed_jobs)
        self.poll_interval = contract.validate_seconds("poll_interval", poll_interval, contract.MAX_POLL_INTERVAL)
        self.wait_timeout = contract.validate_seconds("wait_timeout", wait_timeout, contract.MAX_WAIT_SECONDS)
        contract.validate_wait(self.poll_interval, self.wait_timeout, "wait_timeout")
        # Every value known now is checked now (a placeholder workspace and batch stand in for those
        # known only at run time), so that a typo fails the DAG's parse, not a paid run.
        if not any(
            map(is_runtime_value, (batch_id, workflow_id, workflow_parameters, notifications_url, max_runtime_seconds))
        ):
            self._definition("parse-time-check")
        else:
            validate_if_known(workflow_id, contract.validate_workflow_id)
            validate_if_known(batch_id, contract.validate_staging_batch_id)
        self._job_id: str | None = None
        forget_on_success(self, JOB_STATE_KEY)

    def _definition(self, workspace: str) -> wire.VideoJobDefinition:
        return contract.build_batch_job_definition(  # type: ignore[no-any-return]
            workspace,
            self.batch_id,
            self.workflow_id,
            part_name=self.part_name,
            workflow_parameters=self.workflow_parameters,
            image_input_name=self.image_input_name,
            machine_type=self.machine_type,
            workers_per_machine=self.workers_per_machine,
            processing_timeout_seconds=self.max_runtime_seconds,
            max_parallel_tasks=self.max_parallel_tasks,
            aggregation_format=self.aggregation_format,
            max_video_fps=self.max_video_fps,
            notifications_url=self.notifications_url,
            names={"processing_timeout_seconds": "max_runtime_seconds"},
        )

    @cached_property
    def hook(self) -> VideoInferBatchHook:  # type: ignore[override]
        """The Batch Processing hook of this task's connection, created once (in ``execute``)."""
        return VideoInferBatchHook(self.videoinfer_conn_id)

    def execute(self, context: Context) -> str:
        """Create (or reconnect to) the job, then wait for it unless ``wait_for_completion`` is False."""
        definition = self._definition(self.hook.workspace)
        store = task_store(context)
        with kept_until_the_task_ends(store, JOB_STATE_KEY, context):
            job_id = self._job_id_of_this_group(context, store, definition)
            self._job_id = job_id
            context["ti"].xcom_push(key="job_id", value=job_id)
            job = self._create_or_reconnect(job_id, definition, context)
            if not self.wait_for_completion or job.state is wire.BatchJobState.SUCCEEDED:
                return job_id
            if self.deferrable:
                self._defer(job_id)
            try:
                self.hook.wait_for_job(job_id, self.poll_interval, self.wait_timeout)
            except VideoInferTimeoutError as err:
                raise self._timed_out(job_id, str(err)) from None
            except VideoInferBatchJobFailedError as err:
                raise self._job_failure(err) from None
            except VideoInferError as err:
                self._abort(job_id, f"its wait failed ({err})")
                raise
            self.log.info("Batch job %s succeeded.", job_id)
            return job_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the job id, or abort and raise for a timeout or a failed wait."""
        with kept_until_the_task_ends(task_store(context), JOB_STATE_KEY, context):
            done = JobEvent.from_payload(event)
            self._job_id = done.job_id
            if done.kind is EventKind.SUCCEEDED:
                self.log.info("Batch job %s succeeded.", done.job_id)
                return done.job_id
            if done.kind is EventKind.FAILED:
                failed = VideoInferBatchJobFailedError(done.job_id, state_of_code(done.code), done.message)
                raise self._job_failure(failed)
            if done.kind is EventKind.TIMEOUT:
                reason = done.message or "was still running at the deadline"
                raise self._timed_out(done.job_id, timeout_message(done.job_id, reason))
            error_class = getattr(exceptions, done.error_type or "", VideoInferError)
            if not (isinstance(error_class, type) and issubclass(error_class, VideoInferError)):
                error_class = VideoInferError
            self._abort(done.job_id, f"its wait failed ({done.message})")
            raise error_class(f"Waiting for batch job {done.job_id} failed: {done.message}")

    def on_kill(self) -> None:
        """Abort the job (its machines stop being paid for), and say so with its id."""
        if self._job_id is None:
            self.log.warning(
                "Task %s was killed before it had a batch job id: no job to abort (a retry reads its job before "
                "creating one).",
                self.task_id,
            )
            return
        self._abort(self._job_id, f"task {self.task_id} was killed")

    def _defer(self, job_id: str) -> None:
        deadline = time.time() + self.wait_timeout
        until = utc_time(deadline)
        self.log.info(
            "Batch job %s is running: the wait continues in the triggerer (this worker slot is freed), polling every "
            "%g s until %s at the latest; the job is aborted then if it still runs.",
            job_id,
            self.poll_interval,
            until,
        )
        trigger = VideoInferBatchJobTrigger(
            job_id=job_id,
            videoinfer_conn_id=self.videoinfer_conn_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def _abort(self, job_id: str, why: str) -> None:
        """Abort the job, logging it with its id; a failed abort is logged, never raised over the task's own error."""
        try:
            self.hook.abort_job(job_id)
        except VideoInferError as err:
            self.log.error(
                "Could not abort batch job %s after %s: %s. It may still run and be paid for: abort it with "
                "`inference rf-cloud batch-processing abort-job --job-id %s`.",
                job_id,
                why,
                err,
                job_id,
            )
            return
        self.log.warning("Aborted batch job %s: %s. Its machines stop being paid for.", job_id, why)

    def _timed_out(self, job_id: str, message: str) -> VideoInferBatchTimeoutError:
        self._abort(job_id, f"its wait reached wait_timeout={self.wait_timeout:g} s")
        return VideoInferBatchTimeoutError(message)

    def _job_failure(self, err: VideoInferBatchJobFailedError) -> VideoInferBatchJobFailedError:
        """The error that ends this try for a failed or aborted job, with what the runtime cap had to do with it."""
        cap = ""
        if _mentions_runtime_cap(err.reason):
            cap = (
                f" The job reached its runtime cap, max_runtime_seconds={self.max_runtime_seconds} (cumulative machine "
                "time across all machines): raise it if the videos need more, or lower max_video_fps."
            )
        if err.state == wire.BatchJobState.ABORTED.value:
            return err.final(
                f"It was aborted while this task waited (from the service's UI or CLI, or by another client), so "
                f"the task fails without its retries.{cap} Clear the task to run a new job."
            )
        if self.restart_failed_jobs:
            advice = f"The task's next retry, if it has one left, restarts it (restart_failed_jobs=True).{cap}"
            return VideoInferBatchJobFailedError(err.job_id, err.state, err.reason, advice)
        return err.final(
            f"No retry restarts it (restart_failed_jobs=False), so the task fails without its retries.{cap} Fix the "
            "cause and clear the task to run a new job."
        )

    def _job_id_of_this_group(self, context: Context, store: TaskStore, definition: wire.VideoJobDefinition) -> str:
        """The job id of this try: the one a previous try of the same group kept, else a new one, kept before
        the job is created (a task whose retries could not find it must not create one)."""
        saved = store.get(JOB_STATE_KEY)
        group = _max_tries(context)
        if isinstance(saved, dict) and saved.get("job_id"):
            if saved.get("max_tries") == group and saved.get("fingerprint") == definition.fingerprint:
                self.log.info("A previous try of this task created batch job %s: reading it.", saved["job_id"])
                return str(saved["job_id"])
            why = "the task was cleared" if saved.get("max_tries") != group else "the job's definition changed"
            self.log.info(
                "Batch job %s belongs to an earlier run of this task (%s): using a new job id.", saved["job_id"], why
            )
        job_id = job_id_for(context, definition.fingerprint)
        entry = {"job_id": job_id, "max_tries": group, "fingerprint": definition.fingerprint}
        try:
            store.set(JOB_STATE_KEY, entry)
        except Exception as err:
            where = f"{store.name} {type(err).__name__}: {redact(str(err))}"
            if self.retries:
                raise VideoInferConfigError(
                    f"Task {self.task_id} cannot keep the id of batch job {job_id} where its next try finds it "
                    f"({where}); no job is created. Let the task write Airflow Variables (before Airflow 3.3), "
                    "or set retries=0."
                ) from None
            self.log.warning("Could not keep batch job id %s for a retry (%s); the task has no retries.", job_id, where)
        return job_id

    def _create_or_reconnect(self, job_id: str, definition: wire.VideoJobDefinition, context: Context) -> wire.BatchJob:
        """Read the job; reconnect to it, restart it (aborted, or failed under ``restart_failed_jobs``),
        or create it."""
        existing = self.hook.find_job(job_id)
        if existing is None:
            ti: Any = context["ti"]
            name = self.job_name or f"{getattr(ti, 'dag_id', self.dag_id)}.{self.task_id}"
            return self.hook.create_job(job_id, definition, name=name)
        if not same_definition(existing.definition, definition.to_payload()):
            raise self.hook._conflict(job_id)
        state = existing.state
        if not state.can_restart():
            self.log.info("Reconnecting to batch job %s (%s).", job_id, state.value)
            return existing
        if state is wire.BatchJobState.FAILED and not self.restart_failed_jobs:
            raise self._job_failure(VideoInferBatchJobFailedError(job_id, state.value, failure_reason(existing)))
        self.log.warning(
            "Batch job %s from a previous try ended %s (%s): restarting it (%s); its remaining work is paid for again.",
            job_id,
            state.value,
            failure_reason(existing),
            "restart_failed_jobs=True"
            if state is wire.BatchJobState.FAILED
            else "it was aborted when that try stopped",
        )
        self.hook.restart_job(job_id)
        return self.hook.get_job(job_id)


def _mentions_runtime_cap(reason: str) -> bool:
    text = reason.lower()
    return any(word in text for word in ("processingtimeoutseconds", "runtime", "timeout", "time limit", "max_runtime"))

"""The sensor that waits for an existing Batch Processing job: deferred to the triggerer, or poking in the worker."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.compat import AirflowSensorTimeout, conf
from airflow_provider_videoinfer.exceptions import VideoInferBatchJobFailedError, VideoInferError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.batch import (
    VideoInferBatchHook,
    finish,
    log_poll,
    state_of_code,
    wait_state,
)
from airflow_provider_videoinfer.operators.base import validate_if_known
from airflow_provider_videoinfer.triggers.batch import VideoInferBatchJobTrigger
from airflow_provider_videoinfer.triggers.events import EventKind, JobEvent
from videoinfer_contract import batch as wire

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Why a failed job ends the sensor without its retries.
FAILED_JOB_ADVICE = (
    "The sensor never restarts a job, and a retry would read the same end: it fails without its retries."
)


class VideoInferBatchJobSensor(BaseSensorOperator):
    """Wait for an existing batch job (created by ``VideoInferBatchJobOperator``, the CLI or the UI); return its id.

    Running keeps waiting, succeeded returns the job id, failed or aborted fails the task without its
    retries (the sensor never restarts a job). Outages are ridden out until ``timeout``, as for every
    wait of the provider. The sensor does not own the job: killing it, or its timeout, leaves the job
    running, unless ``abort_on_kill`` is True (then a kill aborts it, in the worker or, on Airflow 3.3+,
    through the trigger).

    :param job_id: the job to wait for (templated).
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    :param poll_interval: seconds between polls (default 60).
    :param deferrable: wait in the triggerer. Default: Airflow's ``[operators] default_deferrable``.
    :param abort_on_kill: abort the job when this task is killed (default False).
    :param timeout: seconds to wait in all (``BaseSensorOperator``'s, default 7 days).
    """

    template_fields = ("videoinfer_conn_id", "job_id")
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        job_id: str,
        videoinfer_conn_id: str = VideoInferBatchHook.default_conn_name,
        poll_interval: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        abort_on_kill: bool = False,
        **kwargs: Any,
    ) -> None:
        poll_interval = contract.validate_seconds("poll_interval", poll_interval, contract.MAX_POLL_INTERVAL)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.job_id = job_id
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval, self.timeout = contract.validate_wait(poll_interval, self.timeout, "timeout")
        self.deferrable = contract.validate_flag("deferrable", deferrable)
        self.abort_on_kill = contract.validate_flag("abort_on_kill", abort_on_kill)
        validate_if_known(job_id, contract.validate_batch_job_id)
        self._started: float | None = None
        self._outage: waiting.Outage | None = None

    @property
    def hook(self) -> VideoInferBatchHook:
        """The Batch Processing hook of this task's connection, created once."""
        if "_hook" not in self.__dict__:
            self.__dict__["_hook"] = VideoInferBatchHook(self.videoinfer_conn_id)
        return self.__dict__["_hook"]  # type: ignore[no-any-return]

    def execute(self, context: Context) -> Any:
        """Check once; when the job still runs, defer to the trigger (or poke, when not deferrable)."""
        self._started, self._outage = None, None
        if not self.deferrable:
            return super().execute(context)
        outcome, job = self._check()
        if isinstance(outcome, waiting.PollAgain):
            deadline = time.time() + self.timeout
            trigger = VideoInferBatchJobTrigger(
                job_id=self._job_id(),
                videoinfer_conn_id=self.videoinfer_conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                abort_on_kill=self.abort_on_kill,
            )
            self.log.info("Batch job %s is not done: the wait continues in the triggerer.", self._job_id())
            self.defer(trigger=trigger, method_name="execute_complete")
        return self._finish(outcome, job)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """Poll once: False while the job runs or its state is unknown, the job id when it succeeded."""
        outcome, job = self._check()
        if isinstance(outcome, waiting.PollAgain):
            self.poke_interval = outcome.delay
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(outcome, job))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the job id, or raise for its end or the deadline."""
        done = JobEvent.from_payload(event)
        if done.kind is EventKind.SUCCEEDED:
            return done.job_id
        if done.kind is EventKind.FAILED:
            raise VideoInferBatchJobFailedError(done.job_id, state_of_code(done.code), done.message).final(
                FAILED_JOB_ADVICE
            )
        if done.kind is EventKind.TIMEOUT:
            raise AirflowSensorTimeout(
                f"Batch job {done.job_id} {done.message or 'was still running at the deadline'}; the sensor leaves it "
                "running."
            )
        raise VideoInferError(f"Waiting for batch job {done.job_id} failed: {done.message}")

    def on_kill(self) -> None:
        """Abort the job when ``abort_on_kill``; else say that it goes on running."""
        job_id = str(self.job_id)
        if not self.abort_on_kill:
            self.log.warning("Sensor %s was killed: batch job %s goes on running.", self.task_id, job_id)
            return
        try:
            self.hook.abort_job(job_id)
        except VideoInferError as err:
            self.log.error("Sensor %s was killed, but aborting batch job %s failed: %s", self.task_id, job_id, err)
            return
        self.log.warning("Sensor %s was killed: aborted batch job %s.", self.task_id, job_id)

    def _job_id(self) -> str:
        return contract.validate_batch_job_id(self.job_id)  # type: ignore[no-any-return]

    def _check(self) -> tuple[waiting.Outcome, wire.BatchJob | None]:
        job_id = self._job_id()
        if self._started is None:
            self._started = time.time()
        wait = waiting.Wait(
            job_id, self.poll_interval, self._started, self._started + self.timeout, self.hook.settings.retry
        )
        poll = self.hook.poll_job(job_id)
        now = time.time()
        job = poll if isinstance(poll, wire.BatchJob) else None
        outcome = waiting.step(wait, self._outage, wait_state(job) if job is not None else poll, now, random.random())  # type: ignore[arg-type]
        running = isinstance(outcome, waiting.PollAgain) and outcome.reason is waiting.Reason.RUNNING
        log_poll(self.log, outcome, now, self.hook.safe_progress(job) if running and job is not None else None)
        self._outage = outcome.outage if isinstance(outcome, waiting.PollAgain) else None
        return outcome, job

    def _finish(self, outcome: waiting.Outcome, job: wire.BatchJob | None) -> str:
        if isinstance(outcome, waiting.TimedOut):
            raise AirflowSensorTimeout(
                f"Batch job {outcome.job_id} {outcome.reason}; the sensor leaves it running: raise its timeout."
            )
        assert not isinstance(outcome, waiting.PollAgain)
        try:
            done = finish(outcome, job)
        except VideoInferBatchJobFailedError as err:
            raise err.final(FAILED_JOB_ADVICE) from None
        self.log.info("Batch job %s succeeded.", done.job_id)
        return done.job_id

"""The sensor that waits for a job: deferred to the triggerer, or poking in the worker (poke and reschedule modes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

# TODO: take ``conf`` from airflow_provider_videoinfer.compat once it provides it: Airflow 3.0 and
# 3.1 have no airflow.sdk.configuration (this is where operators/base.py took it from).
from airflow.sdk.configuration import conf

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import VideoInferError
from airflow_provider_videoinfer.hooks import responses
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.hooks.waiting import JobWait
from airflow_provider_videoinfer.operators.base import (
    VideoInferHookMixin,
    defer_until_done,
    log_job_left_running,
    positive_seconds,
    validate_if_known,
    with_hint,
)
from airflow_provider_videoinfer.triggers.events import JobEvent

if TYPE_CHECKING:
    from airflow.sdk import Context

JOB_ID_HINT = "Pass the job id that VideoInferSubmitJobOperator returns (its XCom return value)."
#: task_state_store key: the outage under way (when it began, polls failed), kept across the pokes
#: of a rescheduled sensor.
OUTAGE_KEY = "videoinfer_outage"


class VideoInferJobSensor(VideoInferHookMixin, BaseSensorOperator):
    """Wait for a video inference job; return its ``output_signed_url`` (the XCom return value).

    Status 1 (running) keeps waiting, 0 succeeds, anything above 1 fails the task with an error
    naming the job id, the status code and the service's message. An answer without a valid
    integer status is an error, never a success. While the service is unreachable (or answers
    5xx, 429 or malformed bodies), the sensor logs a warning per poll and keeps waiting until
    its ``timeout``; a refused key (401/403) or an unknown job (404) fails it at once.

    :param job_id: the job to wait for (templated), e.g. the return value of
        ``VideoInferSubmitJobOperator``.
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    :param poll_interval: seconds between polls; default 60 because the hosted API allows one
        poll a minute per job.
    :param deferrable: wait in the triggerer, freeing the worker slot. Default: Airflow's
        ``[operators] default_deferrable`` (False unless the deployment sets it), as in Airflow's
        own providers. When False, the sensor pokes in the worker, in ``mode="poke"`` or
        ``mode="reschedule"``.
    :param timeout: seconds to wait in all before failing (``BaseSensorOperator``'s, default 7 days).
    """

    template_fields = ("videoinfer_conn_id", "job_id")
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        job_id: str,
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        poll_interval: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        poll_interval = positive_seconds("poll_interval", poll_interval)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.job_id = job_id
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        validate_if_known(job_id, contract.validate_job_id, JOB_ID_HINT)
        self._wait: JobWait | None = None

    def execute(self, context: Context) -> Any:
        """Check once; when the job still runs, defer to the trigger (or poke, when not deferrable)."""
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        defer_until_done(self, self._job_id(), self.poll_interval, self.timeout)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """Poll once: False while running or while the state is unknown, the output URL when done.

        Raises when the job failed, or for an error a retry cannot fix.
        """
        job_id = self._job_id()
        wait = self._job_wait(job_id, context)
        try:
            state = self.hook.get_job(job_id)
        except VideoInferError as err:
            wait.failed(err)  # raises unless the error is transient
            self._remember_outage(context, wait)
            return False
        outage = wait.unreachable_since is not None
        wait.answered(state)
        if outage:
            self._remember_outage(context, wait)
        if state.status is contract.JobStatus.RUNNING:
            return False
        if state.status is contract.JobStatus.FAILED:
            raise responses.job_failed(state)
        self.log.info("Job %s succeeded.", state.job_id)
        return PokeReturnValue(is_done=True, xcom_value=state.output_url)

    def on_kill(self) -> None:
        """Log that the job goes on running on the service (it cannot be cancelled), with its id."""
        log_job_left_running(
            self, str(self.job_id), "This sensor only stopped waiting for it; a retry of the sensor waits for it again."
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the output URL, or raise for a failure or timeout."""
        return JobEvent.from_payload(event).output_url_or_raise()

    def _job_id(self) -> str:
        return with_hint(contract.validate_job_id, self.job_id, JOB_ID_HINT)

    def _job_wait(self, job_id: str, context: Context) -> JobWait:
        """This sensor's wait. In reschedule mode each poke is a new run of the task, so the outage
        under way (when it began, how many polls failed) is kept in the task's ``task_state_store``."""
        if self._wait is None or self.reschedule:
            since, failed = None, 0
            store = context.get("task_state_store") if self.reschedule else None
            saved: Any = store.get(OUTAGE_KEY) if store is not None else None
            if isinstance(saved, dict) and isinstance(saved.get("since"), (int, float)):
                since, failed = float(saved["since"]), int(saved.get("failed") or 0)
            retry = self.hook.settings.retry
            self._wait = JobWait(
                job_id, self.poll_interval, None, retry, self.log, unreachable_since=since, failed_polls=failed
            )
        return self._wait

    def _remember_outage(self, context: Context, wait: JobWait) -> None:
        store = context.get("task_state_store") if self.reschedule else None
        if store is None:
            return
        if wait.unreachable_since is None:
            store.delete(OUTAGE_KEY)
        else:
            store.set(OUTAGE_KEY, {"since": wait.unreachable_since, "failed": wait.failed_polls})

"""The sensor that waits for a job: deferrable by default, poke and reschedule modes too."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_videoinfer import api
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger, output_url_from_event

if TYPE_CHECKING:
    from airflow.sdk import Context


class VideoInferJobSensor(BaseSensorOperator):
    """Wait for a video inference job; return its ``output_signed_url`` (the XCom return value).

    Status 1 keeps waiting, 0 succeeds, anything above 1 fails the task with an error naming the
    job id, the status code and the service's message. An answer without a valid integer status
    is an error, never a success.

    :param job_id: the job to wait for (templated), e.g. the return value of
        ``VideoInferSubmitJobOperator``.
    :param videoinfer_conn_id: the ``videoinfer`` connection.
    :param poll_interval: seconds between polls; default 60 because the hosted API allows one
        poll a minute per job.
    :param deferrable: wait in the triggerer, freeing the worker slot (default True). When False,
        the sensor pokes in the worker, in ``mode="poke"`` or ``mode="reschedule"``.
    :param timeout: seconds to wait in all before failing (``BaseSensorOperator``'s, default 7 days).
    """

    template_fields = ("job_id",)
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        job_id: str,
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        poll_interval: float = 60.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
            raise VideoInferValidationError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}."
            )
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.job_id = job_id
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval = float(poll_interval)
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> VideoInferHook:
        """The hook of the sensor's connection."""
        return VideoInferHook(self.videoinfer_conn_id)

    def execute(self, context: Context) -> Any:
        """Check once; when the job still runs, defer to the trigger (or poke, when not deferrable)."""
        if not self.deferrable:
            return super().execute(context)
        job_id = api.validate_job_id(self.job_id)
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        self.defer(
            trigger=VideoInferJobTrigger(
                job_id=job_id,
                videoinfer_conn_id=self.videoinfer_conn_id,
                poll_interval=self.poll_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """Poll once: False while running, the output URL when done; raise when the job failed."""
        state = self.hook.get_job(api.validate_job_id(self.job_id))
        if state.status is api.JobStatus.RUNNING:
            self.log.info("Job %s is still running.", state.job_id)
            return False
        if state.status is api.JobStatus.FAILED:
            raise api.job_failed(state)
        self.log.info("Job %s succeeded.", state.job_id)
        return PokeReturnValue(is_done=True, xcom_value=state.output_url)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the output URL, or raise for a failure or timeout."""
        return output_url_from_event(event)

"""The trigger that waits for a job in the triggerer, without holding a worker slot."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videoinfer import api
from airflow_provider_videoinfer.exceptions import VideoInferError, VideoInferTimeoutError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient

SUCCESS, FAILED, TIMEOUT, ERROR = "success", "failed", "timeout", "error"


class VideoInferJobTrigger(BaseTrigger):
    """Poll one job until it stops, then yield exactly one event.

    The first poll comes one to two poll intervals after the trigger starts (see ``run``).

    The event's payload is ``{"status": "success" | "failed" | "timeout" | "error", "job_id",
    "output_url", "code", "message"}``; read it with :func:`output_url_from_event`.

    :param job_id: the job to wait for.
    :param videoinfer_conn_id: the connection to read the API key from (the key itself is never
        serialized).
    :param poll_interval: seconds between polls.
    :param deadline: a wall-clock UNIX time after which the trigger gives up with a timeout
        event; absolute, so a trigger rebuilt on another triggerer keeps the same deadline.
        None waits as long as the job runs.
    """

    def __init__(
        self,
        job_id: str,
        videoinfer_conn_id: str = "videoinfer_default",
        poll_interval: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = api.validate_job_id(job_id)
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the kwargs that rebuild this trigger (never the API key)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "videoinfer_conn_id": self.videoinfer_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job stops or the deadline passes; yield one event."""
        # Whoever deferred has just polled or submitted, and the hosted API allows one poll a
        # minute per job: wait before the first poll too. Its random length (one to two
        # intervals) spreads many triggers, e.g. after a triggerer restart, so that they do not
        # connect and poll in lockstep and starve the event loop.
        await self._sleep(self.poll_interval * random.uniform(1.0, 2.0))
        try:
            client = await VideoInferAsyncClient.from_conn_id(self.videoinfer_conn_id)
        except AirflowException as err:  # a missing connection, or one without an API key
            yield self._event(ERROR, message=f"connection {self.videoinfer_conn_id!r}: {err}")
            return
        try:
            yield await self._poll(client)
        finally:
            await client.aclose()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but not past the deadline."""
        if self.deadline is not None:
            seconds = max(0.0, min(seconds, self.deadline - time.time()))
        await asyncio.sleep(seconds)

    async def _poll(self, client: VideoInferAsyncClient) -> TriggerEvent:
        while True:
            try:
                state = await client.get_job(self.job_id)
            except VideoInferError as err:
                return self._event(ERROR, message=str(err))
            if state.status is api.JobStatus.SUCCEEDED:
                return self._event(SUCCESS, code=state.code, output_url=state.output_url)
            if state.status is api.JobStatus.FAILED:
                return self._event(FAILED, code=state.code, message=state.error)
            if self.deadline is not None and time.time() >= self.deadline:
                return self._event(TIMEOUT, code=state.code, message="deadline passed while the job was running")
            self.log.info("Job %s is still running (status %s).", self.job_id, state.code)
            await self._sleep(self.poll_interval)

    def _event(self, status: str, **fields: Any) -> TriggerEvent:
        payload = {"status": status, "job_id": self.job_id, "output_url": None, "code": None, "message": None}
        payload.update(fields)
        return TriggerEvent(payload)


def output_url_from_event(event: Mapping[str, Any] | None) -> str:
    """Return the output URL of a success event; raise the provider's exception for any other.

    Shared by the operator and the sensor when they resume from the trigger.
    """
    if not event or "status" not in event:
        raise VideoInferError(f"The job trigger sent no usable event ({event!r}); this is a bug, please report it.")
    job_id = event.get("job_id")
    if event["status"] == SUCCESS and event.get("output_url"):
        return event["output_url"]
    if event["status"] == FAILED:
        raise api.job_failed(api.JobState(str(job_id), api.JobStatus.FAILED, event["code"], error=event.get("message")))
    if event["status"] == TIMEOUT:
        raise VideoInferTimeoutError(
            f"Video inference job {job_id} was still running at the deadline; it keeps running on the "
            "service. Raise the timeout, or wait for it again with VideoInferJobSensor."
        )
    raise VideoInferError(f"Waiting for video inference job {job_id} failed: {event.get('message')}")

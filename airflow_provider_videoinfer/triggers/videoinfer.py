"""The trigger that waits for a job in the triggerer, without holding a worker slot."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import VideoInferConfigError, VideoInferError
from airflow_provider_videoinfer.hooks.videoinfer import SINGLE_ATTEMPT, VideoInferAsyncClient
from airflow_provider_videoinfer.hooks.waiting import JobWait
from airflow_provider_videoinfer.triggers.events import EventKind, JobEvent


class VideoInferJobTrigger(BaseTrigger):
    """Poll one job until it stops, then yield exactly one event: a :class:`JobEvent` payload.

    The first poll comes one to two poll intervals after the trigger starts (see ``run``).
    Outages are ridden out until the deadline (see :mod:`~airflow_provider_videoinfer.hooks.waiting`).

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
        self.job_id = contract.validate_job_id(job_id)
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
        except VideoInferError as err:  # a connection without an API key, or with a bad extra
            yield TriggerEvent(JobEvent.from_error(self.job_id, err).to_payload())
            return
        except AirflowException as err:  # no such connection
            missing = VideoInferConfigError(f"connection {self.videoinfer_conn_id!r}: {err}")
            yield TriggerEvent(JobEvent.from_error(self.job_id, missing).to_payload())
            return
        try:
            event = await self._wait(client)
        finally:
            await client.aclose()
        yield TriggerEvent(event.to_payload())

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but not past the deadline."""
        if self.deadline is not None:
            seconds = max(0.0, min(seconds, self.deadline - time.time()))
        await asyncio.sleep(seconds)

    async def _wait(self, client: VideoInferAsyncClient) -> JobEvent:
        wait = JobWait(self.job_id, self.poll_interval, self.deadline, client.settings.retry, self.log)
        code = None
        while True:
            try:
                state = await client.get_job(self.job_id, policy=SINGLE_ATTEMPT)
            except VideoInferError as err:
                try:
                    wait.failed(err)
                except VideoInferError as definite:
                    return JobEvent.from_error(self.job_id, definite)
            else:
                wait.answered(state)
                if state.status.is_terminal:
                    return JobEvent.from_state(state)
                code = state.code
            if wait.expired:
                return JobEvent(EventKind.TIMEOUT, self.job_id, code=code, message=wait.timeout_reason())
            await asyncio.sleep(wait.next_delay())

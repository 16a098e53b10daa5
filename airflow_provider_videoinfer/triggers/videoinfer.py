"""The trigger that waits for a job in the triggerer, without holding a worker slot."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.compat import AirflowException
from airflow_provider_videoinfer.exceptions import VideoInferConfigError, VideoInferError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient
from airflow_provider_videoinfer.triggers.events import JobEvent


class VideoInferJobTrigger(BaseTrigger):
    """Poll one job until it stops, then yield exactly one event: a :class:`JobEvent` payload.

    Each poll is one attempt, and :func:`~airflow_provider_videoinfer.hooks.waiting.step` decides
    what follows it: the first poll comes one to two poll intervals after the trigger starts
    (:func:`~airflow_provider_videoinfer.hooks.waiting.first_poll`), and outages are ridden out
    until the deadline.

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
        now = time.time()
        wait = waiting.Wait(self.job_id, self.poll_interval, now, self.deadline)
        first = waiting.first_poll(wait, now, random.random())
        waiting.report(self.log, first, now)
        await asyncio.sleep(first.delay)
        # Read after the first sleep, so that many triggers starting at once do not all read their
        # connection at once.
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
            event = await self._wait(client, dataclasses.replace(wait, retry=client.settings.retry))
        finally:
            await client.aclose()
        yield TriggerEvent(event.to_payload())

    async def _wait(self, client: VideoInferAsyncClient, wait: waiting.Wait) -> JobEvent:
        outage: waiting.Outage | None = None
        while True:
            poll = await client.poll_job(self.job_id)
            now = time.time()
            outcome = waiting.step(wait, outage, poll, now, random.random())
            waiting.report(self.log, outcome, now)
            if not isinstance(outcome, waiting.PollAgain):
                return JobEvent.from_outcome(outcome)
            outage = outcome.outage
            await asyncio.sleep(outcome.delay)

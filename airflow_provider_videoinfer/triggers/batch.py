"""The trigger that waits for a Batch Processing job in the triggerer, and aborts it when a person
kills the deferred task (Airflow 3.3+)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videoinfer.compat import AirflowException
from airflow_provider_videoinfer.contract import validate_batch_job_id
from airflow_provider_videoinfer.exceptions import VideoInferConfigError, VideoInferError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchAsyncClient, log_poll, wait_state
from airflow_provider_videoinfer.triggers.events import JobEvent
from videoinfer_contract import batch as wire


class VideoInferBatchJobTrigger(BaseTrigger):
    """Poll one batch job until it stops, then yield exactly one event (a :class:`JobEvent` payload:
    ``succeeded``, ``failed`` with code 2, or 3 when aborted, ``timeout`` or ``error``).

    The same wait as every other (:func:`~airflow_provider_videoinfer.hooks.waiting.step`): the first
    poll one to two intervals after the trigger starts, outages ridden out until the deadline. Each
    poll of a running job also reads its stage and progress for the triggerer's log.

    On Airflow 3.3+, when a person marks the deferred task failed or succeeded, or clears it, the
    triggerer calls :meth:`on_kill`, which aborts the job (when ``abort_on_kill``). A triggerer that
    restarts or hands the trigger to another leaves the job running, and so does the deadline: the
    task aborts it when it resumes with the ``timeout`` event.

    :param job_id: the job to wait for.
    :param videoinfer_conn_id: the connection to read the API key from (the key is never serialized).
    :param poll_interval: seconds between polls.
    :param deadline: a wall-clock UNIX time after which the trigger gives up with a ``timeout`` event.
    :param abort_on_kill: abort the job when a person kills the deferred task (the run operator's
        trigger does; the sensor's, which waits for a job it did not create, does not by default).
    """

    def __init__(
        self,
        job_id: str,
        videoinfer_conn_id: str = "videoinfer_default",
        poll_interval: float = 60.0,
        deadline: float | None = None,
        abort_on_kill: bool = True,
    ) -> None:
        super().__init__()
        self.job_id = validate_batch_job_id(job_id)
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.abort_on_kill = bool(abort_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the kwargs that rebuild this trigger (never the key nor a signed URL)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "videoinfer_conn_id": self.videoinfer_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "abort_on_kill": self.abort_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job stops or the deadline passes; yield one event."""
        now = time.time()
        wait = waiting.Wait(self.job_id, self.poll_interval, now, self.deadline)
        first = waiting.first_poll(wait, now, random.random())
        waiting.report(self.log, first, now)
        await asyncio.sleep(first.delay)
        try:
            client = await VideoInferBatchAsyncClient.from_conn_id(self.videoinfer_conn_id)
        except VideoInferError as err:
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

    async def _wait(self, client: VideoInferBatchAsyncClient, wait: waiting.Wait) -> JobEvent:
        outage: waiting.Outage | None = None
        while True:
            poll = await client.poll_batch_job(self.job_id)
            now = time.time()
            state = wait_state(poll) if isinstance(poll, wire.BatchJob) else poll
            outcome = waiting.step(wait, outage, state, now, random.random())
            progress = None
            if isinstance(poll, wire.BatchJob) and isinstance(outcome, waiting.PollAgain):
                try:
                    progress = await client.progress(poll)
                except VideoInferError:
                    progress = None  # a courtesy for the log: the wait goes on without it
            log_poll(self.log, outcome, now, progress)
            if not isinstance(outcome, waiting.PollAgain):
                return JobEvent.from_outcome(outcome)
            outage = outcome.outage
            await asyncio.sleep(outcome.delay)

    async def on_kill(self) -> None:
        """Abort the job: a person marked the deferred task failed or succeeded, or cleared it (Airflow 3.3+).

        Logged with the job id; a failure to abort is logged too (the triggerer bounds this call's time).
        """
        if not self.abort_on_kill:
            self.log.info("The task waiting for batch job %s was killed; the job was left running.", self.job_id)
            return
        client = await VideoInferBatchAsyncClient.from_conn_id(self.videoinfer_conn_id)
        try:
            await client.abort_job(self.job_id)
        except VideoInferError as err:
            self.log.warning("The deferred task was killed, but aborting batch job %s failed: %s", self.job_id, err)
            return
        finally:
            await client.aclose()
        self.log.warning(
            "The deferred task was killed (marked failed or succeeded, or cleared): aborted batch job %s, whose "
            "machines stop being paid for.",
            self.job_id,
        )

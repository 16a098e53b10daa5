"""The triggers of Batch Processing: the wait for a job (which aborts it when a person kills the
deferred task, Airflow 3.3+), and the wait for a staging batch to hold every video."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videoinfer.compat import AirflowException
from airflow_provider_videoinfer.contract import validate_batch_job_id, validate_staging_batch_id
from airflow_provider_videoinfer.exceptions import VideoInferConfigError, VideoInferError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchAsyncClient, log_poll, wait_state
from airflow_provider_videoinfer.triggers.events import CountEvent, CountKind, JobEvent
from videoinfer_contract import batch as wire
from videoinfer_contract.redaction import redact


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


def count_step(
    wait: waiting.Wait,
    outage: waiting.Outage | None,
    poll: int | VideoInferError,
    last: int | None,
    expected: int,
    now: float,
    jitter: float,
) -> CountEvent | waiting.PollAgain:
    """Decide what follows one read of a staging batch's count. Pure: no clock, no I/O, no randomness.

    The pacing of every wait (:mod:`~airflow_provider_videoinfer.hooks.waiting`): a transient error
    (5xx, 408, 429, a connection error) leaves the count unknown and the next read comes after
    :func:`~airflow_provider_videoinfer.hooks.waiting.backoff`; any other error ends the wait.

    :param wait: the wait's settings (its ``job_id`` is the batch id; ``deadline`` is required).
    :param outage: the outage under way before this read (the previous :class:`PollAgain`'s), or None.
    :param poll: the count read, or the error the read raised.
    :param last: the last count read before this one; None when none was.
    :param expected: how many videos the batch must hold.
    :param now: wall-clock UNIX time just after the read.
    :param jitter: a number in [0, 1].
    """
    deadline = wait.deadline if wait.deadline is not None else now
    count = poll if isinstance(poll, int) else last
    if isinstance(poll, VideoInferError):
        if not waiting.is_transient(poll):
            return CountEvent.from_error(wait.job_id, expected, count, poll)
        outage = waiting.Outage(
            since=now if outage is None else outage.since,
            failed_polls=1 if outage is None else outage.failed_polls + 1,
            last_error=redact(str(poll)),
        )
        if now >= deadline:
            reason = (
                f"after {waiting.duration(now - wait.started)}, at the deadline, the service having been unreachable "
                f"for {waiting.duration(now - outage.since)} (last error: {outage.last_error})"
            )
            return CountEvent(CountKind.TIMEOUT, wait.job_id, expected, count, message=reason)
        retry_after = getattr(poll, "retry_after", None)
        delay = waiting.backoff(wait, outage.failed_polls, retry_after, jitter, reached=waiting.reached_service(poll))
        return waiting.PollAgain(wait.job_id, min(delay, deadline - now), waiting.Reason.UNKNOWN, outage=outage)
    if poll >= expected:
        return CountEvent(CountKind.HELD, wait.job_id, expected, poll)
    if now >= deadline:
        reason = f"after {waiting.duration(now - wait.started)}, at the deadline"
        return CountEvent(CountKind.TIMEOUT, wait.job_id, expected, poll, message=reason)
    delay = min(wait.poll_interval, deadline - now)
    return waiting.PollAgain(wait.job_id, delay, waiting.Reason.RUNNING, recovered=outage)


def log_count(log: Any, outcome: CountEvent | waiting.PollAgain, count: int | None, now: float) -> None:
    """Log what :func:`count_step` decided: a recovery, an outage, or the count so far.

    :param log: the task's or the trigger's logger.
    :param outcome: what the step decided.
    :param count: the count the step saw (None when unknown).
    :param now: the step's ``now``.
    """
    if isinstance(outcome, CountEvent):
        if outcome.kind is CountKind.HELD:
            log.info("Batch %s holds its %d video(s).", outcome.batch_id, outcome.expected)
        return
    if outcome.recovered is not None:
        log.info(
            "Batch %s: the service answers again after %s unreachable (%d failed read(s)).",
            outcome.job_id,
            waiting.duration(now - outcome.recovered.since),
            outcome.recovered.failed_polls,
        )
    if outcome.reason is waiting.Reason.UNKNOWN and outcome.outage is not None:
        log.warning(
            "Could not read the count of batch %s (%s in a row, for %s): %s; next read in %s.",
            outcome.job_id,
            outcome.outage.failed_polls,
            waiting.duration(now - outcome.outage.since),
            outcome.outage.last_error,
            waiting.duration(outcome.delay),
        )
        return
    log.info(
        "Batch %s holds %s video(s) so far; next read in %s.", outcome.job_id, count, waiting.duration(outcome.delay)
    )


class VideoInferBatchCountTrigger(BaseTrigger):
    """Read a staging batch's count until it holds ``expected`` videos, then yield exactly one event
    (a :class:`~airflow_provider_videoinfer.triggers.events.CountEvent` payload: ``held``,
    ``timeout`` or ``error``).

    The first read comes as the trigger starts (no one read the count just before the deferral);
    then one every ``poll_interval``, outages ridden out until the deadline (:func:`count_step`).

    :param batch_id: the staging batch.
    :param expected: how many videos it must hold.
    :param videoinfer_conn_id: the connection to read the API key from (the key is never serialized).
    :param poll_interval: seconds between two reads.
    :param deadline: the wall-clock UNIX time after which the trigger gives up with a ``timeout`` event.
    """

    def __init__(
        self,
        batch_id: str,
        expected: int,
        deadline: float,
        videoinfer_conn_id: str = "videoinfer_default",
        poll_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.batch_id = validate_staging_batch_id(batch_id)
        self.expected = int(expected)
        self.deadline = float(deadline)
        self.videoinfer_conn_id = videoinfer_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the kwargs that rebuild this trigger (never the key nor a URL)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_id": self.batch_id,
                "expected": self.expected,
                "deadline": self.deadline,
                "videoinfer_conn_id": self.videoinfer_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Read the count until the batch holds every video or the deadline passes; yield one event."""
        try:
            client = await VideoInferBatchAsyncClient.from_conn_id(self.videoinfer_conn_id)
        except VideoInferError as err:
            yield TriggerEvent(CountEvent.from_error(self.batch_id, self.expected, None, err).to_payload())
            return
        except AirflowException as err:  # no such connection
            missing = VideoInferConfigError(f"connection {self.videoinfer_conn_id!r}: {err}")
            yield TriggerEvent(CountEvent.from_error(self.batch_id, self.expected, None, missing).to_payload())
            return
        wait = waiting.Wait(self.batch_id, self.poll_interval, time.time(), self.deadline, client.settings.retry)
        try:
            event = await self._wait(client, wait)
        finally:
            await client.aclose()
        yield TriggerEvent(event.to_payload())

    async def _wait(self, client: VideoInferBatchAsyncClient, wait: waiting.Wait) -> CountEvent:
        outage: waiting.Outage | None = None
        last: int | None = None
        while True:
            poll = await client.poll_count(self.batch_id)
            now = time.time()
            outcome = count_step(wait, outage, poll, last, self.expected, now, random.random())
            last = poll if isinstance(poll, int) else last
            log_count(self.log, outcome, last, now)
            if isinstance(outcome, CountEvent):
                return outcome
            outage = outcome.outage
            await asyncio.sleep(outcome.delay)

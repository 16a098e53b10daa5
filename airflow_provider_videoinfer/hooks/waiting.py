"""One wait design for every way of waiting for a job: the trigger, the in-worker wait, the sensor.

A wait ends early only on a definite answer: success, a failure status, or an error that a
retry cannot fix (401/403, 404, any other 4xx but 429, bad input). Anything transient (refused
or reset connections, timeouts, 429, 5xx, malformed answers) means "state unknown": the wait
logs a warning saying how long the service has been unreachable and polls again after a
backoff (``Retry-After`` honoured, never more than :data:`MAX_BACKOFF_INTERVALS` poll
intervals). There is no separate bound on how long the service may stay unreachable: the
wait's own deadline (the sensor's ``timeout``, the operator's ``wait_timeout``, 7 days by
default) is the only one, so an hour-long outage is ridden out.

Pure bookkeeping, no I/O: the loops that poll (sync and async) live with their transports.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from typing import Any

from airflow_provider_videoinfer.contract import JobState
from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferResponseError,
    VideoInferTimeoutError,
    VideoInferTransientError,
)
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from videoinfer_contract.redaction import redact

#: The longest pause between two tries during an outage, in poll intervals.
MAX_BACKOFF_INTERVALS = 3.0


def is_transient(err: BaseException) -> bool:
    """Whether an error of one poll leaves the job's state unknown (so the wait goes on)."""
    return isinstance(err, (VideoInferTransientError, VideoInferResponseError))


class JobWait:
    """The state of one wait for one job: deadline, outage, next delay, and its log lines.

    :param job_id: the job waited for.
    :param poll_interval: seconds between polls while the job runs.
    :param deadline: wall-clock UNIX time at which the wait gives up; None never.
    :param backoff: its ``initial_wait`` and ``max_wait`` shape the pauses during an outage.
    :param log: where the wait tells its story.
    :param unreachable_since: wall-clock time of the first failed poll of an outage already
        under way (e.g. recorded by an earlier poke of a rescheduled sensor).
    :param failed_polls: how many polls of that outage failed already.
    """

    def __init__(
        self,
        job_id: str,
        poll_interval: float,
        deadline: float | None,
        backoff: RetryPolicy,
        log: logging.Logger | Any,
        *,
        unreachable_since: float | None = None,
        failed_polls: int = 0,
    ) -> None:
        self.job_id = job_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.backoff = backoff
        self.log = log
        self.started = time.time()
        self.unreachable_since = unreachable_since
        self.failed_polls = failed_polls if unreachable_since is not None else 0
        self.last_error: str | None = None
        self._delay = poll_interval

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.time() >= self.deadline

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll: never past the deadline."""
        delay = self._delay
        if self.deadline is not None:
            delay = min(delay, max(0.0, self.deadline - time.time()))
        return delay

    def answered(self, state: JobState) -> None:
        """Record a poll that got the job's state; log the recovery, and the state while running."""
        if self.unreachable_since is not None:
            self.log.info(
                "Job %s: the service answers again after %s unreachable (%s).",
                self.job_id,
                _duration(time.time() - self.unreachable_since),
                _polls(self.failed_polls),
            )
        self.unreachable_since, self.failed_polls, self.last_error = None, 0, None
        self._delay = self.poll_interval
        if not state.status.is_terminal:
            self.log.info("Job %s is running; next poll in %s.", self.job_id, _duration(self.next_delay()))

    def failed(self, err: VideoInferError) -> None:
        """Record a poll that got no usable answer: raise ``err`` when it is definite, else log it.

        :param err: the poll's error.
        """
        if not is_transient(err):
            raise err
        now = time.time()
        if self.unreachable_since is None:
            self.unreachable_since = now
        self.failed_polls += 1
        self.last_error = redact(str(err))
        self._delay = self._backoff(err)
        self.log.warning(
            "Job %s: poll failed; the service has been unreachable for %s (%s in a row); next try in %s. %s",
            self.job_id,
            _duration(now - self.unreachable_since),
            _polls(self.failed_polls),
            _duration(self.next_delay()),
            self.last_error,
        )

    def timeout_reason(self) -> str:
        """Why the wait gave up at its deadline, for messages: how long, and what was known."""
        waited = _duration(time.time() - self.started)
        if self.unreachable_since is None:
            return f"was still running after {waited}, at the deadline"
        outage = _duration(time.time() - self.unreachable_since)
        return (
            f"had not been seen to finish after {waited}, at the deadline: its state was unknown, the service "
            f"having been unreachable for {outage} (last error: {self.last_error})"
        )

    def timeout_error(self) -> VideoInferTimeoutError:
        """The error for a wait that reached its deadline while the job ran (or its state was unknown)."""
        return VideoInferTimeoutError(timeout_message(self.job_id, self.timeout_reason()))

    def _backoff(self, err: VideoInferError) -> float:
        cap = min(self.backoff.max_wait, MAX_BACKOFF_INTERVALS * self.poll_interval)
        cap = max(cap, self.backoff.initial_wait)
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            return max(0.0, min(float(retry_after), max(cap, self.poll_interval)))
        exponential = self.backoff.initial_wait * 2.0 ** min(self.failed_polls - 1, 30)
        # Jitter spreads thousands of waits that all see the same outage end.
        return min(cap, exponential) * random.uniform(0.75, 1.0)


def _polls(count: int) -> str:
    return f"{count} failed poll{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return str(datetime.timedelta(seconds=round(seconds)))


def timeout_message(job_id: str, reason: str) -> str:
    """The message of a wait that reached its deadline; shared by every way of waiting.

    :param job_id: the job.
    :param reason: from :meth:`JobWait.timeout_reason`.
    """
    return (
        f"Video inference job {job_id} {reason}. The job keeps running on the service: raise the timeout, "
        "or wait for it again with VideoInferJobSensor."
    )

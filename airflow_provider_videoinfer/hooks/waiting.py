"""The one wait for a job: a pure step, shared by the trigger, the in-worker wait and the sensor.

Each poll of a wait is a single attempt. Its answer (a job state, or the error the poll raised)
goes into :func:`step`, which says what happens next: :class:`Done` (the output URL),
:class:`Failed` (the job failed, or an error a retry cannot fix), :class:`TimedOut` (the
deadline passed), or :class:`PollAgain` after a delay. The step reads no clock and does no
I/O: the caller passes ``now`` and a random ``jitter``, polls, sleeps (or lets Airflow's
sensor loop sleep or reschedule) and logs with :func:`report`.

A wait ends early only on a definite answer: success, a failure status, or an error that a
retry cannot fix (401/403, 404, any other 4xx but 408 and 429, bad input). Anything transient
(refused or reset connections, timeouts, 408, 429, any 5xx, malformed answers) means "state
unknown": an :class:`Outage` begins or goes on, and the next poll comes after :func:`backoff`:
no sooner than ``poll_interval`` when the failed poll reached the service (the service's rate
limit counts it), longer when a ``Retry-After`` asks. There is no separate bound on how long the
service may stay unreachable: the wait's own deadline is the only one, so an hour-long outage is
ridden out.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any, NoReturn

from airflow_provider_videoinfer.contract import JobState, JobStatus
from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferResponseError,
    VideoInferTimeoutError,
    VideoInferTransientError,
)
from airflow_provider_videoinfer.hooks.responses import job_failed
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from videoinfer_contract.redaction import redact

#: The longest pause between two polls during an outage, in poll intervals (a longer Retry-After is honoured).
MAX_BACKOFF_INTERVALS = 3.0
#: The longest ``Retry-After`` honoured, in seconds; the wait's deadline bounds it too.
MAX_RETRY_AFTER = 3600.0


def is_transient(err: BaseException) -> bool:
    """Whether an error of one poll leaves the job's state unknown (so the wait goes on)."""
    return isinstance(err, (VideoInferTransientError, VideoInferResponseError))


def reached_service(err: BaseException) -> bool:
    """Whether a failed poll reached the service (an answer came, or the request was sent), so that the
    service's rate limit counted it; False only when it surely never left (refused, unresolved)."""
    return getattr(err, "http_status", None) is not None or getattr(err, "request_sent", True)


@dataclass(frozen=True)
class Wait:
    """What one wait for one job is set to; fixed for the whole wait.

    :param job_id: the job waited for.
    :param poll_interval: seconds between polls while the job runs.
    :param started: wall-clock UNIX time at which the wait began (named in the timeout message).
    :param deadline: wall-clock UNIX time at which the wait gives up; None waits as long as the job runs.
    :param retry: the connection's retry policy: its ``initial_wait`` is the pause after an
        outage's first failed poll, doubled with each next one up to its ``max_wait``
        (see :func:`backoff`); a poll itself is never retried.
    """

    job_id: str
    poll_interval: float
    started: float
    deadline: float | None = None
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class Outage:
    """The service has left the job's state unknown since ``since``: carried from poll to poll.

    :param since: wall-clock UNIX time of the outage's first failed poll.
    :param failed_polls: how many polls of it failed.
    :param last_error: the last failed poll's error, redacted ("" when not known, e.g. restored
        from a rescheduled sensor's store).
    """

    since: float
    failed_polls: int = 1
    last_error: str = ""


class Reason(enum.StrEnum):
    """Why a wait polls again."""

    #: No poll yet: the trigger's first poll (whoever deferred has just polled or submitted).
    FIRST = "first"
    #: The job is running.
    RUNNING = "running"
    #: The poll failed with a transient error: the job's state is unknown.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PollAgain:
    """Poll again after ``delay`` seconds.

    :param job_id: the job.
    :param delay: seconds until the next poll (already kept short of the deadline).
    :param reason: running, state unknown, or the first poll.
    :param outage: the outage under way, for the next :func:`step`; None while the service answers.
    :param recovered: the outage that this poll ended, if any.
    """

    job_id: str
    delay: float
    reason: Reason
    outage: Outage | None = None
    recovered: Outage | None = None


@dataclass(frozen=True)
class Done:
    """The job succeeded.

    :param state: its last state, with the output URL.
    :param recovered: the outage that this poll ended, if any.
    """

    state: JobState
    recovered: Outage | None = None

    @property
    def job_id(self) -> str:
        """The job."""
        return self.state.job_id

    @property
    def output_url(self) -> str:
        """The result's signed URL."""
        return self.state.output_url or ""

    def result(self) -> JobState:
        """The job's final state."""
        return self.state


@dataclass(frozen=True)
class Failed:
    """The wait ends with an error: the job failed, or a poll got an answer no retry can fix.

    :param job_id: the job.
    :param error: the provider's error to raise.
    :param state: the job's state when the job itself failed; None for an error answer.
    :param recovered: the outage that this poll ended, if any.
    """

    job_id: str
    error: VideoInferError
    state: JobState | None = None
    recovered: Outage | None = None

    def result(self) -> NoReturn:
        """Raise the error."""
        raise self.error


@dataclass(frozen=True)
class TimedOut:
    """The deadline passed while the job ran, or while its state was unknown.

    :param job_id: the job (it keeps running on the service).
    :param reason: how long the wait lasted and what was known, completing "Job <id> ...".
    :param code: the job's last status code, when the last poll got one.
    :param recovered: the outage that this poll ended, if any.
    """

    job_id: str
    reason: str
    code: int | None = None
    recovered: Outage | None = None

    @property
    def message(self) -> str:
        """The whole message, as every way of waiting words it."""
        return timeout_message(self.job_id, self.reason)

    def result(self) -> NoReturn:
        """Raise the provider's error for this timeout."""
        raise VideoInferTimeoutError(self.message)


#: What :func:`step` decides.
Outcome = PollAgain | Done | Failed | TimedOut


def step(wait: Wait, outage: Outage | None, poll: JobState | VideoInferError, now: float, jitter: float) -> Outcome:
    """Decide what follows one poll. Pure: no clock, no I/O, no randomness of its own.

    :param wait: the wait's settings.
    :param outage: the outage under way before this poll (the previous :class:`PollAgain`'s), or None.
    :param poll: the job's state, or the error the poll raised.
    :param now: wall-clock UNIX time just after the poll.
    :param jitter: a number in [0, 1], e.g. ``random.random()``; spreads the pauses of waits that
        all see the same outage end.
    """
    expired = wait.deadline is not None and now >= wait.deadline
    if isinstance(poll, VideoInferError):
        if not is_transient(poll):
            return Failed(wait.job_id, poll)
        outage = Outage(
            since=now if outage is None else outage.since,
            failed_polls=1 if outage is None else outage.failed_polls + 1,
            last_error=redact(str(poll)),
        )
        if expired:
            return TimedOut(wait.job_id, _unknown_reason(wait, outage, now))
        retry_after = getattr(poll, "retry_after", None)
        delay = backoff(wait, outage.failed_polls, retry_after, jitter, reached=reached_service(poll))
        return PollAgain(wait.job_id, _before_deadline(wait, delay, now), Reason.UNKNOWN, outage=outage)
    if poll.status is JobStatus.SUCCEEDED:
        return Done(poll, recovered=outage)
    if poll.status is JobStatus.FAILED:
        return Failed(wait.job_id, job_failed(poll), poll, recovered=outage)
    if expired:
        reason = f"was still running after {duration(now - wait.started)}, at the deadline"
        return TimedOut(wait.job_id, reason, poll.code, recovered=outage)
    return PollAgain(wait.job_id, _before_deadline(wait, wait.poll_interval, now), Reason.RUNNING, recovered=outage)


def first_poll(wait: Wait, now: float, jitter: float) -> PollAgain:
    """When a trigger polls first: one to two poll intervals after it starts, never past the deadline.

    Whoever deferred has just polled or submitted, and the hosted API allows one poll a minute per
    job; the random length spreads many triggers (e.g. after a triggerer restart), so that they do
    not poll in lockstep and starve the event loop.

    :param wait: the wait's settings.
    :param now: wall-clock UNIX time.
    :param jitter: a number in [0, 1]: 0 polls after one interval, 1 after two.
    """
    delay = wait.poll_interval * (1.0 + jitter)
    return PollAgain(wait.job_id, _before_deadline(wait, delay, now), Reason.FIRST)


def backoff(wait: Wait, failed_polls: int, retry_after: float | None, jitter: float, *, reached: bool = True) -> float:
    """Seconds between two polls of an outage.

    After a poll that reached the service (any HTTP answer: a 429 above all, a 5xx; or a request sent
    whose answer was lost), the next comes no sooner than one poll interval, then two, then
    :data:`MAX_BACKOFF_INTERVALS`: the service's rate limit counts every poll it saw. A
    ``Retry-After`` is what the service asked for, so the pause is at least that long (up to
    :data:`MAX_RETRY_AFTER`); ``Retry-After: 0`` does not shorten it below the poll interval.

    After a poll that never reached the service (connection refused, name not resolved), the retry
    policy's ``initial_wait`` doubles with each failed poll up to its ``max_wait`` and to
    :data:`MAX_BACKOFF_INTERVALS` poll intervals, times a jitter factor from 0.75 to 1.

    :param wait: the wait's settings.
    :param failed_polls: failed polls of this outage so far, this one included (1 or more).
    :param retry_after: seconds the service asked to wait, if it said.
    :param jitter: a number in [0, 1].
    :param reached: whether the failed poll reached the service (:func:`reached_service`).
    """
    ceiling = MAX_BACKOFF_INTERVALS * wait.poll_interval
    doubling = 2.0 ** min(max(failed_polls, 1) - 1, 30)
    if reached:
        delay = min(wait.poll_interval * doubling * (1.0 + 0.25 * jitter), ceiling)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        return delay
    return min(wait.retry.initial_wait * doubling, wait.retry.max_wait, ceiling) * (0.75 + 0.25 * jitter)


def _before_deadline(wait: Wait, delay: float, now: float) -> float:
    if wait.deadline is None:
        return delay
    return max(0.0, min(delay, wait.deadline - now))


def _unknown_reason(wait: Wait, outage: Outage, now: float) -> str:
    return (
        f"had not been seen to finish after {duration(now - wait.started)}, at the deadline: its state was "
        f"unknown, the service having been unreachable for {duration(now - outage.since)} "
        f"(last error: {outage.last_error})"
    )


def timeout_message(job_id: str, reason: str) -> str:
    """The message of a wait that reached its deadline; shared by every way of waiting.

    :param job_id: the job.
    :param reason: :attr:`TimedOut.reason`.
    """
    return (
        f"Video inference job {job_id} {reason}. The job keeps running on the service: raise the timeout, "
        "or wait for it again with VideoInferJobSensor."
    )


def report(log: Any, outcome: Outcome, now: float, *, deferring: bool = False) -> None:
    """Log what a step decided: a recovery, the state, and the real time of the next poll.

    :param log: a logger (the task's, the trigger's or the hook's).
    :param outcome: what :func:`step` or :func:`first_poll` returned.
    :param now: the ``now`` passed to the step, from which the delay counts.
    :param deferring: the wait goes on in the triggerer, which picks the next poll's time itself.
    """
    recovered = outcome.recovered
    if recovered is not None:
        log.info(
            "Job %s: the service answers again after %s unreachable (%s).",
            outcome.job_id,
            duration(now - recovered.since),
            _polls(recovered.failed_polls),
        )
    if not isinstance(outcome, PollAgain):
        return
    then = "the trigger polls next" if deferring else f"next poll in {_when(outcome.delay, now)}"
    if outcome.reason is Reason.UNKNOWN and outcome.outage is not None:
        log.warning(
            "Job %s: poll failed; the service has been unreachable for %s (%s in a row); %s. %s",
            outcome.job_id,
            duration(now - outcome.outage.since),
            _polls(outcome.outage.failed_polls),
            then,
            outcome.outage.last_error,
        )
    elif deferring:
        return  # the deferral's own line says how the trigger polls
    elif outcome.reason is Reason.FIRST:
        log.info("Job %s: first poll in %s.", outcome.job_id, _when(outcome.delay, now))
    else:
        log.info("Job %s is running; %s.", outcome.job_id, then)


def _when(delay: float, now: float) -> str:
    at = datetime.datetime.fromtimestamp(now + delay, datetime.UTC)
    return f"{duration(delay)}, at {at:%H:%M:%S} UTC"


def _polls(count: int) -> str:
    return f"{count} failed poll{'' if count == 1 else 's'}"


def duration(seconds: float) -> str:
    """A duration for log lines and messages: ``0.5 s``, ``56 s``, ``0:02:11``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return str(datetime.timedelta(seconds=round(seconds)))

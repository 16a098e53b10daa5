"""The wait's pure step, table by table: every kind of answer, outages, backoff, deadlines, log lines.

No server and no clock: ``now`` and ``jitter`` are passed in, so each row states exactly what
the trigger, the in-worker wait and the sensor do after one poll.
"""

from __future__ import annotations

import logging

import pytest

from airflow_provider_videoinfer.contract import JobState, JobStatus
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferConfigError,
    VideoInferConnectionError,
    VideoInferError,
    VideoInferInvalidRequestError,
    VideoInferJobFailedError,
    VideoInferMalformedResponseError,
    VideoInferNotFoundError,
    VideoInferRateLimitError,
    VideoInferResponseError,
    VideoInferServerError,
    VideoInferTimeoutError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.waiting import (
    MAX_BACKOFF_INTERVALS,
    Done,
    Failed,
    Outage,
    PollAgain,
    Reason,
    TimedOut,
    Wait,
    backoff,
    first_poll,
    reached_service,
    report,
    step,
)
from airflow_provider_videoinfer.triggers.events import EventKind, JobEvent

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
JOB = "job-1"
RUNNING = JobState(JOB, JobStatus.RUNNING, 1)
SUCCEEDED = JobState(JOB, JobStatus.SUCCEEDED, 0, output_url="https://results.example/r.json?sig=1")
FAILED = JobState(JOB, JobStatus.FAILED, 4, error="model 'x' not found")
OUTAGE = Outage(since=T0 - 100, failed_polls=3, last_error="earlier")


def wait(poll_interval: float = 60.0, deadline: float | None = None, initial: float = 1.0, most: float = 60.0) -> Wait:
    return Wait(JOB, poll_interval, T0 - 1000, deadline, RetryPolicy(initial_wait=initial, max_wait=most))


TRANSIENT = {
    "refused": VideoInferConnectionError("status of job job-1: nothing answers", request_sent=False),
    "503": VideoInferServerError("status of job job-1: HTTP 503", http_status=503),
    "429": VideoInferRateLimitError("status of job job-1: HTTP 429", http_status=429),
    "not JSON": VideoInferMalformedResponseError("status of job job-1: not JSON", http_status=200),
    "no status": VideoInferResponseError("status of job job-1: no integer status"),
}
DEFINITE = {
    "401": VideoInferAuthError("status of job job-1: refused the API key"),
    "404": VideoInferNotFoundError("status of job job-1: not found (HTTP 404)"),
    "400": VideoInferInvalidRequestError("status of job job-1: HTTP 400"),
    "config": VideoInferConfigError("connection 'x' has no API key"),
    "bad id": VideoInferValidationError("job_id must not be empty"),
    "other": VideoInferError("something no wait can outlast"),
}


# --- a job state in ---


@pytest.mark.parametrize(
    ("outage", "deadline", "expected"),
    [
        (None, None, PollAgain(JOB, 60.0, Reason.RUNNING)),
        (OUTAGE, None, PollAgain(JOB, 60.0, Reason.RUNNING, recovered=OUTAGE)),
        (None, T0 + 60, PollAgain(JOB, 60.0, Reason.RUNNING)),
        (None, T0 + 25, PollAgain(JOB, 25.0, Reason.RUNNING)),  # never past the deadline
        (None, T0 + 0.5, PollAgain(JOB, 0.5, Reason.RUNNING)),
    ],
)
def test_a_running_job_is_polled_again_after_the_poll_interval(outage, deadline, expected):
    assert step(wait(deadline=deadline), outage, RUNNING, T0, 0.3) == expected


@pytest.mark.parametrize("deadline", [None, T0 - 5, T0])
@pytest.mark.parametrize("outage", [None, OUTAGE])
def test_a_success_ends_the_wait_even_after_the_deadline(deadline, outage):
    outcome = step(wait(deadline=deadline), outage, SUCCEEDED, T0, 0.5)
    assert outcome == Done(SUCCEEDED, recovered=outage)
    assert outcome.output_url == SUCCEEDED.output_url and outcome.result() is SUCCEEDED


@pytest.mark.parametrize("deadline", [None, T0 - 5])
@pytest.mark.parametrize("outage", [None, OUTAGE])
def test_a_failed_job_ends_the_wait_with_its_code_and_reason(deadline, outage):
    outcome = step(wait(deadline=deadline), outage, FAILED, T0, 0.5)
    assert isinstance(outcome, Failed) and outcome.state is FAILED and outcome.recovered == outage
    assert isinstance(outcome.error, VideoInferJobFailedError)
    assert (outcome.error.job_id, outcome.error.code, outcome.error.reason) == (JOB, 4, "model 'x' not found")
    with pytest.raises(VideoInferJobFailedError, match="failed with status 4: model 'x' not found"):
        outcome.result()


@pytest.mark.parametrize(("outage", "now"), [(None, T0), (None, T0 + 30), (OUTAGE, T0)])
def test_a_running_job_at_the_deadline_times_out(outage, now):
    outcome = step(wait(deadline=T0), outage, RUNNING, now, 0.5)
    assert isinstance(outcome, TimedOut) and outcome.code == 1 and outcome.recovered == outage
    assert outcome.reason == f"was still running after {'0:16:40' if now == T0 else '0:17:10'}, at the deadline"
    with pytest.raises(VideoInferTimeoutError, match="Video inference job job-1 was still running after") as err:
        outcome.result()
    assert "raise the timeout, or wait for it again with VideoInferJobSensor" in str(err.value)


# --- an error in ---


@pytest.mark.parametrize("name", TRANSIENT)
def test_a_transient_error_starts_an_outage(name):
    outcome = step(wait(), None, TRANSIENT[name], T0, 1.0)
    # Only a poll that never reached the service may come back sooner than the poll interval.
    delay = 1.0 if name == "refused" else 75.0
    assert outcome == PollAgain(JOB, delay, Reason.UNKNOWN, outage=Outage(T0, 1, str(TRANSIENT[name])))


@pytest.mark.parametrize("name", TRANSIENT)
def test_a_transient_error_during_an_outage_keeps_its_start_and_counts_the_poll(name):
    outcome = step(wait(), OUTAGE, TRANSIENT[name], T0, 1.0)
    assert isinstance(outcome, PollAgain) and outcome.reason is Reason.UNKNOWN and outcome.recovered is None
    assert outcome.outage == Outage(OUTAGE.since, 4, str(TRANSIENT[name]))
    # refused: initial 1 s doubled for the 2nd, 3rd and 4th failed poll; else three poll intervals
    assert outcome.delay == (8.0 if name == "refused" else 180.0)


@pytest.mark.parametrize("name", DEFINITE)
@pytest.mark.parametrize("outage", [None, OUTAGE])
def test_an_error_no_retry_can_fix_ends_the_wait_at_once(name, outage):
    outcome = step(wait(deadline=T0 + 999), outage, DEFINITE[name], T0, 0.5)
    assert outcome == Failed(JOB, DEFINITE[name])
    with pytest.raises(type(DEFINITE[name])):
        outcome.result()


@pytest.mark.parametrize("now", [T0, T0 + 1])
def test_an_unknown_state_at_the_deadline_times_out_naming_the_outage_and_its_last_error(now):
    outcome = step(wait(deadline=T0), OUTAGE, TRANSIENT["not JSON"], now, 0.5)
    assert isinstance(outcome, TimedOut) and outcome.code is None and outcome.recovered is None
    assert outcome.reason.startswith("had not been seen to finish after 0:16:")
    assert "its state was unknown, the service having been unreachable for" in outcome.reason
    assert outcome.reason.endswith("(last error: status of job job-1: not JSON)")


def test_a_transient_error_before_the_deadline_is_polled_again_no_later_than_the_deadline():
    outcome = step(wait(deadline=T0 + 0.25), None, TRANSIENT["refused"], T0, 1.0)
    assert isinstance(outcome, PollAgain) and outcome.delay == 0.25


def test_error_text_in_an_outage_is_redacted():
    leaky = VideoInferConnectionError("GET https://api.example/job?api_key=s3cret-key failed")
    outcome = step(wait(), None, leaky, T0, 0.5)
    assert isinstance(outcome, PollAgain) and outcome.outage is not None
    assert "s3cret-key" not in outcome.outage.last_error


@pytest.mark.parametrize("poll", [RUNNING, SUCCEEDED, FAILED, *TRANSIENT.values(), *DEFINITE.values()])
def test_the_step_is_pure(poll):
    """The same poll at the same time gives the same outcome (errors compared by their text)."""
    first, again = (step(wait(deadline=T0 + 9), OUTAGE, poll, T0, 0.5) for _ in range(2))
    assert repr(first) == repr(again)


def test_an_outage_then_a_recovery_walks_the_whole_story():
    w, now, outage, delays = wait(poll_interval=10.0, initial=1.0, most=60.0), T0, None, []
    for name in ("refused",) * 5 + ("503",) * 4:
        outcome = step(w, outage, TRANSIENT[name], now, 1.0)
        assert isinstance(outcome, PollAgain)
        delays.append(outcome.delay)
        outage, now = outcome.outage, now + outcome.delay
    # refused: the policy's doubling; then a 503 the service answered: three poll intervals at most
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert outage == Outage(T0, 9, str(TRANSIENT["503"]))
    outcome = step(w, outage, RUNNING, now, 1.0)
    assert outcome == PollAgain(JOB, 10.0, Reason.RUNNING, recovered=outage)


# --- the one backoff ---


@pytest.mark.parametrize(
    ("poll_interval", "initial", "most", "failed_polls", "jitter", "expected"),
    [
        (60, 1, 60, 1, 1.0, 1.0),
        (60, 1, 60, 2, 1.0, 2.0),
        (60, 1, 60, 6, 1.0, 32.0),
        (60, 1, 60, 7, 1.0, 60.0),  # the connection's retry_max_wait
        (60, 1, 60, 500, 1.0, 60.0),  # no overflow after days of outage
        (60, 1, 600, 12, 1.0, 180.0),  # three poll intervals at most
        (0.5, 1, 60, 1, 1.0, 1.0),  # ...even for the first pause
        (0.2, 1, 60, 1, 1.0, 0.6000000000000001),
        (60, 1, 60, 1, 0.0, 0.75),  # jitter: 75 to 100 % of the pause
        (60, 8, 60, 2, 0.5, 14.0),
        (60, 1, 60, 0, 1.0, 1.0),  # a count below 1 reads as the first failure
    ],
)
def test_a_poll_that_never_reached_the_service_backs_off_from_the_policy_up_to_three_intervals(
    poll_interval, initial, most, failed_polls, jitter, expected
):
    w = wait(poll_interval=poll_interval, initial=initial, most=most)
    assert backoff(w, failed_polls, None, jitter, reached=False) == pytest.approx(expected)
    assert backoff(w, failed_polls, None, jitter, reached=False) <= MAX_BACKOFF_INTERVALS * poll_interval


@pytest.mark.parametrize(
    ("failed_polls", "jitter", "expected"),
    [
        (1, 0.0, 60.0),  # never sooner than the poll interval: the service counted the poll
        (1, 1.0, 75.0),
        (2, 0.0, 120.0),
        (3, 0.0, 180.0),
        (3, 1.0, 180.0),  # three poll intervals at most
        (500, 0.5, 180.0),
        (0, 0.0, 60.0),
    ],
)
def test_a_poll_that_reached_the_service_is_followed_no_sooner_than_the_poll_interval(failed_polls, jitter, expected):
    w = wait(poll_interval=60, initial=1, most=60)
    assert backoff(w, failed_polls, None, jitter) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("poll_interval", "retry_after", "expected"),
    [
        (60, 30, 180.0),  # a shorter Retry-After does not shorten the backoff
        (60, 500, 500.0),  # a longer one is honoured...
        (60, 7200, 3600.0),  # ...up to an hour
        (60, 0, 180.0),  # Retry-After: 0 is not "poll again now"
        (60, -5, 180.0),
        (0.5, 0.1, 1.5),
    ],
)
def test_retry_after_is_the_least_pause_never_a_shorter_one(poll_interval, retry_after, expected):
    for jitter in (0.0, 1.0):
        assert backoff(wait(poll_interval=poll_interval), 3, retry_after, jitter) == expected


@pytest.mark.parametrize(
    ("error", "reached"),
    [
        (VideoInferRateLimitError("HTTP 429", http_status=429), True),
        (VideoInferServerError("HTTP 520", http_status=520), True),
        (VideoInferConnectionError("read timeout", request_sent=True), True),
        (VideoInferResponseError("no integer status"), True),
        (VideoInferConnectionError("refused", request_sent=False), False),
    ],
)
def test_which_failed_polls_reached_the_service(error, reached):
    assert reached_service(error) is reached


def test_a_429_with_retry_after_is_polled_again_when_the_service_asked():
    limited = VideoInferRateLimitError("HTTP 429", http_status=429, retry_after=245.0)
    outcome = step(wait(), OUTAGE, limited, T0, 0.0)
    assert isinstance(outcome, PollAgain) and outcome.delay == 245.0


@pytest.mark.parametrize("retry_after", [None, 0.0, 1.0])
def test_a_first_429_is_polled_again_no_sooner_than_the_poll_interval(retry_after):
    limited = VideoInferRateLimitError("HTTP 429", http_status=429, retry_after=retry_after)
    for jitter in (0.0, 0.5, 1.0):
        outcome = step(wait(poll_interval=4), None, limited, T0, jitter)
        assert isinstance(outcome, PollAgain) and outcome.delay >= 4.0


@pytest.mark.parametrize("status", [408, 500, 501, 502, 503, 504, 520, 522, 524, 529])
def test_every_5xx_and_408_of_a_poll_leave_the_state_unknown(status):
    from airflow_provider_videoinfer.hooks.responses import error_for_status

    outcome = step(wait(), None, error_for_status(status, "", "status of job job-1"), T0, 0.5)
    assert isinstance(outcome, PollAgain) and outcome.reason is Reason.UNKNOWN and outcome.delay >= 60.0


# --- the trigger's first poll ---


@pytest.mark.parametrize(
    ("deadline", "jitter", "expected"),
    [
        (None, 0.0, 60.0),
        (None, 1.0, 120.0),
        (None, 0.5, 90.0),
        (T0 + 70, 1.0, 70.0),
        (T0 - 10, 0.5, 0.0),  # already past: poll at once, then time out
    ],
)
def test_the_first_poll_comes_one_to_two_intervals_after_the_start(deadline, jitter, expected):
    assert first_poll(wait(deadline=deadline), T0, jitter) == PollAgain(JOB, expected, Reason.FIRST)


# --- the trigger's events ---


@pytest.mark.parametrize(
    ("outcome", "kind", "code", "message"),
    [
        (Done(SUCCEEDED), EventKind.SUCCEEDED, 0, None),
        (Failed(JOB, VideoInferJobFailedError(JOB, 4, "boom"), FAILED), EventKind.FAILED, 4, "model 'x' not found"),
        (Failed(JOB, DEFINITE["404"]), EventKind.ERROR, None, str(DEFINITE["404"])),
        (TimedOut(JOB, "was still running after 5 s, at the deadline", 1), EventKind.TIMEOUT, 1, None),
    ],
)
def test_every_end_of_a_wait_is_one_typed_event(outcome, kind, code, message):
    event = JobEvent.from_outcome(outcome)
    assert (event.kind, event.job_id, event.code) == (kind, JOB, code)
    if message is not None:
        assert event.message == message
    assert JobEvent.from_payload(event.to_payload()) == event


# --- the log lines give the real time of the next poll ---


class Lines:
    """A logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append((logging.INFO, msg % args))

    def warning(self, msg: str, *args: object) -> None:
        self.lines.append((logging.WARNING, msg % args))


def _report(outcome, now=T0, **kwargs) -> list[tuple[int, str]]:
    log = Lines()
    report(log, outcome, now, **kwargs)
    return log.lines


@pytest.mark.parametrize(
    ("outcome", "lines"),
    [
        (
            PollAgain(JOB, 60.0, Reason.RUNNING),
            [(logging.INFO, "Job job-1 is running; next poll in 60 s, at 08:01:00 UTC.")],
        ),
        (
            PollAgain(JOB, 0.5, Reason.FIRST),
            [(logging.INFO, "Job job-1: first poll in 0.5 s, at 08:00:00 UTC.")],
        ),
        (
            PollAgain(JOB, 56.0, Reason.UNKNOWN, outage=Outage(T0 - 131, 5, "nothing answers")),
            [
                (
                    logging.WARNING,
                    "Job job-1: poll failed; the service has been unreachable for 0:02:11 (5 failed polls in a "
                    "row); next poll in 56 s, at 08:00:56 UTC. nothing answers",
                )
            ],
        ),
        (
            PollAgain(JOB, 60.0, Reason.RUNNING, recovered=Outage(T0 - 182, 6)),
            [
                (logging.INFO, "Job job-1: the service answers again after 0:03:02 unreachable (6 failed polls)."),
                (logging.INFO, "Job job-1 is running; next poll in 60 s, at 08:01:00 UTC."),
            ],
        ),
        (
            Done(SUCCEEDED, recovered=Outage(T0 - 5, 1)),
            [
                (logging.INFO, "Job job-1: the service answers again after 5.0 s unreachable (1 failed poll)."),
            ],
        ),
        (Failed(JOB, DEFINITE["401"]), []),
        (TimedOut(JOB, "was still running after 5 s, at the deadline"), []),
    ],
)
def test_each_outcome_is_logged_with_the_time_of_the_next_poll(outcome, lines):
    assert _report(outcome) == lines


def test_a_wait_handed_to_the_triggerer_names_no_next_poll_time_it_cannot_know():
    assert _report(PollAgain(JOB, 60.0, Reason.RUNNING), deferring=True) == []
    ((level, line),) = _report(PollAgain(JOB, 3.0, Reason.UNKNOWN, outage=Outage(T0, 1, "503")), deferring=True)
    assert level == logging.WARNING and line.endswith("(1 failed poll in a row); the trigger polls next. 503")

"""The sensor that waits for a job: deferred to the triggerer, or poking in the worker (poke and reschedule modes)."""

from __future__ import annotations

import datetime
import random
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.compat import AirflowSensorTimeout, conf
from airflow_provider_videoinfer.exceptions import VideoInferJobFailedError, VideoInferValidationError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.settings import DEFAULT_POLL_INTERVAL, check_task_wait, effective_poll_interval
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.base import (
    VideoInferHookMixin,
    defer_until_done,
    log_job_left_running,
    validate_if_known,
    with_hint,
)
from airflow_provider_videoinfer.operators.task_store import forget_on_success, kept_until_the_task_ends, task_store
from airflow_provider_videoinfer.triggers.events import JobEvent

if TYPE_CHECKING:
    from airflow.sdk import Context

JOB_ID_HINT = "Pass the job id that VideoInferSubmitJobOperator returns (its XCom return value)."
#: Why a failed job ends the sensor without its retries, and what the user can do.
FAILED_JOB_ADVICE = (
    "A retry of this sensor would only read the same failed job, so it fails without its retries: fix the "
    "input, then clear the task that submitted the job to pay for a new one."
)
#: Task store key: the outage under way (when it began, polls failed), kept across the pokes
#: of a rescheduled sensor.
OUTAGE_KEY = "videoinfer_outage"


class VideoInferJobSensor(VideoInferHookMixin, BaseSensorOperator):
    """Wait for a video inference job; return its ``output_signed_url`` (the XCom return value).

    Status 1 (running) keeps waiting, 0 succeeds, anything above 1 fails the task, without its
    retries (a retry would read the same failure; the sensor never submits a job), with an error
    naming the job id, the status code and the service's message. An answer without a valid
    integer status is an error, never a success. While the service is unreachable (or answers
    5xx, 429 or malformed bodies), the sensor logs a warning per poll and keeps waiting until
    its ``timeout``; a refused key (401/403) or an unknown job (404) fails it at once.

    Every mode waits by :func:`~airflow_provider_videoinfer.hooks.waiting.step`: each poll is one
    attempt, and the next one comes ``poll_interval`` later while the job runs, or after the
    wait's backoff while its state is unknown (never past ``timeout``). In poke and reschedule
    mode the sensor hands that delay to Airflow's sensor loop as its ``poke_interval``, so Airflow's
    own ``exponential_backoff`` is refused. That the loop sleeps (or reschedules by) the
    ``poke_interval`` it finds after each poke is Airflow's behaviour on every supported line; the
    tests of ``tests/test_sensor_pacing.py`` pin it on each.

    :param job_id: the job to wait for (templated), e.g. the return value of
        ``VideoInferSubmitJobOperator``.
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    :param poll_interval: seconds between polls; default: the connection's extra ``poll_interval``
        (60 unless it says, because the hosted API allows one poll a minute per job).
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
        poll_interval: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        # Checked before Airflow turns timeout into a timedelta (which overflows for float("inf")).
        poll_interval, _ = check_task_wait(poll_interval, _given_timeout(kwargs), "timeout")
        deferrable = contract.validate_flag("deferrable", deferrable)
        if kwargs.get("exponential_backoff"):
            raise VideoInferValidationError(
                "VideoInferJobSensor paces its own polls (poll_interval while the job runs; one to three poll "
                "intervals, or a longer Retry-After, while the service is unreachable): drop exponential_backoff=True."
            )
        super().__init__(poke_interval=poll_interval or DEFAULT_POLL_INTERVAL, **kwargs)
        forget_on_success(self, OUTAGE_KEY)
        self.job_id = job_id
        self.videoinfer_conn_id = videoinfer_conn_id
        # Checked before any call: a deadline past what a date can hold fails only once the job runs.
        self.poll_interval, self.timeout = check_task_wait(poll_interval, self.timeout, "timeout")
        self.deferrable = deferrable
        validate_if_known(job_id, contract.validate_job_id, JOB_ID_HINT)
        self._started: float | None = None
        self._outage: waiting.Outage | None = None

    def execute(self, context: Context) -> Any:
        """Check once; when the job still runs, defer to the trigger (or poke, when not deferrable)."""
        self._started, self._outage = None, None  # a new try is a new wait
        if self._rescheduled:
            with kept_until_the_task_ends(task_store(context), OUTAGE_KEY, context):
                return super().execute(context)
        if not self.deferrable:
            return super().execute(context)
        outcome = self._check(context, deferring=True)
        if isinstance(outcome, waiting.PollAgain):
            running = outcome.reason is waiting.Reason.RUNNING
            poll_interval = effective_poll_interval(self.poll_interval, self.hook.settings, self.timeout)
            defer_until_done(self, self._job_id(), poll_interval, self.timeout, running=running)
        return self._finish(outcome)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """Poll once: False while running or while the state is unknown, the output URL when done.

        Raises when the job failed, at the deadline, or for an error a retry cannot fix. Before
        returning False it sets ``poke_interval`` to the delay the wait chose, which Airflow's sensor
        loop then sleeps (``mode="poke"``) or reschedules by (``mode="reschedule"``).
        """
        outcome = self._check(context)
        if isinstance(outcome, waiting.PollAgain):
            self.poke_interval = outcome.delay
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(outcome))

    def on_kill(self) -> None:
        """Log that the job goes on running on the service (it cannot be cancelled), with its id."""
        log_job_left_running(
            self, str(self.job_id), "This sensor only stopped waiting for it; a retry of the sensor waits for it again."
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the output URL, or raise for a failure or timeout."""
        try:
            return JobEvent.from_payload(event).output_url_or_raise()
        except VideoInferJobFailedError as err:
            raise err.final(FAILED_JOB_ADVICE) from None

    def _check(self, context: Context, *, deferring: bool = False) -> waiting.Outcome:
        """Poll once and decide what follows, with the outage under way carried from the last poke."""
        job_id = self._job_id()
        wait = self._job_wait(job_id, context)
        before = self._load_outage(context)
        poll = self.hook.poll_job(job_id)
        now = time.time()
        outcome = waiting.step(wait, before, poll, now, random.random())
        waiting.report(self.log, outcome, now, deferring=deferring)
        self._save_outage(context, before, outcome.outage if isinstance(outcome, waiting.PollAgain) else None)
        return outcome

    def _finish(self, outcome: waiting.Done | waiting.Failed | waiting.TimedOut) -> str | None:
        """The output URL of a wait that ended; raise for any other end."""
        if isinstance(outcome, waiting.TimedOut):
            # Airflow's own sensor timeout: no retries, and soft_fail skips, as for any sensor.
            raise AirflowSensorTimeout(outcome.message)
        try:
            url = outcome.result().output_url
        except VideoInferJobFailedError as err:
            raise err.final(FAILED_JOB_ADVICE) from None
        self.log.info("Job %s succeeded.", outcome.job_id)
        return url

    def _job_id(self) -> str:
        return with_hint(contract.validate_job_id, self.job_id, JOB_ID_HINT)

    def _job_wait(self, job_id: str, context: Context) -> waiting.Wait:
        """This sensor's wait: from its first poke (the first reschedule's, in reschedule mode) until
        ``timeout`` seconds later, as Airflow counts a sensor's timeout."""
        if self._started is None or self.reschedule:
            first = _first_reschedule_date(context) if self.reschedule else None
            self._started = first.timestamp() if first is not None else time.time()
        deadline = self._started + self.timeout
        poll_interval = effective_poll_interval(self.poll_interval, self.hook.settings, self.timeout)
        return waiting.Wait(job_id, poll_interval, self._started, deadline, self.hook.settings.retry)

    @property
    def _rescheduled(self) -> bool:
        """Whether each poke is a run of its own (``mode="reschedule"``, not deferrable)."""
        return self.reschedule and not self.deferrable

    def _load_outage(self, context: Context) -> waiting.Outage | None:
        """The outage under way. In reschedule mode each poke is a new run of the task, so it is
        kept in the task's store (:mod:`~airflow_provider_videoinfer.operators.task_store`): when it
        began, how many polls failed."""
        if not self._rescheduled:
            return self._outage
        saved: Any = task_store(context).get(OUTAGE_KEY)
        if isinstance(saved, dict) and isinstance(saved.get("since"), (int, float)):
            return waiting.Outage(float(saved["since"]), int(saved.get("failed") or 0))
        return None

    def _save_outage(self, context: Context, before: waiting.Outage | None, after: waiting.Outage | None) -> None:
        self._outage = after
        if not self._rescheduled or after == before:
            return
        store = task_store(context)
        if after is None:
            store.delete(OUTAGE_KEY)
        else:
            store.set(OUTAGE_KEY, {"since": after.since, "failed": after.failed_polls})


def _given_timeout(kwargs: dict[str, Any]) -> Any:
    """The sensor's ``timeout`` as given, in its arguments or its ``default_args``; else the longest allowed."""
    return kwargs.get("timeout", (kwargs.get("default_args") or {}).get("timeout", contract.MAX_WAIT_SECONDS))


def _first_reschedule_date(context: Context) -> datetime.datetime | None:
    """When a rescheduled sensor first poked (Airflow measures its timeout from there); None at the first poke.

    Airflow 3.0 may hand the date over as its ISO text rather than a datetime: both are read.
    """
    ti: Any = context.get("ti")
    getter = getattr(ti, "get_first_reschedule_date", None)
    first = getter(context) if getter is not None else None
    if isinstance(first, str):
        first = datetime.datetime.fromisoformat(first)
    return first

"""What every videoinfer operator and the sensor share: the hook, parse-time checks, deferral, kills.

To adopt it, an operator derives from :class:`VideoInferBaseOperator` (or, for a sensor, mixes
:class:`VideoInferHookMixin` into ``BaseSensorOperator``), passes ``videoinfer_conn_id`` on to
``super().__init__``, spreads :attr:`VideoInferBaseOperator.template_fields` into its own, drops
its own ``hook`` property, assigns each template field as given, and validates each value that
may be known at parse time with :func:`validate_if_known` (the value itself is kept; what
``execute`` needs is derived from it there).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, NoReturn, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger

T = TypeVar("T")

#: Seconds past a trigger's own deadline after which Airflow fails a deferred task whose trigger never
#: reported (see :func:`defer_until_done`).
DEFERRAL_TIMEOUT_MARGIN = 600.0


def is_runtime_value(value: Any) -> bool:
    """Whether a value is only known at run time (a Jinja template or an XComArg).

    Operators validate other values in ``__init__``, so that bad input fails at DAG parse time.
    """
    if hasattr(value, "resolve") and hasattr(value, "iter_references"):
        return True
    return "{{" in json.dumps(value, default=str)


def validate_if_known(value: Any, validator: Callable[[Any], T], hint: str = "") -> T | None:
    """Validate ``value`` now when it is already known; return the validated value, or None.

    :param value: an operator argument, possibly a template or an XComArg.
    :param validator: a check of :mod:`~airflow_provider_videoinfer.contract` (raises
        :class:`~airflow_provider_videoinfer.exceptions.VideoInferValidationError`).
    :param hint: appended to the error's message, e.g. which operator produces a good value.
    """
    if is_runtime_value(value):
        return None
    return with_hint(validator, value, hint)


def with_hint(validator: Callable[[Any], T], value: Any, hint: str) -> T:
    """Run ``validator(value)``; when it refuses the value, add ``hint`` to its message.

    The contract's messages name no operator (the local server sends them to any client):
    operators add the hint where they raise.
    """
    try:
        return validator(value)
    except VideoInferValidationError as err:
        if not hint:
            raise
        raise VideoInferValidationError(f"{err} {hint}") from None


def utc_time(moment: float) -> str:
    """A wall-clock UNIX time as deferral log lines name a deadline: ``2026-01-31 12:00:00 UTC``.

    :param moment: the UNIX time.
    """
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def deferral_backstop(timeout: float, poll_interval: float) -> datetime.timedelta:
    """Airflow's own timeout of a deferral whose trigger ends the wait at ``timeout`` seconds from now.

    The trigger gives up at its deadline; this backstop fails a task whose trigger never runs (no
    triggerer) with its retries, and a retry reconnects.

    :param timeout: seconds from now to the trigger's deadline.
    :param poll_interval: seconds between the trigger's polls.
    """
    return datetime.timedelta(seconds=timeout + DEFERRAL_TIMEOUT_MARGIN + 3 * poll_interval)


def defer_until_done(
    task: BaseOperator, job_id: str, poll_interval: float, timeout: float, *, running: bool = True
) -> NoReturn:
    """Hand the wait for a job over to the triggerer (raises ``TaskDeferred``); the task resumes in
    ``execute_complete``. Logs one line saying so.

    :param task: the operator or sensor that waits.
    :param job_id: the job.
    :param poll_interval: seconds between the trigger's polls.
    :param timeout: seconds from now after which the wait gives up.
    :param running: the last poll saw the job running; False when its state is unknown.
    """
    deadline = time.time() + timeout
    until = utc_time(deadline)
    task.log.info(
        "Job %s %s: the wait continues in the triggerer (this worker slot is freed), polling every %g s "
        "(the first poll one to two intervals from now) until %s at the latest.",
        job_id,
        "is running" if running else "has not been seen to finish",
        poll_interval,
        until,
    )
    trigger = VideoInferJobTrigger(
        job_id=job_id,
        videoinfer_conn_id=task.videoinfer_conn_id,  # type: ignore[attr-defined]
        poll_interval=poll_interval,
        deadline=deadline,
    )
    task.defer(trigger=trigger, method_name="execute_complete", timeout=deferral_backstop(timeout, poll_interval))


def log_job_left_running(task: BaseOperator, job_id: str | None, next_step: str) -> None:
    """Say, when a task is killed, that its job goes on running: the service cannot cancel one.

    Called from ``on_kill``; the job keeps running and is paid for, so the log names it.

    :param task: the operator or sensor being killed.
    :param job_id: the job it submitted or waits for; None when it has no id yet.
    :param next_step: what the user can do with the job, appended to the message.
    """
    if job_id is None:
        task.log.warning(
            "Task %s was killed before the service returned a job id: if a submission was under way, a job "
            "may run on the service without this task knowing its id (the service has no endpoint to "
            "cancel a job).",
            task.task_id,
        )
        return
    task.log.warning(
        "Task %s was killed: job %s goes on running on the service, which has no endpoint to cancel a job "
        "(it is paid for all the same). %s",
        task.task_id,
        job_id,
        next_step,
    )


class VideoInferHookMixin:
    """The ``hook`` of an operator or sensor with a ``videoinfer_conn_id``, created once.

    The hook is created at first use, in ``execute``, so it reads the rendered connection id.
    """

    videoinfer_conn_id: str

    @cached_property
    def hook(self) -> VideoInferHook:
        """The hook of this task's connection."""
        return VideoInferHook(self.videoinfer_conn_id)


class VideoInferBaseOperator(VideoInferHookMixin, BaseOperator):
    """Base of the videoinfer operators.

    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    """

    #: Subclasses spread these into their own: ``(*VideoInferBaseOperator.template_fields, ...)``.
    template_fields: Sequence[str] = ("videoinfer_conn_id",)

    def __init__(self, *, videoinfer_conn_id: str = VideoInferHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.videoinfer_conn_id = videoinfer_conn_id

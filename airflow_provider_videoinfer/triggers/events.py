"""The one event a job trigger sends back: a typed value, its payload form and its parser.

The trigger builds a :class:`JobEvent` and yields :meth:`JobEvent.to_payload`; the operator and
the sensor resume with :meth:`JobEvent.from_payload` and :meth:`JobEvent.output_url_or_raise`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from airflow_provider_videoinfer import exceptions
from airflow_provider_videoinfer.contract import JobState, JobStatus
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.responses import job_failed


class EventKind(StrEnum):
    """How a wait in the triggerer ended; the first two words are :class:`JobStatus`'s."""

    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class JobEvent:
    """How one trigger's wait for a job ended.

    :param kind: succeeded, failed (with ``code`` and ``message``), timeout, or error.
    :param job_id: the job.
    :param output_url: the result's signed URL; only when succeeded.
    :param code: the job's last status code, when known.
    :param message: the service's failure reason, or what went wrong (never the key).
    :param error_type: for an error, the provider exception's class name, so that the task
        resumes with the same retry semantics (e.g. a refused key fails without retries).
    """

    kind: EventKind
    job_id: str
    output_url: str | None = None
    code: int | None = None
    message: str | None = None
    error_type: str | None = None

    @classmethod
    def from_state(cls, state: JobState) -> JobEvent:
        """The event of a job that stopped: succeeded or failed."""
        if state.status is JobStatus.SUCCEEDED:
            return cls(EventKind.SUCCEEDED, state.job_id, output_url=state.output_url, code=state.code)
        return cls(EventKind.FAILED, state.job_id, code=state.code, message=state.error)

    @classmethod
    def from_error(cls, job_id: str, err: exceptions.VideoInferError) -> JobEvent:
        """The event of a wait that a definite error ended (refused key, unknown job...)."""
        return cls(EventKind.ERROR, job_id, message=str(err), error_type=type(err).__name__)

    @classmethod
    def from_outcome(cls, outcome: waiting.Done | waiting.Failed | waiting.TimedOut) -> JobEvent:
        """The event of a wait that :func:`~airflow_provider_videoinfer.hooks.waiting.step` ended."""
        if isinstance(outcome, waiting.TimedOut):
            return cls(EventKind.TIMEOUT, outcome.job_id, code=outcome.code, message=outcome.reason)
        if isinstance(outcome, waiting.Failed):
            if outcome.state is None:
                return cls.from_error(outcome.job_id, outcome.error)
            return cls.from_state(outcome.state)
        return cls.from_state(outcome.state)

    def to_payload(self) -> dict[str, Any]:
        """The JSON form that crosses from the triggerer to the worker."""
        return _payload(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> JobEvent:
        """Parse :meth:`to_payload`'s form; raise the provider's error for anything else.

        :param payload: the event the task resumed with.
        """
        try:
            if not isinstance(payload, Mapping):
                raise TypeError("not a mapping")
            return cls(
                kind=EventKind(payload["kind"]),
                job_id=str(payload["job_id"]),
                output_url=payload.get("output_url"),
                code=payload.get("code"),
                message=payload.get("message"),
                error_type=payload.get("error_type"),
            )
        except (KeyError, TypeError, ValueError):
            raise exceptions.VideoInferError(
                f"The job trigger sent no usable event ({payload!r}); this is a bug, please report it."
            ) from None

    def output_url_or_raise(self) -> str:
        """Return the output URL of a success; raise the provider's exception for any other end."""
        if self.kind is EventKind.SUCCEEDED and self.output_url:
            return self.output_url
        if self.kind is EventKind.FAILED:
            code = self.code if self.code is not None else 2
            raise job_failed(JobState(self.job_id, JobStatus.FAILED, code, error=self.message))
        if self.kind is EventKind.TIMEOUT:
            reason = self.message or "was still running at the deadline"
            raise exceptions.VideoInferTimeoutError(waiting.timeout_message(self.job_id, reason))
        error_class = _ERROR_CLASSES.get(self.error_type or "", exceptions.VideoInferError)
        raise error_class(f"Waiting for video inference job {self.job_id} failed: {self.message}")


def _payload(event: JobEvent | CountEvent) -> dict[str, Any]:
    payload = asdict(event)
    payload["kind"] = event.kind.value
    return payload


# The definite errors a trigger may end with, rebuilt by name (never by an import path from the payload).
_ERROR_CLASSES: dict[str, type[exceptions.VideoInferError]] = {
    cls.__name__: cls
    for cls in (
        exceptions.VideoInferError,
        exceptions.VideoInferConfigError,
        exceptions.VideoInferAuthError,
        exceptions.VideoInferNotFoundError,
        exceptions.VideoInferInvalidRequestError,
        exceptions.VideoInferValidationError,
    )
}


class CountKind(StrEnum):
    """How a wait for a staging batch's videos ended."""

    HELD = "held"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class CountEvent:
    """How one wait for a staging batch to hold its videos ended (the batch count trigger's event,
    and the in-worker wait's end too).

    :param kind: held (every video is in the batch), timeout, or error.
    :param batch_id: the batch.
    :param expected: how many videos the batch must hold.
    :param count: the last count read; None when no poll got one.
    :param message: for a timeout, how long the wait lasted and what was known; for an error, what
        went wrong (never the key).
    :param error_type: for an error, the provider exception's class name (see :class:`JobEvent`).
    """

    kind: CountKind
    batch_id: str
    expected: int
    count: int | None = None
    message: str | None = None
    error_type: str | None = None

    @classmethod
    def from_error(cls, batch_id: str, expected: int, count: int | None, err: exceptions.VideoInferError) -> CountEvent:
        """The event of a wait that a definite error ended (refused key, missing connection...)."""
        return cls(CountKind.ERROR, batch_id, expected, count, message=str(err), error_type=type(err).__name__)

    def to_payload(self) -> dict[str, Any]:
        """The JSON form that crosses from the triggerer to the worker."""
        return _payload(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> CountEvent:
        """Parse :meth:`to_payload`'s form; raise the provider's error for anything else.

        :param payload: the event the task resumed with.
        """
        try:
            if not isinstance(payload, Mapping):
                raise TypeError("not a mapping")
            count = payload.get("count")
            return cls(
                kind=CountKind(payload["kind"]),
                batch_id=str(payload["batch_id"]),
                expected=int(payload["expected"]),
                count=None if count is None else int(count),
                message=payload.get("message"),
                error_type=payload.get("error_type"),
            )
        except (KeyError, TypeError, ValueError):
            raise exceptions.VideoInferError(
                f"The batch count trigger sent no usable event ({payload!r}); this is a bug, please report it."
            ) from None

    @property
    def reached(self) -> str:
        """The count reached, as messages say it: ``3 of 5`` (``an unknown number of 5`` before any count)."""
        return f"{'an unknown number' if self.count is None else self.count} of {self.expected}"

    def batch_id_or_raise(self) -> str:
        """Return the batch id when it holds every video; raise the provider's exception for any other end."""
        if self.kind is CountKind.HELD:
            return self.batch_id
        if self.kind is CountKind.TIMEOUT:
            raise exceptions.VideoInferTimeoutError(
                f"Batch {self.batch_id} held {self.reached} videos {self.message or 'at the deadline'}: the service "
                "had not indexed them all. A retry of this task stages nothing twice and waits again; raise "
                "wait_timeout if indexing is slow."
            )
        error_class = _ERROR_CLASSES.get(self.error_type or "", exceptions.VideoInferError)
        raise error_class(
            f"Waiting for batch {self.batch_id} to hold its videos failed, with {self.reached} videos counted: "
            f"{self.message}"
        )

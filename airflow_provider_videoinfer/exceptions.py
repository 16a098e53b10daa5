"""The provider's exceptions: one base class, one subclass per way a call can fail.

Every message names the job id, file or endpoint concerned and what the user can do.
No message ever contains the API key: the transports redact URLs before they reach here.

Two families, which decide whether Airflow retries the task:

- :class:`VideoInferFatalError` (bad input, an unusable connection, a refused key, any other 4xx
  but 429): a retry cannot fix these, so they also derive from Airflow's
  ``AirflowFailException`` and end the task without its retries;
- everything else (:class:`VideoInferTransientError`, a timeout, an answer that breaks the
  contract) keeps the task's retries: a retry reconnects to the job.

A failed job is either: :class:`VideoInferJobFailedError` keeps the retries when the submit
operator's ``resubmit_failed_jobs`` lets its next retry pay for a new job; otherwise (the default,
and always for the sensor, which never submits) :class:`VideoInferJobFailedFatalError` ends the
task, since a retry would only read the same failure.

Every class derives from Airflow's ``AirflowException``; invalid input
(:class:`VideoInferValidationError`) also derives from the shared contract's
:class:`~videoinfer_contract.errors.InvalidInputError`, which the contract's validators raise and
:mod:`airflow_provider_videoinfer.contract` re-raises as this class.
"""

from __future__ import annotations

from airflow_provider_videoinfer.compat import AirflowException, AirflowFailException
from videoinfer_contract.errors import InvalidInputError

#: The documentation's errors page: what each error means and what to do, at more length than a message,
#: which names the value, the cause and the fix in a sentence or two, then links a section of it.
ERRORS_PAGE = "https://github.com/videoinfer/airflow-provider-videoinfer/blob/main/docs/errors.rst"


class VideoInferError(AirflowException):
    """Base class of every error raised by the videoinfer provider."""


class VideoInferFatalError(VideoInferError, AirflowFailException):
    """An error that a retry of the task cannot fix: the task fails without Airflow's retries."""


class VideoInferValidationError(VideoInferFatalError, InvalidInputError):
    """User input is invalid; raised before any network call."""


class VideoInferOverBudgetError(VideoInferValidationError):
    """A job would cost more than its caps (``max_frames``, ``max_video_seconds``); raised before submitting."""


class VideoInferConfigError(VideoInferFatalError):
    """The Airflow connection is unusable (no API key, malformed host or extra)."""


class VideoInferAuthError(VideoInferFatalError):
    """The service answered 401/403: the API key is missing, wrong, or lacks access."""


class VideoInferNotFoundError(VideoInferFatalError):
    """The service answered 404: the job or endpoint does not exist."""


class VideoInferInvalidRequestError(VideoInferFatalError):
    """The service refused the request (a 4xx other than 401, 403, 404, 408 and 429)."""


class VideoInferTransientError(VideoInferError):
    """A failure that may pass: retried by the hook while its retry policy allows.

    :param message: what failed and what the user can do.
    :param http_status: the HTTP status answered, or None when no answer came.
    :param retry_after: seconds the service asked to wait (``Retry-After``), if it said.
    :param request_sent: False when the request surely never reached the service (so even a
        job submission can be retried without risk of a duplicate job).
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after
        self.request_sent = request_sent

    def __reduce__(self):  # keep picklable with keyword-only arguments
        state = (type(self), str(self), self.http_status, self.retry_after, self.request_sent)
        return (_rebuild_transient, state)


def _rebuild_transient(cls, message, http_status, retry_after, request_sent):
    return cls(message, http_status=http_status, retry_after=retry_after, request_sent=request_sent)


class VideoInferRateLimitError(VideoInferTransientError):
    """The service answered 429; raised once the retry policy is spent."""


class VideoInferServerError(VideoInferTransientError):
    """The service answered a 5xx (any), or 408; raised once the retry policy is spent."""


class VideoInferConnectionError(VideoInferTransientError):
    """The service could not be reached, dropped the connection, or timed out."""


class VideoInferResponseError(VideoInferError):
    """The service answered with a body that does not follow the API contract."""


class VideoInferMalformedResponseError(VideoInferTransientError, VideoInferResponseError):
    """The service answered a body that is not JSON at all (often a proxy); transient."""


class VideoInferJobFailedError(VideoInferError):
    """A job ended with a failure status (any status above 1).

    Raised as is, the task keeps its retries (the submit operator's next retry pays for a new job);
    :meth:`final` gives the :class:`VideoInferJobFailedFatalError` that ends the task instead.

    :param job_id: the job.
    :param code: its ``status``.
    :param message: the service's reason, if it gave one.
    :param advice: what happens next and what the user can do, appended to the message.
    """

    def __init__(self, job_id: str, code: int, message: str | None, advice: str | None = None) -> None:
        self.job_id = job_id
        self.code = code
        self.reason = message or "no reason given by the service"
        self.advice = advice
        text = f"Video inference job {job_id} failed with status {code}: {self.reason}"
        super().__init__(f"{_sentence(text)} {advice}" if advice else text)

    def final(self, advice: str) -> VideoInferJobFailedFatalError:
        """The same failure as one that ends the task without its retries, with ``advice`` for the user."""
        return VideoInferJobFailedFatalError(self.job_id, self.code, self.reason, advice)

    def __reduce__(self):  # keep picklable with its custom __init__
        return (type(self), (self.job_id, self.code, self.reason, self.advice))


def _sentence(text: str) -> str:
    """``text`` ending in one full stop (a service's reason may end in its own), to join another sentence to."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def more_at(section: str) -> str:
    """The link that ends a message whose longer story is in a section of the documentation's errors page.

    :param section: the section's anchor on :data:`ERRORS_PAGE`, e.g. ``"connection-host"``.
    """
    return f"More: {ERRORS_PAGE}#{section}"


class VideoInferJobFailedFatalError(VideoInferJobFailedError, VideoInferFatalError):
    """A failed job that no retry of the task would pay for again: the task fails without its retries."""


class VideoInferSubmissionUnknownError(VideoInferFatalError):
    """A job submission was sent but its answer was lost: a job may exist and be paid for, with an id
    nobody knows. No try of the task submits again on its own (clearing the task, or
    ``resubmit_unknown_outcome=True``, does); the task fails without its retries."""


class VideoInferStoreError(VideoInferConfigError):
    """The task cannot keep what its next try must find (the job id) in its task store: a write failed,
    or did not land when read back."""


class VideoInferTimeoutError(VideoInferError):
    """A job did not finish before the caller's deadline."""


class VideoInferStorageError(VideoInferError):
    """A file location (a video, a result file, a destination) cannot be read or written.

    The message names the location and what to check. This class keeps the task's retries: it is
    raised for failures that may pass (a bucket or network file system briefly unreachable, a full
    disk); :class:`VideoInferStorageFatalError` for those a retry cannot fix.
    """


class VideoInferStorageFatalError(VideoInferStorageError, VideoInferFatalError):
    """A file location cannot be used as given: it does not exist, access is denied, a file stands where
    a folder must be (or a folder where a file must be), the file system is read-only, or no file
    system serves its scheme. A retry cannot fix it: the task fails without its retries."""


class VideoInferConflictError(VideoInferInvalidRequestError):
    """The service answered 409: the object exists with another definition (a Batch Processing job id
    already used with another body)."""


class VideoInferBatchJobFailedError(VideoInferError):
    """A Batch Processing job ended failed or aborted.

    Raised as is, the task keeps its retries (the run operator's next retry restarts the job when
    ``restart_failed_jobs`` allows it); :meth:`final` gives the error that ends the task instead.

    :param job_id: the job.
    :param state: how it ended (``failed`` or ``aborted``).
    :param reason: the service's last notification, if any.
    :param advice: what happens next and what the user can do, appended to the message.
    """

    def __init__(self, job_id: str, state: str, reason: str | None, advice: str | None = None) -> None:
        self.job_id = job_id
        self.state = state
        self.reason = reason or "no reason given by the service"
        self.advice = advice
        text = f"Batch job {job_id} ended {state}: {self.reason}"
        super().__init__(f"{text}. {advice}" if advice else text)

    def final(self, advice: str) -> VideoInferBatchJobFailedFatalError:
        """The same failure as one that ends the task without its retries, with ``advice`` for the user."""
        return VideoInferBatchJobFailedFatalError(self.job_id, self.state, self.reason, advice)

    def __reduce__(self):  # keep picklable with its custom __init__
        return (type(self), (self.job_id, self.state, self.reason, self.advice))


class VideoInferBatchJobFailedFatalError(VideoInferBatchJobFailedError, VideoInferFatalError):
    """A failed Batch Processing job that no retry of the task restarts: the task fails without its retries."""


class VideoInferBatchTimeoutError(VideoInferTimeoutError, VideoInferFatalError):
    """A wait for a Batch Processing job reached its deadline, and the job was aborted: a retry of the task
    would have nothing to reconnect to, so the task fails without its retries."""

"""The provider's exceptions: one base class, one subclass per way a call can fail.

Every message names the job id, file or endpoint concerned and what the user can do.
No message ever contains the API key: the transports redact URLs before they reach here.
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowException
except ImportError:  # the local server runs the shared contract without Airflow installed
    AirflowException = Exception  # type: ignore[misc,assignment]


class VideoInferError(AirflowException):
    """Base class of every error raised by the videoinfer provider."""


class VideoInferValidationError(VideoInferError, ValueError):
    """User input is invalid; raised before any network call."""


class VideoInferConfigError(VideoInferError):
    """The Airflow connection is unusable (no API key, malformed host or extra)."""


class VideoInferAuthError(VideoInferError):
    """The service answered 401/403: the API key is missing, wrong, or lacks access."""


class VideoInferNotFoundError(VideoInferError):
    """The service answered 404: the job or endpoint does not exist."""


class VideoInferInvalidRequestError(VideoInferError):
    """The service refused the request as invalid (4xx other than 401/403/404/429)."""


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
    """The service answered 5xx; raised once the retry policy is spent."""


class VideoInferConnectionError(VideoInferTransientError):
    """The service could not be reached, dropped the connection, or timed out."""


class VideoInferResponseError(VideoInferError):
    """The service answered with a body that does not follow the API contract."""


class VideoInferMalformedResponseError(VideoInferTransientError, VideoInferResponseError):
    """The service answered a body that is not JSON at all (often a proxy); transient."""


class VideoInferJobFailedError(VideoInferError):
    """A job ended with a failure status (any status above 1)."""

    def __init__(self, job_id: str, code: int, message: str | None) -> None:
        self.job_id = job_id
        self.code = code
        self.reason = message or "no reason given by the service"
        super().__init__(f"Video inference job {job_id} failed with status {code}: {self.reason}")

    def __reduce__(self):  # keep picklable with its custom __init__
        return (type(self), (self.job_id, self.code, self.reason))


class VideoInferTimeoutError(VideoInferError):
    """A job did not finish before the caller's deadline."""

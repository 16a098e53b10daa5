"""The provider's exceptions: one base class, one subclass per way a call can fail.

Every message names the job id, file or endpoint concerned and what the user can do.
No message ever contains the API key: the transports redact URLs before they reach here.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


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


class VideoInferRateLimitError(VideoInferError):
    """The service kept answering 429 after every retry allowed by the retry policy."""


class VideoInferServerError(VideoInferError):
    """The service kept answering 5xx after every retry allowed by the retry policy."""


class VideoInferConnectionError(VideoInferError):
    """The service could not be reached, or timed out, after every retry allowed."""


class VideoInferResponseError(VideoInferError):
    """The service answered with a body that does not follow the API contract."""


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

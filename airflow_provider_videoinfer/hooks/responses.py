"""How an HTTP answer of the service becomes a value or the provider's error: one place, both transports.

:func:`decode_response` turns any answer into its JSON value or raises; the ``parse_*`` functions
read the contract's fields from that value. Pure and free of I/O.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_videoinfer.contract import JOB_STATUS_ENDPOINT, JobState, JobStatus, redact, validate_job_id
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferConflictError,
    VideoInferError,
    VideoInferInvalidRequestError,
    VideoInferJobFailedError,
    VideoInferMalformedResponseError,
    VideoInferNotFoundError,
    VideoInferRateLimitError,
    VideoInferResponseError,
    VideoInferServerError,
)

#: 4xx statuses that may pass if the same request is sent again: a request timeout and the rate limit.
#: Every 5xx may pass too, whatever its number (520, 522, 524 and 529 are what CDNs and proxies in front
#: of a hosted API answer): it leaves the state of what was asked unknown, never a definite answer.
RETRYABLE_CLIENT_STATUS_CODES = frozenset({408, 429})


def is_retryable_status(status_code: int) -> bool:
    """Whether an HTTP error answer leaves the outcome unknown (408, 429, any 5xx), so that sending the
    same request again may pass; any other 4xx is a definite refusal."""
    return status_code >= 500 or status_code in RETRYABLE_CLIENT_STATUS_CODES


def status_request(job_id: str) -> tuple[tuple[str, str], dict[str, str]]:
    """The status endpoint and query (without the key) for one job; both transports send this.

    :param job_id: a job id, validated here.
    """
    return JOB_STATUS_ENDPOINT, {"job_id": validate_job_id(job_id)}


def _require_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise VideoInferResponseError(f"{what}: expected a JSON object from the service, got {type(body).__name__}.")
    return body


def parse_upload_url(body: Any) -> str:
    """Read ``signed_url`` from the answer of the upload-URL endpoint."""
    url = _require_object(body, "upload URL request").get("signed_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise VideoInferResponseError("upload URL request: the answer has no valid 'signed_url'.")
    return url


def parse_job_id(body: Any) -> str:
    """Read ``job_id`` from the answer of the job submission endpoint."""
    job_id = _require_object(body, "job submission").get("job_id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise VideoInferResponseError("job submission: the answer has no 'job_id'; no job id to wait for.")
    return job_id


def parse_job_state(job_id: str, body: Any) -> JobState:
    """Read a job's state from the status endpoint's answer.

    A missing or non-integer ``status`` is an error, never a success; a succeeded job without
    ``output_signed_url`` is an error too. A failed job's ``error`` is redacted here, once: it may
    quote its ``input_url``, whose signature is a credential, and it goes on to logs, exceptions
    and trigger events.
    """
    data = _require_object(body, f"status of job {job_id}")
    code = data.get("status")
    if isinstance(code, bool) or not isinstance(code, int) or code < 0:
        raise VideoInferResponseError(
            f"status of job {job_id}: the answer has no valid integer 'status' (got {code!r}); "
            "treating it as an error, not a success."
        )
    status = JobStatus.from_code(code)
    output_url = data.get("output_signed_url")
    if status is JobStatus.SUCCEEDED and not (isinstance(output_url, str) and output_url):
        raise VideoInferResponseError(f"job {job_id} reports success but the answer has no 'output_signed_url'.")
    error = None
    if status is JobStatus.FAILED:
        raw = data.get("error") or data.get("message")
        error = redact(str(raw)) if raw else None
    return JobState(
        job_id=job_id,
        status=status,
        code=code,
        output_url=output_url if status is JobStatus.SUCCEEDED else None,
        error=error,
    )


def job_failed(state: JobState) -> VideoInferJobFailedError:
    """Return the exception for a job that ended with a failure status."""
    return VideoInferJobFailedError(state.job_id, state.code, state.error)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds, or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(
    status_code: int,
    body_text: str,
    what: str,
    retry_after: float | None = None,
    *,
    signed_url: bool = False,
    base_url: str | None = None,
) -> VideoInferError:
    """Return the provider exception for an HTTP error answer.

    :param status_code: the HTTP status, 400 or above.
    :param body_text: the answer's body; shortened and redacted into the message.
    :param what: what was being done, e.g. ``"status of job 123"``; named in the message.
    :param retry_after: seconds from the answer's ``Retry-After`` header, if any.
    :param signed_url: the request went to a signed upload or result URL, which carries no API
        key: a refusal then means the URL expired or was altered, not that the key is wrong.
    :param base_url: the connection's Base URL, named in the hint of a 404 from an API endpoint.
    """
    detail = redact(body_text or "").strip()[:300] or "no details"
    if status_code in (401, 403) and signed_url:
        return VideoInferAuthError(
            f"{what}: the signed URL was refused (HTTP {status_code}: {detail}). Signed URLs expire and "
            "must be used unchanged: get a fresh one (upload the video again, or read the job's status "
            "again for a new output_signed_url)."
        )
    if status_code in (401, 403):
        return VideoInferAuthError(
            f"{what}: the service refused the API key (HTTP {status_code}: {detail}). Check the "
            "password of the videoinfer connection and that the key's workspace has access."
        )
    if status_code == 404:
        hint = ""
        if base_url and not signed_url:
            hint = (
                f" If this is unexpected, check the connection's Base URL ({redact(base_url)}): the API's paths "
                "are appended to it, so a wrong host or path prefix answers 404 to every call."
            )
        return VideoInferNotFoundError(f"{what}: not found (HTTP 404: {detail}).{hint}")
    if status_code == 409:
        return VideoInferConflictError(f"{what}: conflict (HTTP 409: {detail}).")
    if status_code == 429:
        return VideoInferRateLimitError(
            f"{what}: rate limited (HTTP 429: {detail}); poll a job at most once a minute.",
            http_status=status_code,
            retry_after=retry_after,
        )
    if is_retryable_status(status_code):
        return VideoInferServerError(
            f"{what}: the service failed (HTTP {status_code}: {detail}).",
            http_status=status_code,
            retry_after=retry_after,
        )
    return VideoInferInvalidRequestError(f"{what}: the service refused the request (HTTP {status_code}: {detail}).")


def decode_response(
    status_code: int,
    headers: Mapping[str, str],
    text: str,
    what: str,
    secret: str | None = None,
    *,
    signed_url: bool = False,
    base_url: str | None = None,
) -> Any:
    """Turn one HTTP answer into its JSON value, or raise the provider's exception for it.

    The one place where an answer becomes a value or an error, for both transports.

    :param status_code: the HTTP status.
    :param headers: the answer's headers (case-insensitive mapping; ``retry-after`` is read).
    :param text: the answer's body.
    :param what: what was being done, named in error messages.
    :param secret: the API key, masked in any message.
    :param signed_url: see :func:`error_for_status`.
    :param base_url: see :func:`error_for_status`.
    """
    if status_code >= 400:
        retry_after = parse_retry_after(headers.get("retry-after"))
        raise error_for_status(
            status_code, redact(text, secret), what, retry_after, signed_url=signed_url, base_url=base_url
        )
    try:
        return json.loads(text)
    except ValueError:
        raise VideoInferMalformedResponseError(
            f"{what}: the service answered HTTP {status_code} with a body that is not JSON: "
            f"{redact(text, secret)[:120]!r}.",
            http_status=status_code,
        ) from None

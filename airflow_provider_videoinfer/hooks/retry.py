"""The retry policy of one call, configured once with tenacity and shared by the sync hook and the async client.

Which answers are worth sending again is decided where answers are decoded
(:func:`airflow_provider_videoinfer.hooks.responses.error_for_status`: 408, 429, every 5xx and lost
connections become :class:`~airflow_provider_videoinfer.exceptions.VideoInferTransientError`);
this module decides how often and how long. Waiting for a job through an outage is
:mod:`airflow_provider_videoinfer.hooks.waiting`'s concern, not a call's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from airflow_provider_videoinfer.exceptions import (
    VideoInferConfigError,
    VideoInferFatalError,
    VideoInferTransientError,
)

# A submission answered with one of these was refused before any work began, so it is safe to
# send again; a 500/502/504 or a lost answer may hide a job that was created.
SAFE_RESUBMIT_STATUS_CODES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a call is retried: bounded in attempts and in total time.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param max_elapsed: seconds after the first attempt past which no new attempt starts.
    :param initial_wait: first backoff in seconds; doubles each retry, with jitter.
    :param max_wait: longest single backoff in seconds (a longer ``Retry-After`` is capped to it).
    """

    max_attempts: int = 5
    max_elapsed: float = 300.0
    initial_wait: float = 1.0
    max_wait: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise VideoInferConfigError(f"max_attempts must be at least 1, got {self.max_attempts}.")
        for name in ("max_elapsed", "initial_wait", "max_wait"):
            if getattr(self, name) < 0:
                raise VideoInferConfigError(f"{name} must not be negative, got {getattr(self, name)}.")

    def tenacity_kwargs(self, *, idempotent: bool) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` or ``AsyncRetrying``.

        :param idempotent: False for job submission: then only failures that surely created no
            job are retried, so a retry never submits a second paid job.
        """

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, VideoInferTransientError):
                return False
            return idempotent or _surely_not_processed(exc)

        return {
            "retry": retry_if_exception(should_retry),
            "stop": stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_elapsed),
            "wait": _RetryAfterOrBackoff(self),
            "reraise": True,
        }


def _surely_not_processed(exc: VideoInferTransientError) -> bool:
    return not exc.request_sent or exc.http_status in SAFE_RESUBMIT_STATUS_CODES


def created_nothing(err: BaseException) -> bool:
    """Whether a failed submission surely created no job, so that submitting again cannot pay twice.

    True when the request never reached the service (refused, unresolved, TLS handshake), when the
    service answered that it did no work (429, 503), or when it refused the request outright (a 4xx,
    bad input, a refused key). False when the answer was lost or broken after the request was sent (a
    read timeout, a reset, 500, 502, 504, 520..., a body without a job id): the job may exist.

    :param err: what the submission raised.
    """
    if isinstance(err, VideoInferTransientError):
        return _surely_not_processed(err)
    return isinstance(err, VideoInferFatalError)  # a refusal; a 2xx without a job id is a ResponseError


class _RetryAfterOrBackoff:
    """Wait what the service asked (``Retry-After``), else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.max_wait = policy.max_wait
        self.backoff = wait_exponential_jitter(initial=policy.initial_wait, max=policy.max_wait)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_wait)
        return float(self.backoff(state))

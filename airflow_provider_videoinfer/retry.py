"""The retry policy, configured once with tenacity and shared by the sync hook and the async client."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
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
    VideoInferTransientError,
)

RETRYABLE_STATUS_CODES = frozenset({429, 500, 502, 503, 504})
# A submission answered with one of these was refused before any work began, so it is safe to
# send again; a 500/502/504 or a lost answer may hide a job that was created.
SAFE_RESUBMIT_STATUS_CODES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds, or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RetryPolicy:
        """Build a policy from a connection's extra (keys ``retry_max_attempts``, ``retry_max_elapsed``,
        ``retry_initial_wait``, ``retry_max_wait``); missing keys keep the defaults."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            key = f"retry_{item.name}"
            if key in extra:
                try:
                    values[item.name] = int(extra[key]) if item.name == "max_attempts" else float(extra[key])
                except (TypeError, ValueError):
                    raise VideoInferConfigError(
                        f"connection extra {key!r} must be a number, got {extra[key]!r}."
                    ) from None
        return cls(**values)

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

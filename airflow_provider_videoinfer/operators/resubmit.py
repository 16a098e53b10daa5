"""Whether a retry of the submit operator pays for a new job after its job failed: ``resubmit_failed_jobs``.

A new job on the same input, frame rate and models fails again when the failure came from them:
the local server's statuses 3 (not a readable video), 4 (unknown model) and 5 (``infer_fps``
above the video's frame rate) always do, and 6 (input not fetchable) does unless the input URL
comes back (a retry of the submit task does not upload again). Only its status 2 (an internal
error) may pass. The hosted service documents no more than "a status above 1 is a failure", so
no failure of it is known to be worth paying for twice. Hence the default: never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_videoinfer.exceptions import VideoInferValidationError

__all__ = ["ResubmitPolicy"]


@dataclass(frozen=True)
class ResubmitPolicy:
    """The submit operator's ``resubmit_failed_jobs``, checked once at parse time.

    :param codes: the failure statuses (each above 1) after which a retry submits a new job;
        ``None`` for every status.
    """

    codes: frozenset[int] | None

    @classmethod
    def from_value(cls, value: Any) -> ResubmitPolicy:
        """Read the parameter's value.

        :param value: ``False`` (never pay again for a failed job, the default), ``True`` (always:
            every retry after a failed job submits a new one), or a collection of failure statuses,
            e.g. ``{2}``, after which a retry submits a new job (an empty one means never).
        :raises VideoInferValidationError: for any other value.
        """
        if isinstance(value, bool):
            return cls(None if value else frozenset())
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
            codes = list(value)
            if all(isinstance(code, int) and not isinstance(code, bool) and code > 1 for code in codes):
                return cls(frozenset(codes))
        raise VideoInferValidationError(
            f"resubmit_failed_jobs must be False (never pay again for a failed job, the default), True (a retry "
            f"always submits a new job after one failed) or a set of failure statuses above 1, e.g. {{2}}; "
            f"got {value!r}."
        )

    def allows(self, code: int) -> bool:
        """Whether a retry submits a new job after a job failed with status ``code``."""
        return self.codes is None or code in self.codes

    def __str__(self) -> str:
        if self.codes is None:
            return "resubmit_failed_jobs=True"
        if not self.codes:
            return "resubmit_failed_jobs=False"
        return "resubmit_failed_jobs={" + ", ".join(str(code) for code in sorted(self.codes)) + "}"

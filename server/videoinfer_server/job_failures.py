"""The job failure codes of the local server (the ``status`` of a failed job, always above 1)."""

from __future__ import annotations

from enum import IntEnum


class FailureCode(IntEnum):
    """Why a job failed; the value is the ``status`` answered by ``GET /videoinfer``."""

    INTERNAL = 2
    """An unexpected error in the server; see its log."""
    UNREADABLE_VIDEO = 3
    """The input could not be decoded as a video (corrupt, truncated or not a video)."""
    UNKNOWN_MODEL = 4
    """A model is not registered under that (model_id, model_version), or its inference_type differs."""
    INFER_FPS_TOO_HIGH = 5
    """``infer_fps`` is above the video's frame rate."""
    INPUT_NOT_FETCHABLE = 6
    """The input could not be fetched: nothing uploaded, deleted by retention, or a remote fetch failed."""


class JobFailure(Exception):
    """Raised while running a job to end it with a failure code and a message for the user."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

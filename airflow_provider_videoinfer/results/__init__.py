"""Reading, typing and summarising video inference result files.

The public names are imported lazily, so that :mod:`.format` (the key names the local server's
writer shares) stays importable without Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_videoinfer.results.reader import (
        ResultLocation,
        ResultReader,
        VideoInferResultFileError,
        iter_frames,
        summarize_result,
    )

__all__ = ["ResultLocation", "ResultReader", "VideoInferResultFileError", "iter_frames", "summarize_result"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from airflow_provider_videoinfer.results import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Reading, typing and summarising video inference result files.

The public names are imported lazily, so that :mod:`.format` (the key names the local server's
writer shares) stays importable without Airflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_videoinfer.results.reader import (
        ResultLocation,
        ResultReader,
        VideoInferResultFileError,
        iter_frames,
        summarize_result,
    )
    from airflow_provider_videoinfer.results.rows import write_rows
    from airflow_provider_videoinfer.results.summary import ResultSummary
    from videoinfer_contract.results import ResultFrame

_HOMES = {
    "ResultLocation": "reader",
    "ResultReader": "reader",
    "VideoInferResultFileError": "reader",
    "iter_frames": "reader",
    "summarize_result": "reader",
    "ResultFrame": "records",
    "ResultSummary": "summary",
    "write_rows": "rows",
}
__all__ = [
    "ResultFrame",
    "ResultLocation",
    "ResultReader",
    "ResultSummary",
    "VideoInferResultFileError",
    "iter_frames",
    "summarize_result",
    "write_rows",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

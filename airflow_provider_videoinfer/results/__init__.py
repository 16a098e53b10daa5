"""Reading, typing and summarising video inference result files.

The public names are imported lazily, so that importing one module of the package (say
:mod:`.summary`, the summary's definition) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_videoinfer.results.reader import (
        ResultReader,
        VideoInferResultFileError,
        iter_frames,
        summarize_result,
    )
    from airflow_provider_videoinfer.results.rows import write_rows
    from airflow_provider_videoinfer.results.summarizer import Summarizer
    from airflow_provider_videoinfer.results.summary import ModelSummary, ResultSummary
    from videoinfer_contract.results import ResultFrame

_HOMES = {
    "ResultReader": "reader",
    "VideoInferResultFileError": "reader",
    "iter_frames": "reader",
    "summarize_result": "reader",
    "ResultSummary": "summary",
    "ModelSummary": "summary",
    "Summarizer": "summarizer",
    "write_rows": "rows",
}
__all__ = [
    "ModelSummary",
    "ResultFrame",
    "ResultReader",
    "ResultSummary",
    "Summarizer",
    "VideoInferResultFileError",
    "iter_frames",
    "summarize_result",
    "write_rows",
]


def __getattr__(name: str) -> Any:
    if name == "ResultFrame":  # the contract's record, re-exported for readers of this package
        return importlib.import_module("videoinfer_contract.results").ResultFrame
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

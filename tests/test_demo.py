"""``make demo`` says why a run failed: each failed task's error, read from the ``airflow dags test`` log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The shape of a real log (``make demo VIDEO=notavideo.mp4``), shortened.
LOG = """\
2026-12-03T06:14:38.194529Z [error    ] Task failed with exception     [task] loc=task_runner.py:1639
Traceback (most recent call last):
  File ".../airflow/sdk/execution_time/task_runner.py", line 1579, in _run_task_and_map_outcome
    result = _execute_task(context=context, ti=ti, log=log)
  File ".../airflow_provider_videoinfer/contract.py", line 81, in wrapper
    raise VideoInferValidationError(str(err)) from None
airflow_provider_videoinfer.exceptions.VideoInferValidationError: video '/tmp/notavideo.mp4' is not a video: its \
first bytes (b'G\\x06O') match no video container, not of an MP4, AVI, MKV or WebM file.
2026-12-03T06:14:38.197416Z [info     ] ::group::Post Execute          [task] loc=task_runner.py:1640
2026-12-03T06:14:38.277045Z [info     ] [DAG TEST] end task task_id=upload map_index=-1 [airflow.sdk.definitions.dag]
2026-12-03T06:14:38.300000Z [info     ] [DAG TEST] end task task_id=other map_index=-1 [airflow.sdk.definitions.dag]
2026-12-03T06:14:40.446238Z [info     ] DagRun Finished: dag_id=videoinfer_quickstart, state=failed
DagRun failed
"""


def _demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_failed_tasks_error_is_found_in_the_log():
    errors = _demo().task_errors(LOG)
    assert errors == {
        "upload": "VideoInferValidationError: video '/tmp/notavideo.mp4' is not a video: its first bytes "
        "(b'G\\x06O') match no video container, not of an MP4, AVI, MKV or WebM file."
    }


def test_a_log_without_failures_names_none():
    assert _demo().task_errors("[DAG TEST] end task task_id=upload map_index=-1\nDagRun Finished: state=success") == {}

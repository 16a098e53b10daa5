"""The staging operator's deferrable wait against the real local server: under ``dag.test()``, the
trigger's serialized form, an outage ridden out, a definite error, and a timeout that names the count."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import textwrap
import time

import pytest
from helpers import API_KEY, inject_fault, key_leaks_in_airflow, request_times, run_dag, states, xcom

from airflow_provider_videoinfer.exceptions import VideoInferAuthError, VideoInferTimeoutError
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchHook
from airflow_provider_videoinfer.operators.batch_staging import VideoInferBatchStageOperator
from airflow_provider_videoinfer.triggers.batch import VideoInferBatchCountTrigger
from airflow_provider_videoinfer.triggers.events import CountEvent, CountKind

#: The fault-injection name of ``GET /batches/{batch_id}/count`` on the local server.
COUNT_ENDPOINT = "staging_count"


def _staged(batch_id: str, video, names=("clip.mp4",)) -> str:
    hook = VideoInferBatchHook()
    if hook.count(batch_id) < len(names):
        for name in names:
            hook.upload_video(batch_id, video, name)
    return batch_id


def _rebuilt(trigger: VideoInferBatchCountTrigger) -> VideoInferBatchCountTrigger:
    """The trigger as the triggerer rebuilds it: from its serialized, JSON-encoded kwargs."""
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


def _events(trigger: VideoInferBatchCountTrigger) -> list[dict]:
    async def run() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(run())


def test_a_deferred_stage_under_dag_test_returns_the_batch_id(
    videoinfer_conn, airflow_db, sample_video, tmp_path, capfd
):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("one.mp4", "two.mp4"):
        (videos / name).write_bytes(sample_video.read_bytes())
    counts_before = len(request_times(videoinfer_conn, COUNT_ENDPOINT))

    run = run_dag("vi_test_batch_stage_deferred", source=str(videos), batch_id="deferred-stage")

    assert states(run) == {"stage": "success"}
    assert xcom(run, "stage") == "deferred-stage"
    assert VideoInferBatchHook().count("deferred-stage") == 2
    out, err = capfd.readouterr()
    printed = " ".join((out + err).split())
    assert "the wait for its 2 video(s) continues in the triggerer" in printed
    assert "Batch deferred-stage holds its 2 video(s)." in printed
    assert len(request_times(videoinfer_conn, COUNT_ENDPOINT)) > counts_before
    assert API_KEY not in printed
    assert key_leaks_in_airflow(API_KEY) == []


def test_the_trigger_serializes_no_key_nor_url(videoinfer_conn):
    deadline = time.time() + 60
    trigger = VideoInferBatchCountTrigger("some-batch", 3, deadline, poll_interval=0.5)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_videoinfer.triggers.batch.VideoInferBatchCountTrigger"
    assert kwargs == {
        "batch_id": "some-batch",
        "expected": 3,
        "deadline": deadline,
        "videoinfer_conn_id": "videoinfer_default",
        "poll_interval": 0.5,
    }
    text = json.dumps(kwargs)
    assert API_KEY not in text and "http" not in text and videoinfer_conn.base_url not in text


def test_the_trigger_rides_out_503s_on_the_count(videoinfer_conn, sample_video):
    batch_id = _staged("count-outage", sample_video)
    inject_fault(videoinfer_conn, COUNT_ENDPOINT, "status", count=3, status_code=503)
    before = len(request_times(videoinfer_conn, COUNT_ENDPOINT))

    trigger = _rebuilt(VideoInferBatchCountTrigger(batch_id, 1, time.time() + 60, poll_interval=0.05))
    (event,) = _events(trigger)

    assert event == CountEvent(CountKind.HELD, batch_id, 1, 1).to_payload()
    assert len(request_times(videoinfer_conn, COUNT_ENDPOINT)) - before == 4  # three 503s, then the count
    assert VideoInferBatchStageOperator(task_id="stage", sources=str(sample_video)).execute_complete({}, event) == (
        batch_id
    )


def test_a_refused_key_ends_the_wait_at_once(videoinfer_conn, sample_video):
    batch_id = _staged("count-refused", sample_video)
    inject_fault(videoinfer_conn, COUNT_ENDPOINT, "status", count=1, status_code=401)
    before = len(request_times(videoinfer_conn, COUNT_ENDPOINT))

    (event,) = _events(VideoInferBatchCountTrigger(batch_id, 1, time.time() + 60, poll_interval=0.05))

    assert event["kind"] == "error" and len(request_times(videoinfer_conn, COUNT_ENDPOINT)) - before == 1
    operator = VideoInferBatchStageOperator(task_id="stage", sources=str(sample_video))
    with pytest.raises(VideoInferAuthError, match=f"batch {batch_id} .*an unknown number of 1 videos"):
        operator.execute_complete({}, event)


def test_a_wait_that_reaches_its_deadline_names_the_batch_and_the_counts(videoinfer_conn, sample_video):
    batch_id = _staged("count-short", sample_video)

    (event,) = _events(VideoInferBatchCountTrigger(batch_id, 3, time.time() + 0.5, poll_interval=0.1))

    assert event["kind"] == "timeout" and event["count"] == 1
    operator = VideoInferBatchStageOperator(task_id="stage", sources=str(sample_video))
    with pytest.raises(VideoInferTimeoutError, match=f"Batch {batch_id} held 1 of 3 videos after"):
        operator.execute_complete({}, event)


def test_the_deferrable_default_is_the_official_providers_expression():
    """What Airflow's check_deferrable_default asks of its own providers, in the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(VideoInferBatchStageOperator.__init__)))
    (init,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    defaults = dict(zip((arg.arg for arg in init.args.kwonlyargs), init.args.kw_defaults, strict=True))
    expected = 'conf.getboolean("operators", "default_deferrable", fallback=False)'
    assert ast.unparse(defaults["deferrable"]) == ast.unparse(ast.parse(expected, mode="eval").body)


def test_the_deferral_carries_the_deadline_and_a_backstop(videoinfer_conn, sample_video):
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    operator = VideoInferBatchStageOperator(
        task_id="stage", sources=str(sample_video), batch_id="deferral-shape", wait_timeout=300, deferrable=True
    )
    started = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, VideoInferBatchCountTrigger)
    assert (trigger.batch_id, trigger.expected) == ("deferral-shape", 1)
    assert started + 300 <= trigger.deadline <= time.time() + 300
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() > 300

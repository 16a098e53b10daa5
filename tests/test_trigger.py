"""The trigger against the real local server: one event per run, serialization, deadlines."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time

import pytest
import requests
from helpers import API_KEY, clear_faults, connection_json, inject_fault

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


def _submit(video, models=(MOTION,)) -> str:
    hook = VideoInferHook()
    return hook.submit_job(hook.upload_video(video), 5, list(models))


async def _events(trigger: VideoInferJobTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def _rebuild(trigger: VideoInferJobTrigger) -> VideoInferJobTrigger:
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def test_success_event_carries_the_output_url(videoinfer_conn, sample_video):
    job_id = _submit(sample_video)
    events = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2, deadline=time.time() + 60))
    assert len(events) == 1
    assert events[0]["kind"] == "succeeded" and events[0]["job_id"] == job_id and events[0]["code"] == 0
    assert requests.get(events[0]["output_url"], timeout=5).json()["frame_offset"][0] == 0


async def test_failure_event_carries_code_and_message(videoinfer_conn, sample_video):
    job_id = _submit(sample_video, [{**MOTION, "model_id": "no-such-model"}])
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2))
    assert event["kind"] == "failed" and event["code"] > 1 and "no-such-model" in event["message"]


async def test_forced_failure_status_is_reported(slow_conn, sample_video):
    job_id = _submit(sample_video)
    requests.post(
        f"{slow_conn.base_url}/_faults/jobs/{job_id}",
        params={"api_key": API_KEY},
        json={"status": 7, "error": "GPU on fire"},
        timeout=5,
    ).raise_for_status()
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2))
    assert (event["kind"], event["code"], event["message"]) == ("failed", 7, "GPU on fire")


async def test_deadline_gives_a_timeout_event(videoinfer_conn, sample_video):
    job_id = _submit(sample_video)
    # No poll can see the job end (every status read fails until the faults are cleared): the
    # deadline ends the wait, whatever the job and the machine's load do meanwhile.
    inject_fault(videoinfer_conn, "status", "status", count=100_000, status_code=503)
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2, deadline=time.time() + 0.5))
    assert event["kind"] == "timeout" and event["job_id"] == job_id


async def test_rebuilt_from_serialize_mid_job_finishes_with_the_same_deadline(videoinfer_conn, sample_video):
    job_id = _submit(sample_video)
    # The first trigger cannot see the job end (every status read fails) before its triggerer dies.
    inject_fault(videoinfer_conn, "status", "status", count=100_000, status_code=503)
    first = VideoInferJobTrigger(job_id, poll_interval=0.3, deadline=time.time() + 120)
    with pytest.raises(asyncio.TimeoutError):  # the triggerer dies while the job's state is unknown
        await asyncio.wait_for(_events(first), timeout=1.0)
    clear_faults(videoinfer_conn)
    rebuilt = _rebuild(first)
    assert rebuilt.deadline == first.deadline and rebuilt.serialize() == first.serialize()
    (event,) = await _events(rebuilt)
    assert event["kind"] == "succeeded" and event["job_id"] == job_id


def test_serialized_trigger_holds_no_key(videoinfer_conn):
    _, kwargs = VideoInferJobTrigger("job-1", poll_interval=5, deadline=123.0).serialize()
    assert kwargs == {
        "job_id": "job-1",
        "videoinfer_conn_id": "videoinfer_default",
        "poll_interval": 5.0,
        "deadline": 123.0,
    }
    assert API_KEY not in json.dumps(kwargs)


async def test_bad_key_gives_an_error_event_without_the_key(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url, api_key="wrong-key-42"))
    (event,) = await _events(VideoInferJobTrigger("job-1", poll_interval=0.2))
    assert event["kind"] == "error" and "refused the API key" in event["message"]
    assert "wrong-key-42" not in json.dumps(event)


async def test_missing_connection_gives_an_error_event(monkeypatch):
    (event,) = await _events(VideoInferJobTrigger("job-1", "no_such_conn", poll_interval=0.2))
    assert event["kind"] == "error" and "no_such_conn" in event["message"]


async def test_transient_errors_are_retried_then_the_job_completes(videoinfer_conn, sample_video):
    job_id = _submit(sample_video)
    inject_fault(videoinfer_conn, "status", "status", count=2, status_code=503, retry_after=0.1)
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2))
    assert event["kind"] == "succeeded"


async def test_answer_without_status_is_an_error_not_a_success(videoinfer_conn, sample_video):
    """Malformed answers leave the state unknown: ridden out until the deadline, never taken as a success."""
    job_id = _submit(sample_video)
    inject_fault(videoinfer_conn, "status", "malformed", count=1000)
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2, deadline=time.time() + 2))
    assert event["kind"] == "timeout" and "state was unknown" in event["message"] and "not JSON" in event["message"]
    requests.delete(f"{videoinfer_conn.base_url}/_faults", params={"api_key": API_KEY}, timeout=5).raise_for_status()
    inject_fault(videoinfer_conn, "status", "malformed", count=3)
    (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=0.2))
    assert event["kind"] == "succeeded"


async def test_first_poll_respects_the_rate_limit_after_the_sensor_checked(tmp_path, sample_video, monkeypatch, capfd):
    from videoinfer_server.launch import run_server

    with run_server(tmp_path / "limited", API_KEY, poll_min_interval=1.0, min_job_seconds=2) as limited:
        monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(limited.base_url))
        job_id = _submit(sample_video)
        VideoInferHook().get_job(job_id)  # the deferrable sensor's own check before it defers
        (event,) = await _events(VideoInferJobTrigger(job_id, poll_interval=1.0))
    assert event["kind"] == "succeeded", event
    out, err = capfd.readouterr()
    # A poll that came too soon would have been answered 429: ridden out, but logged as a failed poll.
    assert "poll failed" not in out + err
    (first,) = re.findall(rf"Job {job_id}: first poll in ([\d.]+) s, at \d\d:\d\d:\d\d UTC", out + err)
    assert 1.0 <= float(first) <= 2.0

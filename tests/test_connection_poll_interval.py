"""The connection's extra ``poll_interval``: the pace of every wait whose task sets none.

A connection to the local server says ``"poll_interval": 1``, so a first DAG's job, done in under a
second, is seen done a second later rather than a minute (the hosted API's pace, the default).
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection
from helpers import API_KEY, connection_json, task_context

from airflow_provider_videoinfer.exceptions import VideoInferConfigError
from airflow_provider_videoinfer.hooks.settings import (
    DEFAULT_POLL_INTERVAL,
    ClientSettings,
    check_task_wait,
    effective_poll_interval,
)
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


def _settings(**extra: object) -> ClientSettings:
    conn = Connection(
        conn_id="c", conn_type="videoinfer", host="http://127.0.0.1:9", password=API_KEY, extra=json.dumps(extra)
    )
    return ClientSettings.from_connection(conn)


def test_the_connection_sets_the_pace_of_tasks_that_set_none():
    assert _settings().poll_interval == DEFAULT_POLL_INTERVAL == 60
    fast = _settings(poll_interval=0.5)
    assert effective_poll_interval(None, fast, 3600) == 0.5
    assert effective_poll_interval(30.0, fast, 3600) == 30.0  # the task's own wins
    assert effective_poll_interval(None, _settings(), 20) == 20  # never past the task's timeout
    assert check_task_wait(None, 300, "wait_timeout") == (None, 300.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, r"'poll_interval' must be above 0"), ("fast", r"'poll_interval' must be a number"), (1e9, "above the most")],
)
def test_a_bad_poll_interval_in_the_extra_is_refused(value, message):
    with pytest.raises(VideoInferConfigError, match=message):
        _settings(poll_interval=value)


def test_deferred_waits_poll_at_the_connections_pace(slow_server, monkeypatch, sample_video):
    """The submit operator and the sensor, deferring while a job runs (the slow server's run 4 s at least),
    hand the connection's interval to the trigger."""
    from airflow.exceptions import TaskDeferred

    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(slow_server.base_url, poll_interval=0.25))
    hook = VideoInferHook()
    submit = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=hook.upload_video(sample_video),
        infer_fps=5,
        models=[MOTION],
        wait_for_completion=True,
        deferrable=True,
    )
    sensor = VideoInferJobSensor(task_id="wait", job_id="{{ ti.xcom_pull('submit') }}", deferrable=True)
    assert submit.poll_interval is None and sensor.poll_interval is None  # known at run time, from the connection
    context = task_context()
    with pytest.raises(TaskDeferred) as submitted:
        submit.execute(context)
    assert submitted.value.trigger.poll_interval == 0.25
    sensor.job_id = context["ti"].pushed["job_id"]  # as rendered
    with pytest.raises(TaskDeferred) as waiting:
        sensor.execute(task_context())
    assert waiting.value.trigger.poll_interval == 0.25


def test_a_poking_sensor_polls_at_the_connections_pace(slow_server, monkeypatch, sample_video, capfd):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(slow_server.base_url, poll_interval=0.25))
    hook = VideoInferHook()
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
    sensor = VideoInferJobSensor(task_id="wait", job_id=job_id, deferrable=False, mode="poke")
    assert sensor.poke({}) is False
    out, err = capfd.readouterr()
    assert "is running; next poll in 0.2 s" in out + err  # (0.25 s, as the log rounds it)

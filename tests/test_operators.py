"""Operators and the sensor refuse bad input when the DAG is parsed, where the values are already known."""

from __future__ import annotations

import pytest

from airflow_provider_videoinfer.contract import ModelSpec
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
URL = "https://example.com/video.mp4"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"infer_fps": 0}, "between 1 and 120, got 0"),
        ({"infer_fps": -3}, "between 1 and 120, got -3"),
        ({"infer_fps": 2.5}, "whole number"),
        ({"infer_fps": 121}, "between 1 and 120, got 121"),
        ({"models": []}, "models is empty"),
        ({"models": [{**MOTION, "inference_type": "detect"}]}, "inference_type 'detect'"),
        ({"models": [{**MOTION, "model_id": ""}]}, "model_id must be a non-empty string"),
        ({"input_url": "/local/video.mp4"}, "must be an http:// or https:// URL"),
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
        ({"wait_timeout": -1}, "wait_timeout must be a positive number"),
    ],
)
def test_inference_operator_rejects_bad_input_at_parse_time(kwargs, message):
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferSubmitJobOperator(task_id="t", **{"input_url": URL, "infer_fps": 5, "models": [MOTION], **kwargs})


def test_templated_values_are_checked_at_run_time_instead():
    op = VideoInferSubmitJobOperator(
        task_id="t", input_url="{{ ti.xcom_pull('upload') }}", infer_fps="{{ params.fps }}", models="{{ params.m }}"
    )
    assert op.infer_fps == "{{ params.fps }}"


def test_model_specs_are_stored_as_dicts_so_the_dag_serializes():
    op = VideoInferSubmitJobOperator(
        task_id="t", input_url=URL, infer_fps=5, models=[ModelSpec("clip", 1, "clip-embed-image")]
    )
    assert op.models == [{"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"}]


@pytest.mark.parametrize(
    ("video", "file_name"), [("/data/clip.mov", None), ("/data/clip.mp4", "clip.mov"), ("s3://b/clip.mov", None)]
)
def test_upload_operator_checks_a_static_name_at_parse_time(video, file_name):
    with pytest.raises(VideoInferValidationError, match=r"unsupported extension \.mov"):
        VideoInferUploadOperator(task_id="t", video=video, file_name=file_name)


def test_upload_operator_accepts_templates_and_good_names():
    VideoInferUploadOperator(task_id="a", video="{{ params.video }}")
    VideoInferUploadOperator(task_id="b", video="s3://bucket/Clip.MP4")
    VideoInferUploadOperator(task_id="c", video="{{ params.video }}", file_name="x.webm")


def test_sensor_rejects_a_non_positive_poll_interval():
    with pytest.raises(VideoInferValidationError, match="poll_interval"):
        VideoInferJobSensor(task_id="t", job_id="j", poll_interval=0)


@pytest.mark.parametrize("value", [True, 0, -1, float("nan"), float("inf"), "60"])
def test_operator_and_sensor_share_one_seconds_check(value):
    with pytest.raises(VideoInferValidationError, match="poll_interval must be a positive number of seconds"):
        VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION], poll_interval=value)
    with pytest.raises(VideoInferValidationError, match="poll_interval must be a positive number of seconds"):
        VideoInferJobSensor(task_id="t", job_id="j", poll_interval=value)


def test_a_bare_model_spec_is_stored_as_a_dict():
    op = VideoInferSubmitJobOperator(
        task_id="t", input_url=URL, infer_fps=5, models=ModelSpec("clip", 1, "clip-embed-image")
    )
    assert op.models == {"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"}


def test_operators_add_their_hint_to_the_contract_message():
    with pytest.raises(VideoInferValidationError, match="upload local files with VideoInferUploadOperator"):
        VideoInferSubmitJobOperator(task_id="t", input_url="/videos/v.mp4", infer_fps=5, models=[MOTION])
    with pytest.raises(VideoInferValidationError, match="v.mp4 is a local file.*VideoInferUploadOperator"):
        VideoInferSubmitJobOperator(task_id="t", input_url="file:///videos/v.mp4", infer_fps=5, models=[MOTION])
    with pytest.raises(VideoInferValidationError, match="job_id must be .* VideoInferSubmitJobOperator returns"):
        VideoInferJobSensor(task_id="t", job_id="a job")
    VideoInferJobSensor(task_id="t", job_id="{{ ti.xcom_pull('submit') }}")


def test_duplicate_models_fail_at_parse_time():
    with pytest.raises(VideoInferValidationError, match="appears twice or more"):
        VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION, MOTION])


@pytest.mark.parametrize(("setting", "expected"), [(None, True), ("false", False), ("True", True)])
def test_deferrable_follows_the_deployment_setting_when_set(monkeypatch, setting, expected):
    if setting is None:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    assert VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION]).deferrable is expected
    assert VideoInferJobSensor(task_id="s", job_id="j").deferrable is expected
    explicit = VideoInferJobSensor(task_id="e", job_id="j", deferrable=not expected)
    assert explicit.deferrable is (not expected)


def test_a_generated_config_file_does_not_turn_deferral_off(monkeypatch):
    """Airflow writes ``default_deferrable = false`` into every airflow.cfg it generates: not a choice."""
    from airflow.sdk.configuration import conf

    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    previous = conf.get("operators", "default_deferrable", fallback=None)
    conf.set("operators", "default_deferrable", "False")
    try:
        assert VideoInferJobSensor(task_id="s", job_id="j").deferrable is True
    finally:
        if previous is not None:
            conf.set("operators", "default_deferrable", previous)

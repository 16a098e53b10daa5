"""Operators and the sensor refuse bad input when the DAG is parsed, where the values are already known."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.contract import ModelSpec
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
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


@pytest.mark.parametrize(
    ("value", "message"),
    [
        *((value, "poll_interval must be a positive number of seconds") for value in (True, 0, -1, float("nan"), "60")),
        (float("inf"), "poll_interval is inf, and a wait needs an end"),
    ],
)
def test_operator_and_sensor_share_one_seconds_check(value, message):
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION], poll_interval=value)
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferJobSensor(task_id="t", job_id="j", poll_interval=value)


def test_a_bare_model_spec_is_kept_and_sent_as_its_payload():
    spec = ModelSpec("clip", 1, "clip-embed-image")
    op = VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=spec)
    assert op.models is spec
    request = contract.build_job_request(op.input_url, op.infer_fps, op.models)
    assert request.to_payload()["models"] == [
        {"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"}
    ]


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


DEFAULT = 'conf.getboolean("operators", "default_deferrable", fallback=False)'


@pytest.mark.parametrize("cls", [VideoInferSubmitJobOperator, VideoInferJobSensor])
def test_the_deferrable_default_is_the_official_providers_expression(cls):
    """Exactly what Airflow's check_deferrable_default asks of its own providers, in the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    (init,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    defaults = dict(zip((arg.arg for arg in init.args.kwonlyargs), init.args.kw_defaults, strict=True))
    assert ast.unparse(defaults["deferrable"]) == ast.unparse(ast.parse(DEFAULT, mode="eval").body)


@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "False False"), ("true", "True True"), ("False", "False False")]
)
def test_deferrable_follows_default_deferrable(setting, expected):
    """The default is read when the provider is imported, as in the official providers: a fresh process each."""
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"}
    if setting is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    code = (
        "from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator as O\n"
        "from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor as S\n"
        f"o = O(task_id='t', input_url={URL!r}, infer_fps=5, models=[{MOTION!r}])\n"
        "print(o.deferrable, S(task_id='s', job_id='j').deferrable)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == expected


def test_an_explicit_deferrable_wins():
    assert VideoInferJobSensor(task_id="s", job_id="j", deferrable=True).deferrable is True
    op = VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION], deferrable=True)
    assert op.deferrable is True


def _every_class(**fields):
    """One instance of each operator and the sensor, with ``fields`` for the shared arguments."""
    return [
        VideoInferUploadOperator(task_id="upload", video="/data/clip.mp4", **fields),
        VideoInferSubmitJobOperator(task_id="submit", input_url=URL, infer_fps=5, models=[MOTION], **fields),
        VideoInferJobSensor(task_id="wait", job_id="j", **fields),
        VideoInferResultsOperator(task_id="results", output_url=URL, **fields),
    ]


def test_the_connection_id_is_templated_everywhere():
    for task in _every_class():
        assert "videoinfer_conn_id" in task.template_fields, type(task).__name__


def test_a_templated_connection_id_is_rendered_before_the_hook_reads_it():
    context = {"params": {"conn": "videoinfer_rendered"}}
    for task in _every_class(videoinfer_conn_id="{{ params.conn }}"):
        task.render_template_fields(context)  # type: ignore[arg-type]
        assert task.hook.videoinfer_conn_id == "videoinfer_rendered", type(task).__name__


def test_template_fields_keep_the_values_given():
    """What __init__ receives is what Airflow renders, unchanged (Airflow's validate_operators_init)."""
    given = {
        VideoInferUploadOperator: {"video": Path("/data/clip.mp4"), "file_name": "clip.mp4"},
        VideoInferSubmitJobOperator: {
            "input_url": URL,
            "infer_fps": 5,
            "models": [ModelSpec("clip", 1, "clip-embed-image")],
            "video": Path("/data/clip.mp4"),
        },
        VideoInferJobSensor: {"job_id": "j"},
        VideoInferResultsOperator: {
            "output_url": URL,
            "destination": Path("/data/results/r.json"),
            "rows_destination": Path("/data/results/rows.jsonl"),
            "video": Path("/data/clip.mp4"),
        },
    }
    # job_id is the results operator's alternative to output_url: templated, and not given here.
    alternatives = {VideoInferResultsOperator: {"job_id"}}
    for cls, values in given.items():
        task = cls(task_id="t", videoinfer_conn_id="videoinfer_other", **values)
        expected = {"videoinfer_conn_id", *values, *alternatives.get(cls, ())}
        assert set(task.template_fields) == expected, cls.__name__
        for name, value in values.items():
            assert getattr(task, name) is value, f"{cls.__name__}.{name}"
        assert task.videoinfer_conn_id == "videoinfer_other"


@pytest.mark.parametrize(
    ("value", "described", "allowed"),
    [
        (False, "resubmit_failed_jobs=False", set()),
        (True, "resubmit_failed_jobs=True", {2, 3, 4, 5, 6, 99}),
        ({2}, "resubmit_failed_jobs={2}", {2}),
        ([6, 2], "resubmit_failed_jobs={2, 6}", {2, 6}),
        ((), "resubmit_failed_jobs=False", set()),
    ],
)
def test_resubmit_failed_jobs_says_which_failures_a_retry_pays_for_again(value, described, allowed):
    task = VideoInferSubmitJobOperator(
        task_id="t", input_url=URL, infer_fps=5, models=[MOTION], resubmit_failed_jobs=value
    )
    assert str(task.resubmit_failed_jobs) == described
    assert {code for code in range(2, 100) if task.resubmit_failed_jobs.allows(code)} == (
        set(range(2, 100)) if value is True else allowed
    )


def test_the_default_never_pays_again_for_a_failed_job():
    task = VideoInferSubmitJobOperator(task_id="t", input_url=URL, infer_fps=5, models=[MOTION])
    assert not any(task.resubmit_failed_jobs.allows(code) for code in range(2, 100))


@pytest.mark.parametrize("value", [{1}, {0, 2}, {"2"}, {2.0}, "2", {True}, None, {2: "x"}])
def test_resubmit_failed_jobs_rejects_anything_else_at_parse_time(value):
    with pytest.raises(VideoInferValidationError, match=r"resubmit_failed_jobs must be False .* got"):
        VideoInferSubmitJobOperator(
            task_id="t", input_url=URL, infer_fps=5, models=[MOTION], resubmit_failed_jobs=value
        )


class _SilentlyUnwritable(dict):
    """A store backend that drops writes without a word, as the Task SDK's ``Variable.set`` of Airflow 3.0 to
    3.2 does when the metadata database refuses them (it only logs the failure)."""

    def set(self, key, value):
        pass

    def delete(self, key):
        pass


def test_a_task_with_retries_that_cannot_keep_its_job_id_submits_nothing(videoinfer_conn):
    from helpers import server_jobs, task_context

    from airflow_provider_videoinfer.exceptions import VideoInferStoreError

    before = len(server_jobs(videoinfer_conn))
    task = VideoInferSubmitJobOperator(
        task_id="s", input_url=f"{videoinfer_conn.base_url}/v.mp4", infer_fps=5, models=[MOTION], retries=2
    )
    context = {**task_context(), "task_state_store": _SilentlyUnwritable()}
    with pytest.raises(VideoInferStoreError, match=r"could not be read back.*with retries=2, a retry would pay"):
        task.execute(context)  # type: ignore[arg-type]
    assert len(server_jobs(videoinfer_conn)) == before

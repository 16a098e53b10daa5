"""Validation and parsing of the contract: every bad input gets its own clear message."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_videoinfer import api
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferInvalidRequestError,
    VideoInferJobFailedError,
    VideoInferNotFoundError,
    VideoInferRateLimitError,
    VideoInferResponseError,
    VideoInferServerError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.retry import RetryPolicy, parse_retry_after

MODEL = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "between 1 and 120, got 0"),
        (-5, "between 1 and 120, got -5"),
        (121, "between 1 and 120, got 121"),
        (2.5, "whole number"),
        ("abc", "whole number"),
        (None, "whole number"),
        (True, "whole number"),
        (float("nan"), "whole number"),
    ],
)
def test_infer_fps_rejected(value, message):
    with pytest.raises(VideoInferValidationError, match=message):
        api.validate_infer_fps(value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (120, 120), (5.0, 5), ("10", 10), (" 4 ", 4)])
def test_infer_fps_accepted(value, expected):
    assert api.validate_infer_fps(value) == expected


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([], "models is empty"),
        ("motion-detection", "must be a list"),
        (42, "must be a list"),
        ([{**MODEL, "model_id": ""}], r"models\[0\]: model_id must be a non-empty string"),
        ([{k: v for k, v in MODEL.items() if k != "model_id"}], r"models\[0\]: model_id"),
        ([MODEL, {**MODEL, "model_version": None}], r"models\[1\]: model_version .* must be a string or an integer"),
        ([{**MODEL, "model_version": " "}], "must not be empty"),
        ([{**MODEL, "inference_type": "detection"}], "inference_type 'detection' .* use one of object-detection"),
        ([{**MODEL, "inference_params": [0.4]}], "inference_params .* must be a dict"),
        ([{**MODEL, "confidence": 0.4}], r"unknown keys \['confidence'\]"),
        (["motion-detection"], r"models\[0\] must be a dict or ModelSpec"),
    ],
)
def test_models_rejected(models, message):
    with pytest.raises(VideoInferValidationError, match=message):
        api.validate_models(models)


def test_model_version_int_is_sent_as_string_and_params_kept():
    specs = api.validate_models([{**MODEL, "model_version": 4, "inference_params": {"confidence": 0.4}}])
    assert specs[0].to_payload() == {**MODEL, "model_version": "4", "inference_params": {"confidence": 0.4}}
    assert api.validate_models(api.ModelSpec("clip", 1, "clip-embed-image"))[0].model_version == "1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty http"),
        (None, "non-empty http"),
        ("/tmp/video.mp4", "must be an http:// or https:// URL"),
        ("s3://bucket/video.mp4", "upload local files with VideoInferUploadOperator"),
        ("ftp://host/video.mp4", "must be an http"),
    ],
)
def test_input_url_rejected(url, message):
    with pytest.raises(VideoInferValidationError, match=message):
        api.validate_input_url(url)


def test_input_url_message_never_shows_a_key():
    with pytest.raises(VideoInferValidationError) as err:
        api.validate_input_url("ftp://host/v.mp4?api_key=SECRET123")
    assert "SECRET123" not in str(err.value)


@pytest.mark.parametrize("job_id", ["", "  ", None, 12, "a b"])
def test_job_id_rejected(job_id):
    with pytest.raises(VideoInferValidationError, match="job_id must be a non-empty string"):
        api.validate_job_id(job_id)


@pytest.mark.parametrize("name", ["a.mp4", "B.MP4", "c.Avi", "d.mkv", "e.WEBM"])
def test_file_names_accepted(name):
    assert api.validate_video_file_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("clip.mov", r"unsupported extension \.mov"),
        ("clip", r"unsupported extension \(none\)"),
        ("../clip.mp4", "bare file name"),
        ("a/b.mp4", "bare file name"),
        ("", "non-empty"),
    ],
)
def test_file_names_rejected(name, message):
    with pytest.raises(VideoInferValidationError, match=message):
        api.validate_video_file_name(name)


def test_job_state_parsing():
    done = api.parse_job_state("j1", {"status": 0, "output_signed_url": "https://x/r.json", "extra": 1})
    assert (done.status, done.code, done.output_url) == (api.JobStatus.SUCCEEDED, 0, "https://x/r.json")
    running = api.parse_job_state("j1", {"status": 1})
    assert running.status is api.JobStatus.RUNNING and not running.status.is_terminal
    failed = api.parse_job_state("j1", {"status": 3, "error": "corrupt video"})
    assert (failed.status, failed.code, failed.error) == (api.JobStatus.FAILED, 3, "corrupt video")
    assert api.parse_job_state("j1", {"status": 7, "message": "boom"}).error == "boom"
    assert api.JobState.from_dict(failed.to_dict()) == failed


@pytest.mark.parametrize(
    "body", [{}, {"status": "0"}, {"status": None}, {"status": 0.0}, {"status": -1}, {"status": True}, []]
)
def test_job_state_without_integer_status_is_an_error_not_a_success(body):
    with pytest.raises(VideoInferResponseError, match="job j1"):
        api.parse_job_state("j1", body)


def test_success_without_output_url_is_an_error():
    with pytest.raises(VideoInferResponseError, match="no 'output_signed_url'"):
        api.parse_job_state("j1", {"status": 0})


def test_failed_job_error_names_job_code_and_reason_and_pickles():
    err = api.job_failed(api.JobState("j9", api.JobStatus.FAILED, 4, error="unknown model"))
    assert isinstance(err, VideoInferJobFailedError)
    assert str(err) == "Video inference job j9 failed with status 4: unknown model"
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, VideoInferAuthError),
        (403, VideoInferAuthError),
        (404, VideoInferNotFoundError),
        (400, VideoInferInvalidRequestError),
        (413, VideoInferInvalidRequestError),
        (429, VideoInferRateLimitError),
        (500, VideoInferServerError),
        (503, VideoInferServerError),
    ],
)
def test_error_for_status(status, cls):
    err = api.error_for_status(status, "details http://h/?api_key=SECRET123", "status of job j1")
    assert isinstance(err, cls)
    assert "status of job j1" in str(err) and "SECRET123" not in str(err)


def test_redact():
    assert api.redact("GET /x?api_key=abc&job_id=1") == "GET /x?api_key=***&job_id=1"
    assert api.redact("key is abc", "abc") == "key is ***"


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_retry_policy_from_extra():
    policy = RetryPolicy.from_extra({"retry_max_attempts": "3", "retry_max_wait": 2})
    assert (policy.max_attempts, policy.max_wait, policy.initial_wait) == (3, 2.0, 1.0)
    with pytest.raises(Exception, match="must be a number"):
        RetryPolicy.from_extra({"retry_max_attempts": "many"})

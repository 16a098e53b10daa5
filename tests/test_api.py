"""Validation and parsing of the contract: every bad input gets its own clear message."""

from __future__ import annotations

import datetime
import pickle

import pytest

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferConfigError,
    VideoInferConnectionError,
    VideoInferError,
    VideoInferFatalError,
    VideoInferInvalidRequestError,
    VideoInferJobFailedError,
    VideoInferNotFoundError,
    VideoInferRateLimitError,
    VideoInferResponseError,
    VideoInferServerError,
    VideoInferTimeoutError,
    VideoInferTransientError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks import responses
from airflow_provider_videoinfer.hooks.settings import retry_policy
from airflow_provider_videoinfer.triggers.events import EventKind, JobEvent

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
        contract.validate_infer_fps(value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (120, 120), (5.0, 5), ("10", 10), (" 4 ", 4)])
def test_infer_fps_accepted(value, expected):
    assert contract.validate_infer_fps(value) == expected


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
        contract.validate_models(models)


def test_model_version_int_is_sent_as_string_and_params_kept():
    specs = contract.validate_models([{**MODEL, "model_version": 4, "inference_params": {"confidence": 0.4}}])
    assert specs[0].to_payload() == {**MODEL, "model_version": "4", "inference_params": {"confidence": 0.4}}
    assert contract.validate_models(contract.ModelSpec("clip", 1, "clip-embed-image"))[0].model_version == "1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty http"),
        (None, "non-empty http"),
        ("/tmp/video.mp4", "must be an http:// or https:// URL"),
        ("s3://bucket/video.mp4", "the signed URL of an uploaded video, or a public http"),
        ("ftp://host/video.mp4", "must be an http"),
    ],
)
def test_input_url_rejected(url, message):
    with pytest.raises(VideoInferValidationError, match=message):
        contract.validate_input_url(url)


def test_input_url_message_never_shows_a_key():
    with pytest.raises(VideoInferValidationError) as err:
        contract.validate_input_url("ftp://host/v.mp4?api_key=SECRET123")
    assert "SECRET123" not in str(err.value)


@pytest.mark.parametrize("job_id", ["", "  ", None, 12, "a b"])
def test_job_id_rejected(job_id):
    with pytest.raises(VideoInferValidationError, match="job_id must be a non-empty string"):
        contract.validate_job_id(job_id)


@pytest.mark.parametrize("name", ["a.mp4", "B.MP4", "c.Avi", "d.mkv", "e.WEBM"])
def test_file_names_accepted(name):
    assert contract.validate_video_file_name(name) == name


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
        contract.validate_video_file_name(name)


def test_job_state_parsing():
    done = responses.parse_job_state("j1", {"status": 0, "output_signed_url": "https://x/r.json", "extra": 1})
    assert (done.status, done.code, done.output_url) == (contract.JobStatus.SUCCEEDED, 0, "https://x/r.json")
    running = responses.parse_job_state("j1", {"status": 1})
    assert running.status is contract.JobStatus.RUNNING and not running.status.is_terminal
    failed = responses.parse_job_state("j1", {"status": 3, "error": "corrupt video"})
    assert (failed.status, failed.code, failed.error) == (contract.JobStatus.FAILED, 3, "corrupt video")
    assert responses.parse_job_state("j1", {"status": 7, "message": "boom"}).error == "boom"
    event = JobEvent.from_state(failed)
    assert JobEvent.from_payload(event.to_payload()) == event and event.kind is EventKind.FAILED


@pytest.mark.parametrize(
    "body", [{}, {"status": "0"}, {"status": None}, {"status": 0.0}, {"status": -1}, {"status": True}, []]
)
def test_job_state_without_integer_status_is_an_error_not_a_success(body):
    with pytest.raises(VideoInferResponseError, match="job j1"):
        responses.parse_job_state("j1", body)


def test_success_without_output_url_is_an_error():
    with pytest.raises(VideoInferResponseError, match="no 'output_signed_url'"):
        responses.parse_job_state("j1", {"status": 0})


def test_failed_job_error_names_job_code_and_reason_and_pickles():
    err = responses.job_failed(contract.JobState("j9", contract.JobStatus.FAILED, 4, error="unknown model"))
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
        (502, VideoInferServerError),
        (503, VideoInferServerError),
        (504, VideoInferServerError),
        (501, VideoInferServerError),
        (505, VideoInferServerError),
        (408, VideoInferServerError),
        (520, VideoInferServerError),
        (522, VideoInferServerError),
        (524, VideoInferServerError),
        (529, VideoInferServerError),
    ],
)
def test_error_for_status(status, cls):
    err = responses.error_for_status(status, "details http://h/?api_key=SECRET123", "status of job j1")
    assert isinstance(err, cls)
    assert "status of job j1" in str(err) and "SECRET123" not in str(err)


def test_redact():
    assert contract.redact("GET /x?api_key=abc&job_id=1") == "GET /x?api_key=***&job_id=1"
    assert contract.redact("key is abc", "abc") == "key is ***"


def test_retry_after_parsing():
    assert responses.parse_retry_after("3") == 3.0
    assert responses.parse_retry_after(None) is None
    assert responses.parse_retry_after("soon") is None
    assert responses.parse_retry_after("inf") is None
    assert responses.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_retry_policy_from_extra():
    policy = retry_policy({"retry_max_attempts": "3", "retry_max_wait": 2})
    assert (policy.max_attempts, policy.max_wait, policy.initial_wait) == (3, 2.0, 1.0)
    with pytest.raises(Exception, match="must be a number"):
        retry_policy({"retry_max_attempts": "many"})


def test_only_statuses_that_may_pass_are_transient():
    # Every 5xx (a CDN's 520/522/524, an overloaded 529, a proxy's 501/505), 408 and 429 leave the state unknown.
    for status in (408, 429, 500, 501, 502, 503, 504, 505, 511, 520, 522, 524, 529, 599):
        assert isinstance(responses.error_for_status(status, "", "x"), VideoInferTransientError), status
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert not isinstance(responses.error_for_status(status, "", "x"), VideoInferTransientError), status


def test_a_refused_signed_url_is_not_blamed_on_the_api_key():
    err = responses.error_for_status(403, "expired", "download of the job result", signed_url=True)
    assert isinstance(err, VideoInferAuthError)
    assert "signed URL was refused" in str(err) and "API key" not in str(err)
    assert "API key" in str(responses.error_for_status(403, "", "status of job j1"))


def test_decode_response_turns_one_answer_into_a_value_or_an_error():
    assert responses.decode_response(200, {}, '{"status": 1}', "status of job j1") == {"status": 1}
    with pytest.raises(VideoInferRateLimitError) as err:
        responses.decode_response(429, {"retry-after": "7"}, "slow down", "status of job j1")
    assert err.value.retry_after == 7.0
    with pytest.raises(VideoInferResponseError, match="not JSON: '<html>\\?api_key=\\*\\*\\*"):
        responses.decode_response(200, {}, "<html>?api_key=SECRET123", "status of job j1", "SECRET123")


def test_duplicate_model_ids_are_refused_before_any_call():
    with pytest.raises(VideoInferValidationError, match="'motion-detection' appears twice or more"):
        contract.validate_models([MODEL, {**MODEL, "model_version": "2"}])


def test_output_url_gets_its_own_message():
    with pytest.raises(VideoInferValidationError, match="output_url must be an http.*output_signed_url"):
        contract.validate_output_url("s3://bucket/result.json")


@pytest.mark.parametrize(
    "check",
    [
        lambda: contract.validate_input_url("s3://b/v.mp4"),
        lambda: contract.validate_input_url(""),
        lambda: contract.validate_job_id(" "),
        lambda: contract.validate_models([MODEL, MODEL]),
    ],
)
def test_contract_messages_name_no_operator(check):
    """They come back in the local server's HTTP 400 answers, to clients that have no operators."""
    with pytest.raises(VideoInferValidationError) as err:
        check()
    assert "Operator" not in str(err.value) and "Sensor" not in str(err.value)


def test_job_request_is_built_once_and_fingerprinted():
    request = contract.JobRequest.build(" https://h/v.mp4 ", "5", [{**MODEL, "model_version": 1}])
    assert request.to_payload() == {"input_url": "https://h/v.mp4", "infer_fps": 5, "models": [MODEL]}
    same = contract.JobRequest.build("https://h/v.mp4", 5, contract.ModelSpec(**MODEL))
    assert same == request and same.fingerprint == request.fingerprint
    assert contract.JobRequest.build("https://h/v.mp4", 4, [MODEL]).fingerprint != request.fingerprint


def test_a_presigned_request_is_fingerprinted_by_its_storage_uri():
    """Each try signs a new URL; the job is the same as long as the object and the rest are."""
    source = "s3://aws_default@videos/in/clip.mp4"
    first = contract.JobRequest.build("https://s3/videos/in/clip.mp4?X-Amz-Signature=aaa", 5, [MODEL], source=source)
    retry = contract.JobRequest.build("https://s3/videos/in/clip.mp4?X-Amz-Signature=bbb", 5, [MODEL], source=source)
    assert first.fingerprint == retry.fingerprint == contract.job_fingerprint(source, 5, [MODEL])
    assert first.to_payload()["input_url"].endswith("=aaa") and "source" not in first.to_payload()
    other = contract.JobRequest.build(first.input_url, 5, [MODEL], source="s3://aws_default@videos/in/other.mp4")
    assert other.fingerprint != first.fingerprint
    assert "Signature" not in repr(first) and source in repr(first)
    # A request without a source keeps the fingerprint it always had (tasks in flight still reconnect).
    plain = contract.JobRequest.build("https://h/v.mp4", 5, [MODEL])
    assert plain.fingerprint == contract.job_fingerprint("https://h/v.mp4", 5, [MODEL])


@pytest.mark.parametrize(
    ("lifetime", "seconds"), [(60, 60), (86400.0, 86400), (datetime.timedelta(days=7), 604800), ("3600", None)]
)
def test_presigned_url_lifetime_is_whole_seconds_within_what_s3_signs(lifetime, seconds):
    if seconds is None:
        with pytest.raises(VideoInferValidationError, match="presigned_url_lifetime must be whole seconds"):
            contract.validate_presigned_url_lifetime(lifetime)
    else:
        assert contract.validate_presigned_url_lifetime(lifetime) == seconds


@pytest.mark.parametrize(
    "cls",
    [
        VideoInferValidationError,
        VideoInferConfigError,
        VideoInferAuthError,
        VideoInferNotFoundError,
        VideoInferInvalidRequestError,
    ],
)
def test_errors_a_retry_cannot_fix_fail_without_retries(cls):
    from airflow_provider_videoinfer.compat import AirflowFailException

    assert issubclass(cls, AirflowFailException) and issubclass(cls, VideoInferFatalError)


@pytest.mark.parametrize(
    "cls",
    [
        VideoInferServerError,
        VideoInferRateLimitError,
        VideoInferConnectionError,
        VideoInferResponseError,
        VideoInferJobFailedError,
        VideoInferTimeoutError,
    ],
)
def test_errors_that_may_pass_keep_the_task_retries(cls):
    from airflow_provider_videoinfer.compat import AirflowException, AirflowFailException

    assert issubclass(cls, AirflowException) and not issubclass(cls, AirflowFailException)


def test_the_contract_imports_without_airflow():
    """The local server uses the contract (videoinfer_contract) on machines without Airflow."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['airflow'] = None\n"
        "from videoinfer_contract import errors, jobs, redaction, results, validation\n"
        "jobs.validate_models([{'model_id': 'a', 'model_version': 1, 'inference_type': 'classification'}])\n"
        "try:\n"
        "    validation.validate_infer_fps(0)\n"
        "except errors.InvalidInputError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('infer_fps=0 was accepted')\n"
        "assert 'airflow' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_providers_validators_raise_airflows_fail_exception():
    """Bad input fails the task without retries: the contract's plain error comes out as the provider's."""
    from airflow_provider_videoinfer.compat import AirflowFailException

    for check in (
        lambda: contract.validate_infer_fps(0),
        lambda: contract.validate_models([]),
        lambda: contract.build_job_request("ftp://x/v.mp4", 1, MODEL),
        lambda: contract.validate_video_file_name("a/b.mp4"),
    ):
        with pytest.raises(VideoInferValidationError) as caught:
            check()
        assert isinstance(caught.value, AirflowFailException)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (JobEvent(EventKind.FAILED, "j1", code=4, message="unknown model"), VideoInferJobFailedError),
        (JobEvent(EventKind.TIMEOUT, "j1", code=1), VideoInferTimeoutError),
        (JobEvent(EventKind.ERROR, "j1", message="refused", error_type="VideoInferAuthError"), VideoInferAuthError),
        (JobEvent(EventKind.ERROR, "j1", message="x", error_type="builtins.SystemExit"), VideoInferError),
    ],
)
def test_trigger_events_round_trip_and_resume_as_the_right_error(event, error):
    parsed = JobEvent.from_payload(event.to_payload())
    assert parsed == event
    with pytest.raises(error, match="j1"):
        parsed.output_url_or_raise()


def test_success_event_gives_the_output_url_and_bad_payloads_are_bugs():
    event = JobEvent(EventKind.SUCCEEDED, "j1", output_url="https://h/r.json", code=0)
    assert event.to_payload()["kind"] == "succeeded"
    assert JobEvent.from_payload(event.to_payload()).output_url_or_raise() == "https://h/r.json"
    for payload in (None, {}, {"kind": "success", "job_id": "j1"}, {"job_id": "j1"}):
        with pytest.raises(VideoInferError, match="no usable event"):
            JobEvent.from_payload(payload)

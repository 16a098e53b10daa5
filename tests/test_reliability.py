"""Faults injected by the local server on every endpoint: what is retryable is retried, the rest fails clearly.

A job submission is retried only when the answer proves no job was created (429, 503, no
connection), so no fault ever makes the server receive the same job twice.
"""

from __future__ import annotations

import hashlib

import pytest
from helpers import connection_json, inject_fault, server_jobs, stored_digests

from airflow_provider_videoinfer.exceptions import (
    VideoInferConnectionError,
    VideoInferError,
    VideoInferResponseError,
    VideoInferServerError,
)
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
ENDPOINTS = ["upload_url", "upload", "submit", "status", "result"]
# (fault options, retried on a job submission, the error a submission ends with when not retried)
FAULTS = {
    "429+retry-after": ({"action": "status", "status_code": 429, "retry_after": 0.1}, True, None),
    "503": ({"action": "status", "status_code": 503}, True, None),
    "500": ({"action": "status", "status_code": 500}, False, VideoInferServerError),
    "502": ({"action": "status", "status_code": 502}, False, VideoInferServerError),
    "drop": ({"action": "drop"}, False, VideoInferConnectionError),
    "slower-than-read-timeout": ({"action": "stall", "stall_seconds": 1.5}, False, VideoInferConnectionError),
    "malformed-json": ({"action": "malformed"}, False, VideoInferResponseError),
}


@pytest.fixture
def hook(videoinfer_conn, monkeypatch) -> VideoInferHook:
    """A hook with short timeouts and three attempts, so faults resolve quickly."""
    conn = connection_json(
        videoinfer_conn.base_url, read_timeout=0.5, transfer_timeout=0.5, retry_max_attempts=3, retry_max_wait=0.2
    )
    monkeypatch.setenv("AIRFLOW_CONN_FAST", conn)
    return VideoInferHook("fast")


@pytest.fixture(scope="module")
def finished_job(server, sample_video):
    """A done job, for the status and result endpoints."""
    import os

    os.environ["AIRFLOW_CONN_SETUP"] = connection_json(server.base_url)
    setup = VideoInferHook("setup")
    input_url = setup.upload_video(sample_video)
    job_id = setup.submit_job(input_url, 5, [MOTION])
    return input_url, job_id, setup.wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url


def _call(hook, endpoint, finished_job, sample_video, tmp_path):
    input_url, job_id, output_url = finished_job
    return {
        "upload_url": lambda: hook.request_upload_url("clip.mp4"),
        "upload": lambda: hook.upload_video(sample_video),
        "submit": lambda: hook.submit_job(input_url, 5, [MOTION]),
        "status": lambda: hook.get_job(job_id),
        "result": lambda: hook.download_result(output_url, tmp_path / "result.json"),
    }[endpoint]()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fault_is_retried_or_fails_clearly(
    hook, videoinfer_conn, finished_job, sample_video, tmp_path, endpoint, fault
):
    options, safe_to_resubmit, submit_error = FAULTS[fault]
    jobs_before = len(server_jobs(videoinfer_conn))
    inject_fault(videoinfer_conn, endpoint, count=2, **options)
    if endpoint == "submit" and not safe_to_resubmit:
        with pytest.raises(submit_error) as err:
            _call(hook, endpoint, finished_job, sample_video, tmp_path)
        assert "submission of a job" in str(err.value)
    else:
        assert _call(hook, endpoint, finished_job, sample_video, tmp_path)
    new_jobs = len(server_jobs(videoinfer_conn)) - jobs_before
    assert new_jobs <= (1 if endpoint == "submit" else 0), "a fault made the server receive a job twice"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_faults_outlasting_the_retry_bound_end_in_a_clear_error(
    hook, videoinfer_conn, finished_job, sample_video, tmp_path, endpoint
):
    inject_fault(videoinfer_conn, endpoint, count=10, action="status", status_code=503)
    with pytest.raises(VideoInferServerError, match="HTTP 503"):
        _call(hook, endpoint, finished_job, sample_video, tmp_path)


def test_upload_broken_mid_stream_is_retried_from_the_start(hook, videoinfer_conn, sample_video, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(sample_video.read_bytes() * 40)  # a few MB, so the drop happens mid-body
    inject_fault(videoinfer_conn, "upload", "drop", count=1)
    hook.upload_video(big)
    assert hashlib.sha256(big.read_bytes()).hexdigest() in stored_digests(videoinfer_conn)


def test_unreachable_service_is_a_connection_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", connection_json("http://127.0.0.1:9", retry_max_attempts=2))
    with pytest.raises(VideoInferConnectionError, match="status of job j1") as err:
        VideoInferHook("down").get_job("j1")
    assert isinstance(err.value, VideoInferError)

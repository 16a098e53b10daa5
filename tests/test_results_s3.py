"""Object storage for real: moto's standalone S3 server as a process, reached through Airflow ``aws`` connections.

Every location is written as a user writes it, ``s3://conn_id@bucket/key``; the connection's extra
sets ``endpoint_url``. The local videoinfer server runs the jobs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import requests
from airflow.sdk import Asset
from helpers import API_KEY, aws_connection_json, connection_json, moto_client, run_moto_server, stored_digests

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.results import ResultReader, summarize_result
from airflow_provider_videoinfer.storage import VideoInferStorageError

pytest.importorskip("s3fs", reason="the s3 extra (apache-airflow-providers-amazon[s3fs]) is not installed")

MODEL = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


@pytest.fixture(scope="module")
def moto_s3():
    """moto's S3 server with the buckets ``videos`` and ``results``; yields a boto3 client to it."""
    with run_moto_server() as url:
        client = moto_client(url)
        for bucket in ("videos", "results"):
            client.create_bucket(Bucket=bucket)
        client.endpoint = url  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def s3_conn(moto_s3, monkeypatch):
    """The Airflow connection ``moto_s3`` (type aws, endpoint_url of the moto server)."""
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_S3", aws_connection_json(moto_s3.endpoint))
    return moto_s3


@pytest.fixture(scope="module")
def finished_job(server, sample_video):
    """A finished job of the local server: its output URL and the result file's bytes."""
    import os

    previous = os.environ.get("AIRFLOW_CONN_VIDEOINFER_DEFAULT")
    os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"] = connection_json(server.base_url)
    try:
        hook = VideoInferHook()
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MODEL])
        url = hook.wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url
    finally:
        if previous is None:
            del os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"]
        else:
            os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"] = previous
    return url, requests.get(url, timeout=10).content


def body(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_upload_from_s3_through_the_airflow_connection(videoinfer_conn, s3_conn, sample_video):
    s3_conn.upload_file(str(sample_video), "videos", "in/sample.mp4")

    input_url = VideoInferHook().upload_video("s3://moto_s3@videos/in/sample.mp4")

    assert "sample.mp4" in input_url
    import hashlib

    assert hashlib.sha256(sample_video.read_bytes()).hexdigest() in stored_digests(videoinfer_conn)


def test_results_and_rows_to_s3(videoinfer_conn, s3_conn, finished_job):
    url, expected = finished_job
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=url,
        destination="s3://moto_s3@results/jobs/one/result.json",
        rows_destination="s3://moto_s3@results/jobs/one/rows.csv",
        rows_format="csv",
    )
    assert operator.outlets == [Asset("s3://results/jobs/one/result.json")]

    summary = operator.execute(context={})

    assert body(s3_conn, "results", "jobs/one/result.json") == expected
    rows = list(csv.DictReader(io.StringIO(body(s3_conn, "results", "jobs/one/rows.csv").decode())))
    raw = json.loads(expected)
    assert len(rows) == summary["rows"]["count"] == sum(len(f["predictions"]) for f in raw["motion-detection"] if f)
    assert summary["source"] == "s3://moto_s3@results/jobs/one/result.json"
    assert summary["models"] == summarize_result("s3://moto_s3@results/jobs/one/result.json")["models"]


def test_a_folder_on_s3_gets_result_json(videoinfer_conn, s3_conn, finished_job):
    url, expected = finished_job
    operator = VideoInferResultsOperator(task_id="results", output_url=url, destination="s3://moto_s3@results/folder/")
    assert operator.outlets == [Asset("s3://results/folder/result.json")]

    operator.execute(context={})

    assert body(s3_conn, "results", "folder/result.json") == expected


def test_the_reader_streams_from_s3(s3_conn, tmp_path):
    frames = [
        {"predictions": [{"x": i, "y": 1, "width": 2, "height": 3, "confidence": 0.5, "class": "car"}]}
        for i in range(300)
    ]
    text = json.dumps({"frame_offset": list(range(300)), "time_offset": [i / 10 for i in range(300)], "cars": frames})
    s3_conn.put_object(Bucket="results", Key="read/result.json", Body=text.encode())
    (tmp_path / "result.json").write_text(text)

    with ResultReader("s3://moto_s3@results/read/result.json", chunk_size=4096) as reader:
        remote = list(reader)
    assert remote == list(ResultReader(tmp_path / "result.json"))
    assert remote[299].results["cars"].predictions[0].x == 299


@pytest.fixture
def unreachable_videoinfer(monkeypatch):
    """A videoinfer connection to a closed port: any API call would fail with a connection error."""
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json("http://127.0.0.1:9", retry_max_attempts=1))


@pytest.mark.parametrize("uri", ["s3://moto_s3@videos/missing.mp4", "s3://moto_s3@no-such-bucket/clip.mp4"])
def test_a_missing_video_fails_before_any_api_call(s3_conn, unreachable_videoinfer, uri):
    with pytest.raises(VideoInferValidationError, match=f"video '{uri}' does not exist"):
        VideoInferHook().upload_video(uri)


def test_a_missing_destination_bucket_fails_before_the_download(videoinfer_conn, s3_conn, finished_job):
    url, _ = finished_job
    operator = VideoInferResultsOperator(
        task_id="results", output_url=url, destination="s3://moto_s3@no-such-bucket/r.json"
    )
    with pytest.raises(VideoInferStorageError, match="s3://moto_s3@no-such-bucket/r.json: it does not exist"):
        operator.execute(context={})


def test_bad_credentials_name_the_uri_and_the_fix(monkeypatch, unreachable_videoinfer, tmp_path):
    with run_moto_server(authenticate=True) as url:
        monkeypatch.setenv("AIRFLOW_CONN_MOTO_DENIED", aws_connection_json(url, "AKIAWRONG", "wrong-secret"))
        with pytest.raises(VideoInferStorageError, match="s3://moto_denied@videos/clip.mp4: access denied") as info:
            VideoInferHook().upload_video("s3://moto_denied@videos/clip.mp4")
        assert "check the credentials of the connection" in str(info.value)
        assert "wrong-secret" not in str(info.value)
        with pytest.raises(VideoInferStorageError, match="access denied"):
            summarize_result("s3://moto_denied@results/r.json")
        operator = VideoInferResultsOperator(
            task_id="results", output_url="http://127.0.0.1:9/r.json", destination="s3://moto_denied@results/r.json"
        )
        with pytest.raises(
            VideoInferStorageError, match="cannot write to s3://moto_denied@results/r.json: access denied"
        ):
            operator.execute(context={})  # before the download, which would fail with a connection error


def test_memory_locations_work_for_the_hook_too(videoinfer_conn, sample_video, finished_job):
    import fsspec

    with fsspec.open("memory://videoinfer-s3-tests/clip.mp4", "wb") as out:
        out.write(sample_video.read_bytes())
    hook = VideoInferHook()
    hook.upload_video("memory://videoinfer-s3-tests/clip.mp4")
    url, expected = finished_job

    hook.download_result(url, "memory://videoinfer-s3-tests/result.json")

    with fsspec.open("memory://videoinfer-s3-tests/result.json", "rb") as kept:
        assert kept.read() == expected


def test_the_key_stays_out_of_storage_errors(s3_conn, videoinfer_conn, tmp_path: Path):
    with pytest.raises(VideoInferStorageError) as info:
        summarize_result("s3://moto_s3@no-such-bucket/r.json")
    assert API_KEY not in str(info.value) and "testing-secret" not in str(info.value)

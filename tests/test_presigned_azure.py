"""A video in Azure Blob Storage (Azurite, the Azure Storage emulator from npm) read by the service
through a SAS URL: the same path as S3's presigned URLs, through another file system (adlfs)."""

from __future__ import annotations

import json
import os
import re

import pytest
from helpers import (
    API_KEY,
    azurite_command,
    connection_json,
    run_azurite,
    server_rows,
    signature_leaks,
    task_context,
)

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from videoinfer_server.launch import run_server

pytest.importorskip("adlfs", reason="Azure Blob needs adlfs and apache-airflow-providers-microsoft-azure")
pytest.importorskip("airflow.providers.microsoft.azure", reason="the Microsoft Azure provider is not installed")
if azurite_command() is None:
    # CI sets REQUIRE_AZURITE: there, a missing emulator fails the run instead of skipping these tests.
    if os.environ.get("REQUIRE_AZURITE"):
        pytest.fail("REQUIRE_AZURITE is set and Azurite is not installed: run make azurite (needs npm)", pytrace=False)
    pytest.skip("Azurite is not installed (npm install azurite, or set AZURITE_BLOB)", allow_module_level=True)

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


@pytest.fixture(scope="module")
def azurite(tmp_path_factory, sample_video):
    """Azurite with the sample video at ``videos/in/sample.mp4``; yields (connection string, access log)."""
    from azure.storage.blob import BlobServiceClient

    log = tmp_path_factory.mktemp("azurite") / "access.log"
    with run_azurite(log) as connection_string:
        service = BlobServiceClient.from_connection_string(connection_string)
        service.create_container("videos")
        with sample_video.open("rb") as video:
            service.get_blob_client("videos", "in/sample.mp4").upload_blob(video)
        yield connection_string, log


@pytest.fixture
def remote(azurite, tmp_path, monkeypatch):
    """A remote-fetching local server as ``videoinfer_remote``, and the ``azurite`` Airflow connection."""
    connection_string, _ = azurite
    extra = {"connection_string": connection_string}
    monkeypatch.setenv("AIRFLOW_CONN_AZURITE", json.dumps({"conn_type": "wasb", "extra": extra}))
    with run_server(tmp_path / "server", API_KEY, allow_remote_urls=True) as server:
        monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_REMOTE", connection_json(server.base_url))
        yield server


def blob_requests(log_text: str, path: str) -> list[tuple[str, bool, str]]:
    """(method, signed with a SAS, status) of each request Azurite logged for the blob ``path``."""
    found = []
    for method, target, status in re.findall(r'"(\w+) (\S+) HTTP/[\d.]+" (\d+)', log_text):
        blob, _, query = target.partition("?")
        if blob == path:
            found.append((method, "sig=" in query, status))
    return found


def test_a_blob_is_read_by_the_service_through_a_sas_url(azurite, remote):
    _, log = azurite
    operator = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url="abfs://azurite@videos/in/sample.mp4",
        infer_fps=5,
        models=[MOTION],
        videoinfer_conn_id="videoinfer_remote",
    )

    job_id = operator.execute(context=task_context())

    assert VideoInferHook("videoinfer_remote").wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url
    ((stored,),) = server_rows(remote, "SELECT input_url FROM jobs")
    assert stored.startswith("http://127.0.0.1:") and "/devstoreaccount1/videos/in/sample.mp4?" in stored
    assert signature_leaks(stored), "no SAS signature in the URL the service got"
    requests_for_blob = blob_requests(log.read_text(), "/devstoreaccount1/videos/in/sample.mp4")
    assert ("GET", True, "200") in requests_for_blob, "the service did not read the blob through the SAS URL"
    # The worker reads the video's headers (its facts, before the job) in a few ranged GETs, never the blob.
    worker_reads = [status for method, signed, status in requests_for_blob if method == "GET" and not signed]
    assert all(status == "206" for status in worker_reads), f"the worker read the blob: {worker_reads}"
    assert len(worker_reads) <= 16, worker_reads
    assert [r for r in requests_for_blob if r[0] == "HEAD"], "the blob was not checked before the submission"


def test_a_missing_blob_fails_before_any_job(remote):
    operator = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url="abfs://azurite@videos/in/missing.mp4",
        infer_fps=5,
        models=[MOTION],
        videoinfer_conn_id="videoinfer_remote",
    )
    with pytest.raises(VideoInferValidationError, match="'abfs://azurite@videos/in/missing.mp4' does not exist"):
        operator.execute(context=task_context())
    assert server_rows(remote, "SELECT COUNT(*) FROM jobs") == [(0,)]

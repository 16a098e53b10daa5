"""A storage URI as a job's input: the service reads the video straight from the bucket.

moto's standalone S3 server runs as a process and records every request it receives, so the
tests see who read the object: the local videoinfer server (httpx) fetching the presigned URL,
never the worker's file system (botocore), which only asks for the object's metadata and signs
locally; the worker reads the first bytes through the presigned URL (one ranged GET).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from helpers import (
    API_KEY,
    aws_connection_json,
    connection_json,
    key_leaks_in_airflow,
    moto_client,
    moto_ranges,
    moto_requests,
    run_dag,
    run_moto_server,
    server_jobs,
    server_rows,
    signature_leaks,
    states,
    task_context,
    xcom,
)

from airflow_provider_videoinfer.exceptions import VideoInferJobFailedError, VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from airflow_provider_videoinfer.storage import VideoInferStorageError, session_token_warning
from videoinfer_server.launch import run_server

pytest.importorskip("s3fs", reason="the s3 extra (apache-airflow-providers-amazon[s3fs]) is not installed")

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
VIDEO_KEY = "in/sample.mp4"
VIDEO_URI = f"s3://moto_presign@videos/{VIDEO_KEY}"


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory, sample_video):
    """moto's S3 server recording its requests, with the sample video at ``videos/in/sample.mp4``."""
    record = tmp_path_factory.mktemp("moto") / "requests.jsonl"
    with run_moto_server(record_to=record) as url:
        client = moto_client(url)
        client.create_bucket(Bucket="videos")
        client.upload_file(str(sample_video), "videos", VIDEO_KEY)
        client.endpoint = url  # type: ignore[attr-defined]
        client.record = record  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory):
    """A local videoinfer server that fetches remote input URLs (``--allow-remote-urls``)."""
    with run_server(tmp_path_factory.mktemp("remote-server"), API_KEY, allow_remote_urls=True, enable_faults=True) as s:
        yield s


@pytest.fixture
def connections(moto_s3, remote_server, monkeypatch):
    """``moto_presign`` (aws, to moto) and ``videoinfer_remote`` (to the remote-fetching server)."""
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_PRESIGN", aws_connection_json(moto_s3.endpoint))
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_REMOTE", connection_json(remote_server.base_url))
    return moto_s3, remote_server


@pytest.fixture
def unreachable_videoinfer(monkeypatch):
    """A videoinfer connection to a closed port: any API call would fail with a connection error."""
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json("http://127.0.0.1:9", retry_max_attempts=1))


def worker_read_headers_only(record, path: str, reads: int = 1) -> bool:
    """Whether the workers (botocore) read no more of the video than its container's headers (the facts
    of :mod:`~airflow_provider_videoinfer.operators.cost`): ranged GETs of one block each, two per read.

    :param reads: how many times the facts were read (the folder example: its estimate, then the submit).
    """
    from videoinfer_contract.facts import BLOCK_SIZE

    ranges = moto_ranges(record, path)
    spans = [int(end) - int(start) + 1 for start, end in (r.removeprefix("bytes=").split("-") for r in ranges if r)]
    return len(ranges) <= 2 * reads and len(spans) == len(ranges) and all(span <= BLOCK_SIZE for span in spans)


def submit_operator(input_url, **kwargs) -> VideoInferSubmitJobOperator:
    return VideoInferSubmitJobOperator(task_id="submit", input_url=input_url, infer_fps=5, models=[MOTION], **kwargs)


def provider_reads(record, path: str) -> list[str | None]:
    """The ``Range`` header of each GET of ``path`` the provider's own transport sent to moto."""
    found = []
    for line in record.read_text().splitlines():
        entry = json.loads(line)
        headers = {key.lower(): value for key, value in entry["headers"].items()}
        if urlsplit(entry["url"]).path == path and headers.get("user-agent") == "airflow-provider-videoinfer":
            found.append(headers.get("range"))
    return found


def stored_input_urls(server) -> list[str]:
    """Every job's input_url as the local server stored it: the presigned URLs, signature included."""
    return [url for (url,) in server_rows(server, "SELECT input_url FROM jobs ORDER BY created_at")]


def signature_of(url: str) -> str:
    """The signature of a presigned S3 URL as written in it: SigV4 (``X-Amz-Signature``) or SigV2 (``Signature``)."""
    query = dict(part.split("=", 1) for part in urlsplit(url).query.split("&"))
    return query.get("X-Amz-Signature") or query["Signature"]


@pytest.mark.usefixtures("airflow_db")
def test_storage_uri_to_job_to_results_without_upload(connections, tmp_path, caplog, capfd):
    moto, server = connections
    run = run_dag("vi_test_presigned", video=VIDEO_URI, results=str(tmp_path / "result.json"))

    assert run.state == DagRunState.SUCCESS, states(run)
    result = json.loads((tmp_path / "result.json").read_text())
    assert len(result["motion-detection"]) == len(result["frame_offset"]) > 0
    # No upload: the server handed out no upload URL and stores no uploaded file...
    assert server_rows(server, "SELECT COUNT(*) FROM uploads") == [(0,)]
    assert list((server.data_dir / "uploads").iterdir()) == []
    # ...it fetched the object itself, and the worker only asked for its metadata.
    requests_for_video = moto_requests(moto.record, f"/videos/{VIDEO_KEY}")
    assert ("GET", "httpx") in requests_for_video
    assert worker_read_headers_only(moto.record, f"/videos/{VIDEO_KEY}"), "the worker read the video"
    assert ("HEAD", "botocore") in requests_for_video, "the object was not checked before the submission"
    assert provider_reads(moto.record, f"/videos/{VIDEO_KEY}") == ["bytes=0-15"], "not one ranged GET of its head"
    # The presigned URL reached the service (SigV4) but nothing else: not XCom, rendered fields, DB, logs.
    (stored,) = [url for url in stored_input_urls(server) if urlsplit(url).path == f"/videos/{VIDEO_KEY}"]
    assert urlsplit(stored).scheme == "http" and signature_of(stored)
    assert xcom(run, "submit") == xcom(run, "submit", "job_id")
    assert key_leaks_in_airflow(signature_of(stored)) == []
    out, err = capfd.readouterr()
    assert signature_of(stored) not in caplog.text + out + err
    assert "nothing is uploaded" in caplog.text + out + err
    (shown,) = [job["input_url"] for job in server_jobs(server) if job["input_url"].startswith(stored.split("?")[0])]
    assert "Signature=***" in shown and signature_leaks(shown) == []


def test_rendered_fields_and_lineage_name_the_bucket_and_key_only(connections):
    operator = submit_operator(VIDEO_URI, videoinfer_conn_id="videoinfer_remote")
    assert operator.input_url == VIDEO_URI  # the templated field keeps the URI; the signed URL is made at run time
    pytest.importorskip("airflow.providers.openlineage")
    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("s3://videos", VIDEO_KEY)]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://moto_presign@videos/in/missing.mp4", "video 's3://moto_presign@videos/in/missing.mp4' does not exist"),
        ("s3://moto_presign@no-such-bucket/clip.mp4", "video 's3://moto_presign@no-such-bucket/clip.mp4' does not"),
        ("s3://moto_presign@videos/in/", "'s3://moto_presign@videos/in/' is a folder"),
    ],
)
def test_a_missing_object_fails_before_any_job(connections, unreachable_videoinfer, uri, message):
    with pytest.raises((VideoInferValidationError, VideoInferStorageError), match=message):
        submit_operator(uri).execute(context=task_context())


def test_refused_credentials_name_the_uri_and_the_fix(monkeypatch, unreachable_videoinfer):
    with run_moto_server(authenticate=True) as url:
        monkeypatch.setenv("AIRFLOW_CONN_MOTO_REFUSED", aws_connection_json(url, "AKIAWRONG", "wrong-secret"))
        with pytest.raises(
            VideoInferStorageError, match="cannot read s3://moto_refused@videos/clip.mp4: access denied"
        ) as info:
            submit_operator("s3://moto_refused@videos/clip.mp4").execute(context=task_context())
    assert "check the credentials of the connection" in str(info.value)
    assert "wrong-secret" not in str(info.value)


def test_a_file_system_that_cannot_sign_names_the_upload_operator(unreachable_videoinfer, sample_video):
    import fsspec

    with fsspec.open("memory://videoinfer-presigned/clip.mp4", "wb") as out:
        out.write(sample_video.read_bytes())
    with pytest.raises(
        VideoInferValidationError, match=r"\(MemoryFileSystem\) cannot sign URLs.*VideoInferUploadOperator"
    ):
        submit_operator("memory://videoinfer-presigned/clip.mp4").execute(context=task_context())
    with pytest.raises(VideoInferValidationError, match="is a local file.*VideoInferUploadOperator"):
        submit_operator(sample_video.as_uri())  # known at parse time: refused there


@pytest.mark.parametrize("lifetime", [0, 59, 7 * 24 * 3600 + 1, 1.5, "1d", True])
def test_the_url_lifetime_is_bounded_by_what_s3_signs(lifetime):
    with pytest.raises(VideoInferValidationError, match="presigned_url_lifetime must be"):
        submit_operator(VIDEO_URI, presigned_url_lifetime=lifetime)


def test_sigv4_urls_live_as_long_as_asked_and_the_service_reads_them(connections, monkeypatch):
    """With ``signature_version: s3v4`` in the aws connection's extra, the URL is SigV4, whose
    lifetime (``X-Amz-Expires``) is the operator's; only the job id and the estimate go to XCom."""
    import datetime

    moto, server = connections
    extra = {"config_kwargs": {"signature_version": "s3v4"}}
    conn = json.loads(aws_connection_json(moto.endpoint))
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_PRESIGN_V4", json.dumps({**conn, "extra": {**conn["extra"], **extra}}))
    operator = submit_operator(
        f"s3://moto_presign_v4@videos/{VIDEO_KEY}",
        videoinfer_conn_id="videoinfer_remote",
        presigned_url_lifetime=datetime.timedelta(days=7),
    )
    context = task_context()

    job_id = operator.execute(context=context)

    query = dict(parse_qsl(urlsplit(stored_input_urls(server)[-1]).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == str(7 * 24 * 3600)
    assert context["ti"].pushed.keys() == {"job_id", "estimate"} and context["ti"].pushed["job_id"] == job_id
    assert signature_of(stored_input_urls(server)[-1]) not in json.dumps(context["ti"].pushed)
    assert VideoInferHook("videoinfer_remote").wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url


@pytest.fixture
def slow_remote_server(tmp_path_factory, monkeypatch, moto_s3):
    """A remote-fetching server whose jobs run at least 4 s, as ``videoinfer_remote_slow``."""
    with run_server(
        tmp_path_factory.mktemp("remote-slow"), API_KEY, allow_remote_urls=True, min_job_seconds=4
    ) as server:
        monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_REMOTE_SLOW", connection_json(server.base_url))
        monkeypatch.setenv("AIRFLOW_CONN_MOTO_PRESIGN", aws_connection_json(moto_s3.endpoint))
        yield server


@pytest.mark.usefixtures("airflow_db")
def test_a_retried_task_reconnects_to_its_job_though_each_try_would_sign_anew(slow_remote_server):
    run = run_dag("vi_test_presigned_retry", video=VIDEO_URI)

    assert run.state == DagRunState.SUCCESS, states(run)
    with create_session() as session:
        assert run.get_task_instance("submit", session=session).try_number >= 2, "the first try did not give up"
    assert len(server_jobs(slow_remote_server)) == 1, "a retry submitted a second job"


@pytest.mark.parametrize("signature_version", ["s3", "s3v4"])
def test_the_server_and_the_provider_redact_signatures_in_job_errors(connections, signature_version):
    """A fetch that fails puts the URL in the job's error: the server masks its signature (SigV2
    and SigV4), and the provider masks any error text a service sends (here one forced to quote a URL)."""
    moto, server = connections
    signer = moto_client(moto.endpoint, key_id="AKIAPRESIGNTEST", signature_version=signature_version)
    missing = signer.generate_presigned_url("get_object", Params={"Bucket": "videos", "Key": "gone.mp4"}, ExpiresIn=600)
    hook = VideoInferHook("videoinfer_remote")
    job_id = hook.submit_job(missing, 5, [MOTION])
    with pytest.raises(VideoInferJobFailedError, match="answered HTTP 404") as info:
        hook.wait_for_job(job_id, poll_interval=0.2, timeout=60)
    for text in (str(info.value), server_rows(server, f"SELECT error FROM jobs WHERE job_id = '{job_id}'")[0][0]):
        assert "/videos/gone.mp4?" in text and "Signature=***" in text
        assert signature_of(missing) not in text and "AKIAPRESIGNTEST" not in text and signature_leaks(text) == []

    requests.post(
        f"{server.base_url}/_faults/jobs/{job_id}",
        params={"api_key": API_KEY},
        json={"status": 6, "error": f"could not fetch {missing}"},
        timeout=5,
    ).raise_for_status()
    error = hook.get_job(job_id).error
    assert error is not None and signature_of(missing) not in error and "Signature=***" in error


@pytest.mark.usefixtures("airflow_db")
def test_the_folder_example_reads_a_bucket_without_uploading(connections, monkeypatch, tmp_path):
    moto, server = connections
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
    monkeypatch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")
    moto.copy_object(Bucket="videos", Key="folder/B.MP4", CopySource={"Bucket": "videos", "Key": VIDEO_KEY})
    results = tmp_path / "results"

    run = run_dag("videoinfer_folder", source="s3://moto_presign@videos/folder/", results_dir=f"file://{results}")

    assert run.state == DagRunState.SUCCESS, states(run)
    assert [path.parent.name for path in results.rglob("result.json")] == ["B.MP4"]
    assert server_rows(server, "SELECT COUNT(*) FROM uploads") == [(0,)]
    assert worker_read_headers_only(moto.record, "/videos/folder/B.MP4", reads=2), "the worker read the video"
    assert ("GET", "httpx") in moto_requests(moto.record, "/videos/folder/B.MP4")


def test_an_object_that_is_no_video_fails_before_any_job(connections):
    """A text file named .mp4: its first bytes, read through the presigned URL, match no container."""
    moto, server = connections
    moto.put_object(Bucket="videos", Key="in/notes.mp4", Body=b"meeting notes, not a video\n" * 100)
    jobs_before = len(server_jobs(server))
    uri = "s3://moto_presign@videos/in/notes.mp4"

    with pytest.raises(VideoInferValidationError, match=rf"video '{uri}' is not a video"):
        submit_operator(uri, videoinfer_conn_id="videoinfer_remote", retries=2).execute(context=task_context())

    assert len(server_jobs(server)) == jobs_before, "a job was submitted for a text file"
    assert provider_reads(moto.record, "/videos/in/notes.mp4") == ["bytes=0-15"]
    assert ("GET", "httpx") not in moto_requests(moto.record, "/videos/in/notes.mp4"), "the service read it"


def test_an_unreadable_presigned_url_names_the_uri_not_the_url(connections, monkeypatch):
    """A presigned URL the bucket refuses (moto checks the signatures of its URLs only when it
    authenticates; here the object went away between the check and the read): the error names the URI."""
    moto, server = connections
    moto.put_object(Bucket="videos", Key="in/vanishing.mp4", Body=b"x" * 100)
    from airflow_provider_videoinfer import storage

    presign = storage.presigned_url

    def presign_then_delete(location, lifetime):
        url = presign(location, lifetime)
        moto.delete_object(Bucket="videos", Key="in/vanishing.mp4")
        return url

    monkeypatch.setattr(storage, "presigned_url", presign_then_delete)
    with pytest.raises(Exception, match=r"s3://moto_presign@videos/in/vanishing.mp4") as info:
        submit_operator("s3://moto_presign@videos/in/vanishing.mp4", videoinfer_conn_id="videoinfer_remote").execute(
            context=task_context()
        )
    assert signature_leaks(str(info.value)) == [] and "Signature=" not in str(info.value), str(info.value)
    assert "X-Amz-Security-Token" not in str(info.value)


#: The warning's expiry: unknown for static temporary credentials, an hour ahead for an assumed role.
UNKNOWN_EXPIRY = "botocore does not tell when"
ASSUMED_ROLE_EXPIRY = r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 0:5\d:\d\d\)"


@pytest.mark.parametrize(
    ("conn_id", "extra", "expiry"),
    [
        # Static temporary credentials: a session token whose expiry botocore does not know.
        ("moto_session_token", {"aws_session_token": "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"}, UNKNOWN_EXPIRY),
        # An assumed role (moto's STS): refreshable credentials that expire in an hour.
        ("moto_assumed_role", {"role_arn": "arn:aws:iam::123456789012:role/reader"}, ASSUMED_ROLE_EXPIRY),
    ],
)
def test_temporary_credentials_warn_that_the_url_dies_with_them(
    connections, monkeypatch, caplog, capfd, conn_id, extra, expiry
):
    moto, server = connections
    conn = json.loads(aws_connection_json(moto.endpoint))
    conn["extra"] = {**conn["extra"], **extra, "service_config": {"sts": {"endpoint_url": moto.endpoint}}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    uri = f"s3://{conn_id}@videos/{VIDEO_KEY}"

    with caplog.at_level(logging.WARNING):
        job_id = submit_operator(uri, videoinfer_conn_id="videoinfer_remote").execute(context=task_context())

    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert f"The presigned URL of {uri} is signed with temporary credentials" in logged, logged
    assert re.search(expiry, logged), logged
    assert "presigned_url_lifetime of 1 day, 0:00:00" in logged
    stored = stored_input_urls(server)[-1]
    assert "x-amz-security-token=" in stored.lower() and signature_of(stored) not in logged
    assert VideoInferHook("videoinfer_remote").wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url


def test_no_warning_without_a_session_token_or_when_the_credentials_outlive_the_url():
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
    signed = "https://b.s3.amazonaws.com/k.mp4?X-Amz-Expires=86400&X-Amz-Signature=abc"
    temporary = signed + "&X-Amz-Security-Token=TOKEN"
    day = 86400
    assert session_token_warning("s3://b/k.mp4", signed, day, None, now) is None
    assert session_token_warning("s3://b/k.mp4", temporary, day, now + datetime.timedelta(days=2), now) is None
    warning = session_token_warning("s3://b/k.mp4", temporary, day, now + datetime.timedelta(minutes=42), now)
    assert warning is not None and "at 2026-01-01 12:42:00 UTC (in 0:42:00)" in warning
    assert "s3://b/k.mp4" in warning and "TOKEN" not in warning and "abc" not in warning
    assert "botocore does not tell when" in str(session_token_warning("s3://b/k.mp4", temporary, day, None, now))

"""The hook and the async client against the real local server over loopback HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from airflow.models.connection import Connection
from airflow.sdk import ObjectStoragePath
from helpers import API_KEY, connection_json, server_jobs

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferConfigError,
    VideoInferConnectionError,
    VideoInferJobFailedError,
    VideoInferTimeoutError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.settings import ClientSettings
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient, VideoInferHook
from videoinfer_server.launch import free_port

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


@pytest.mark.parametrize(
    ("host", "port", "extra", "expected"),
    [
        (None, None, {}, "https://api.roboflow.com"),
        ("api.roboflow.com", None, {}, "https://api.roboflow.com"),
        ("http://127.0.0.1:9050", None, {}, "http://127.0.0.1:9050"),
        ("http://127.0.0.1:9050/", None, {}, "http://127.0.0.1:9050"),
        ("127.0.0.1", 9050, {"scheme": "http"}, "http://127.0.0.1:9050"),
        ("http://localhost", 9050, {}, "http://localhost:9050"),
    ],
)
def test_settings_base_url(host, port, extra, expected):
    conn = Connection(conn_id="c", conn_type="videoinfer", host=host, port=port, password="k", extra=json.dumps(extra))
    assert ClientSettings.from_connection(conn).base_url == expected


def test_settings_require_a_key_and_valid_extra():
    with pytest.raises(VideoInferConfigError, match="has no API key"):
        ClientSettings.from_connection(Connection(conn_id="c", conn_type="videoinfer", host="h"))
    bad = Connection(conn_id="c", conn_type="videoinfer", password="k", extra=json.dumps({"read_timeout": "x"}))
    with pytest.raises(VideoInferConfigError, match="'read_timeout' must be a number"):
        ClientSettings.from_connection(bad)


def test_settings_repr_hides_the_key():
    conn = Connection(conn_id="c", conn_type="videoinfer", password=API_KEY)
    assert API_KEY not in repr(ClientSettings.from_connection(conn))


def test_connection_test_ok_bad_key_and_unreachable(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GOOD", connection_json(server.base_url))
    monkeypatch.setenv("AIRFLOW_CONN_BADKEY", connection_json(server.base_url, api_key="wrong-key"))
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", connection_json(f"http://127.0.0.1:{free_port()}"))
    ok, message = VideoInferHook("good").test_connection()
    assert ok, message
    ok, message = VideoInferHook("badkey").test_connection()
    assert not ok and "refused the API key" in message and "wrong-key" not in message
    ok, message = VideoInferHook("down").test_connection()
    assert not ok and "connection test" in message


def test_upload_submit_wait_download(videoinfer_conn, sample_video, tmp_path):
    hook = VideoInferHook()
    input_url = hook.upload_video(sample_video)
    assert input_url.startswith(videoinfer_conn.base_url) and "&X-Goog-Expires=" in input_url
    assert API_KEY not in input_url
    job_id = hook.submit_job(input_url, 5, [MOTION])
    assert job_id in [job["job_id"] for job in server_jobs(videoinfer_conn)]
    state = hook.wait_for_job(job_id, poll_interval=0.2, timeout=60)
    assert state.status is contract.JobStatus.SUCCEEDED and state.code == 0
    target = hook.download_result(state.output_url, tmp_path / "out" / "result.json")
    result = json.loads(Path(target).read_text())
    assert len(result["frame_offset"]) == len(result["time_offset"]) == len(result["motion-detection"]) == 10
    assert result["frame_offset"][:3] == [0, 2, 4]
    assert any(frame and frame["predictions"] for frame in result["motion-detection"])
    assert not list((tmp_path / "out").glob("*.part"))


def test_upload_from_object_storage_and_custom_name(videoinfer_conn, sample_video, tmp_path):
    source = ObjectStoragePath(f"file://{tmp_path}/clip.bin")
    source.write_bytes(sample_video.read_bytes())
    hook = VideoInferHook()
    input_url = hook.upload_video(source, file_name="Clip.MP4")
    stored = [
        p for p in videoinfer_conn.data_dir.rglob("*") if p.is_file() and p.stat().st_size == source.stat().st_size
    ]
    digest = hashlib.sha256(sample_video.read_bytes()).hexdigest()
    assert any(hashlib.sha256(p.read_bytes()).hexdigest() == digest for p in stored)
    assert hook.get_job(hook.submit_job(input_url, 2, [MOTION])).status in (
        contract.JobStatus.RUNNING,
        contract.JobStatus.SUCCEEDED,
    )


@pytest.mark.parametrize(
    ("name", "content", "file_name", "message"),
    [
        ("missing.mp4", None, None, "does not exist"),
        ("", None, None, "is not a file"),
        ("empty.mp4", b"", None, "is empty"),
        ("clip.mov", b"x", None, r"unsupported extension \.mov"),
        ("clip.mp4", b"x", "../x.mp4", "bare file name"),
    ],
)
def test_upload_rejects_bad_input_before_any_network_call(name, content, file_name, message, tmp_path, monkeypatch):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    # The connection points at a closed port: reaching the network would raise a connection error instead.
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferHook().upload_video(source, file_name)


def test_submit_rejects_bad_input_before_any_network_call(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(VideoInferValidationError, match="infer_fps"):
        VideoInferHook().submit_job("http://h/v.mp4", 0, [MOTION])
    with pytest.raises(VideoInferValidationError, match="job_id"):
        VideoInferHook().get_job(" ")
    with pytest.raises(VideoInferConnectionError):
        VideoInferHook().get_job("some-job")


def test_bad_key_is_an_auth_error_without_the_key(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url, api_key="not-the-key-123"))
    with pytest.raises(VideoInferAuthError) as err:
        VideoInferHook().get_job("any")
    assert "not-the-key-123" not in str(err.value)


def test_failed_job_raises_with_code_and_message(videoinfer_conn, sample_video):
    hook = VideoInferHook()
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [{**MOTION, "model_id": "no-such-model"}])
    with pytest.raises(VideoInferJobFailedError) as err:
        hook.wait_for_job(job_id, poll_interval=0.2, timeout=60)
    assert err.value.job_id == job_id and err.value.code > 1
    assert "no-such-model" in str(err.value)


def test_wait_for_job_times_out(videoinfer_conn, sample_video, monkeypatch):
    from videoinfer_server.launch import run_server

    with run_server(videoinfer_conn.data_dir.parent / "slow", API_KEY, min_job_seconds=30) as slow:
        monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(slow.base_url))
        hook = VideoInferHook()
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
        started = time.monotonic()
        with pytest.raises(
            VideoInferTimeoutError, match=rf"job {job_id} was still running after \d+\.\d s, at the deadline"
        ):
            hook.wait_for_job(job_id, poll_interval=0.7, timeout=1)
        # It polls at the deadline rather than giving up one interval early.
        assert time.monotonic() - started >= 1


async def test_async_client_reads_the_same_states(videoinfer_conn, sample_video):
    hook = VideoInferHook()
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
    done = hook.wait_for_job(job_id, poll_interval=0.2, timeout=60)
    client = await VideoInferAsyncClient.from_conn_id("videoinfer_default")
    try:
        again = await client.get_job(job_id)
    finally:
        await client.aclose()
    # The output URL is signed afresh at each read (its date and signature change from one second
    # to the next): compare where it points, and everything else as it is.
    assert again.output_url and urlsplit(again.output_url).path == urlsplit(done.output_url).path
    assert dataclasses.replace(again, output_url=done.output_url) == done


def test_http_library_logs_never_show_the_key(videoinfer_conn, caplog):
    with caplog.at_level(logging.DEBUG):
        VideoInferHook().test_connection()
    assert "api_key=***" in caplog.text or "GET /" in caplog.text
    assert API_KEY not in caplog.text


def test_uri_form_of_the_connection():
    conn = Connection(conn_id="x", uri="videoinfer://:SECRETKEY@127.0.0.1:9050?scheme=http&read_timeout=30")
    settings = ClientSettings.from_connection(conn)
    assert (settings.base_url, settings.read_timeout, settings.api_key) == ("http://127.0.0.1:9050", 30.0, "SECRETKEY")


def test_provider_registration_and_ui_fields():
    from importlib import import_module
    from importlib.metadata import entry_points

    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_videoinfer")
    ]
    info = entry.load()()
    assert info["connection-types"][0]["connection-type"] == "videoinfer"
    for role in ("hooks", "operators", "sensors", "triggers"):
        for module in info[role][0]["python-modules"]:
            import_module(module)
    behaviour = VideoInferHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API Key" and "login" in behaviour["hidden_fields"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"read_timeout": "nan"}, "'read_timeout' must be a number, got 'nan'"),
        ({"connect_timeout": "inf"}, "'connect_timeout' must be a number, got 'inf'"),
        ({"transfer_timeout": "1e999"}, "'transfer_timeout' must be a number"),
        ({"read_timeout": "abc"}, "'read_timeout' must be a number, got 'abc'"),
        ({"retry_max_attempts": "inf"}, "'retry_max_attempts' must be a number, got 'inf'"),
        ({"retry_max_attempts": 2.5}, "'retry_max_attempts' must be a whole number"),
        ({"retry_max_elapsed": "nan"}, "'retry_max_elapsed' must be a number"),
        ({"read_timeout": 0}, "'read_timeout' must be above 0"),
    ],
)
def test_bad_extra_gets_a_clear_error_and_the_test_button_a_sentence(extra, message, monkeypatch):
    conn = Connection(conn_id="c", conn_type="videoinfer", password="k", extra=json.dumps(extra))
    with pytest.raises(VideoInferConfigError, match=message):
        ClientSettings.from_connection(conn)
    monkeypatch.setenv("AIRFLOW_CONN_BADEXTRA", conn.as_json())
    ok, text = VideoInferHook("badextra").test_connection()
    assert not ok and re.search(message, text)


def test_connection_test_never_raises_and_speaks_plainly(server, monkeypatch):
    port = free_port()
    http_port = server.base_url.rsplit(":", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", connection_json(f"http://127.0.0.1:{port}"))
    monkeypatch.setenv("AIRFLOW_CONN_TLS", connection_json(f"https://127.0.0.1:{http_port}"))
    monkeypatch.setenv("AIRFLOW_CONN_NONAME", connection_json("http://no-such-host.invalid"))
    ok, message = VideoInferHook("down").test_connection()
    assert not ok and message == (
        f"connection test: nothing answers at http://127.0.0.1:{port} (connection refused): check the Base URL "
        "and port, and that the service runs."
    )
    ok, message = VideoInferHook("tls").test_connection()
    assert not ok and message == (
        f"connection test: https://127.0.0.1:{http_port} does not speak TLS (it answers plain HTTP): set the "
        f"connection's Base URL to http://127.0.0.1:{http_port}."
    )
    ok, message = VideoInferHook("noname").test_connection()
    assert not ok and "cannot be resolved" in message
    ok, message = VideoInferHook("no_such_connection").test_connection()
    assert not ok and "no_such_connection" in message
    for text in (message,):
        assert "urllib3" not in text and "Pool" not in text


async def test_async_clients_share_one_pool_per_event_loop(videoinfer_conn, sample_video):
    first = await VideoInferAsyncClient.from_conn_id("videoinfer_default")
    second = await VideoInferAsyncClient.from_conn_id("videoinfer_default")
    own = VideoInferAsyncClient(first.settings, share_pool=False)
    pool = first._pool.client
    assert second._pool.client is pool and own._pool.client is not pool
    job_id = VideoInferHook().submit_job(VideoInferHook().upload_video(sample_video), 5, [MOTION])
    states = await asyncio.gather(first.get_job(job_id), second.get_job(job_id), own.get_job(job_id))
    assert {state.job_id for state in states} == {job_id}
    await first.aclose()
    assert not pool.is_closed, "closed while another trigger still uses it"
    await second.aclose()
    await own.aclose()
    assert pool.is_closed and own._pool.client.is_closed

"""Bad input is refused before any call, with a message naming the problem and the fix.

Each case goes through the public API (an operator built as in a DAG file, the hook, a
connection) with the connection pointing at a trap: a loopback HTTP server that counts every
request it gets. A refusal that came after a call would show in its count.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from airflow.sdk import Connection
from helpers import API_KEY, connection_json, task_context

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.compat import AIRFLOW_V_3_1_PLUS
from airflow_provider_videoinfer.exceptions import (
    VideoInferConfigError,
    VideoInferJobFailedError,
    VideoInferNotFoundError,
    VideoInferServerError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.settings import EXTRA_KEYS, ClientSettings
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
URL = "https://example.com/video.mp4"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


class _Trap(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer  # noqa: N815 - the http.server API

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def trap(monkeypatch) -> Iterator[list[str]]:
    """Point ``videoinfer_default`` at a server that records every request; yield the record."""
    _Trap.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(f"http://127.0.0.1:{server.server_address[1]}")
    )
    try:
        yield _Trap.seen
    finally:
        server.shutdown()
        server.server_close()


def _submit(**kwargs: Any) -> VideoInferSubmitJobOperator:
    return VideoInferSubmitJobOperator(task_id="t", **{"input_url": URL, "infer_fps": 5, "models": [MOTION], **kwargs})


# --- Known when the DAG is parsed: refused there ---


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: VideoInferUploadOperator(task_id="t", video="/v/clip.mp4", file_name="clip\r\n.mp4"),
            r"file_name 'clip\\r\\n.mp4' holds a control character \(a carriage return, at position 4\)",
        ),
        (
            lambda: VideoInferUploadOperator(task_id="t", video="/v/clip.mp4", file_name="cl\x00ip.mp4"),
            r"holds a control character \(NUL, at position 2\)",
        ),
        (
            lambda: VideoInferUploadOperator(task_id="t", video="/v/.mp4"),
            r"file_name '.mp4' is only an extension: give the video a name before it, e.g. 'video.mp4'",
        ),
        (
            lambda: _submit(input_url="https://exa mple.com/v.mp4"),
            r"input_url 'https://exa mple.com/v.mp4' has no valid host \('exa mple.com'\): a host holds no spaces",
        ),
        (
            lambda: _submit(models=[{**MOTION, "inference_params": {"classes": {"car", "bus"}}}]),
            r"inference_params\['classes'\] is a set .* cannot be sent as JSON: use a list instead",
        ),
        (
            lambda: _submit(models=[{**MOTION, "inference_params": {"confidence": float("nan")}}]),
            r"inference_params\['confidence'\] is nan, which JSON cannot carry",
        ),
        (
            lambda: _submit(models=json.dumps([MOTION])),
            r"models is a string holding JSON .* Set render_template_as_native_obj=True on the DAG",
        ),
        (
            lambda: _submit(models=str([MOTION])),  # what a template renders without native rendering
            r"models is a string holding a Python list \(\"\[\{'model_id'.* Set render_template_as_native_obj=True",
        ),
        (
            lambda: VideoInferJobSensor(task_id="t", job_id="j", deferrable=True, timeout=float("inf")),
            r"timeout is inf, and a wait needs an end: pass a finite number of seconds, at most 31622400",
        ),
        (
            lambda: VideoInferJobSensor(task_id="t", job_id="j", default_args={"timeout": float("inf")}),
            r"timeout is inf, and a wait needs an end",
        ),
        (
            lambda: _submit(wait_for_completion=True, deferrable=True, wait_timeout=float("inf")),
            r"wait_timeout is inf, and a wait needs an end",
        ),
        (
            lambda: VideoInferResultsOperator(task_id="t", output_url=URL, destination="http://host/result.json"),
            r"destination 'http://host/result.json' is an http\(s\) URL, which cannot be written: pass a local path",
        ),
        (
            lambda: VideoInferResultsOperator(task_id="t", output_url=URL, rows_destination="HTTPS://host/rows.csv"),
            r"rows_destination 'HTTPS://host/rows.csv' is an http\(s\) URL",
        ),
        (
            lambda: VideoInferUploadOperator(task_id="t", video="/data/videos/"),
            r"'/data/videos/' has no file extension, as a folder has: .* For a folder of videos, .*howto/folder.rst",
        ),
        (
            lambda: VideoInferUploadOperator(task_id="t", video="s3://bucket/videos"),
            r"'s3://bucket/videos' has no file extension, as a folder has",
        ),
        (
            lambda: _submit(deferrable="false"),
            r"deferrable must be True or False, got 'false' \(a string, which Python takes for True\)",
        ),
        (lambda: _submit(wait_for_completion="no"), r"wait_for_completion must be True or False"),
        (
            lambda: _submit(poll_interval=1e9),
            r"poll_interval is 1000000000 s, above the most allowed, 86400 s \(1 day\)",
        ),
        (lambda: _submit(wait_timeout=1e12), r"wait_timeout is 1000000000000 s, above the most allowed"),
        (
            lambda: _submit(poll_interval=600, wait_timeout=60),
            r"poll_interval \(600 s\) is longer than wait_timeout \(60 s\): the job would be polled once",
        ),
        (
            lambda: VideoInferJobSensor(task_id="t", job_id="j", timeout=1e12),
            r"timeout is 1000000000000 s, above the most allowed, 31622400 s \(366 days\)",
        ),
        (lambda: VideoInferJobSensor(task_id="t", job_id="j", deferrable="False"), r"deferrable must be True or False"),
        (
            lambda: VideoInferResultsOperator(task_id="t", output_url=URL, destination=""),
            r"destination is empty: pass a path or URI .* or leave it out \(None\) to keep no copy",
        ),
        (
            lambda: VideoInferResultsOperator(
                task_id="t", output_url=URL, destination="/v/clip.mp4", video="/v/clip.mp4"
            ),
            r"destination \(/v/clip.mp4\) would overwrite the source video /v/clip.mp4",
        ),
        (
            lambda: VideoInferResultsOperator(
                task_id="t", output_url=URL, destination="/v/c.mp4/r.json", video="/v/c.mp4"
            ),
            r"or write inside it: keep the results elsewhere",
        ),
        (
            lambda: VideoInferResultsOperator(
                task_id="t", output_url=URL, rows_destination="/v/clip.mp4", video="/v/clip.mp4"
            ),
            r"rows_destination \(/v/clip.mp4\) would overwrite the source video",
        ),
    ],
)
def test_refused_when_the_dag_is_parsed(build, message):
    with pytest.raises(VideoInferValidationError, match=message):
        build()


def test_numpy_numbers_are_accepted_and_sent_as_plain_json():
    operator = _submit(infer_fps=np.int64(5), models=[{**MOTION, "inference_params": {"confidence": np.float32(0.5)}}])
    request = contract.build_job_request(operator.input_url, operator.infer_fps, operator.models)
    assert request.infer_fps == 5 and type(request.infer_fps) is int
    assert json.loads(json.dumps(request.to_payload()))["models"][0]["inference_params"] == {"confidence": 0.5}


def test_a_generator_of_models_is_not_used_up_by_the_parse_time_check():
    operator = _submit(models=(model for model in [MOTION]))
    request = contract.build_job_request(operator.input_url, operator.infer_fps, operator.models)
    assert [spec.model_id for spec in request.models] == ["motion-detection"]


# --- Known at run time only: refused before the first call ---


def test_a_file_that_is_no_video_is_not_uploaded(trap, tmp_path):
    (tmp_path / "photo.mp4").write_bytes(PNG)
    (tmp_path / "noise.mp4").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "page.mp4").write_bytes(b"<!doctype html><html>...")
    hook = VideoInferHook()
    with pytest.raises(VideoInferValidationError, match=r"photo.mp4' is not a video: .* those of a PNG image") as err:
        hook.upload_video(tmp_path / "photo.mp4")
    assert "renaming a file to .mp4 does not convert it" in str(err.value)
    with pytest.raises(VideoInferValidationError, match=r"noise.mp4' is not a video: .* match no video container"):
        hook.upload_video(tmp_path / "noise.mp4")
    with pytest.raises(VideoInferValidationError, match=r"page.mp4' is not a video: .* HTML or XML text"):
        hook.upload_video(tmp_path / "page.mp4")
    assert trap == []


def test_a_real_video_passes_the_container_check(trap, sample_video):
    """The check is not a wall: the sample video goes on to the (trapped) upload-URL request."""
    with pytest.raises(VideoInferServerError):  # the trap answers 500 to everything
        VideoInferHook().upload_video(sample_video)
    assert trap and trap[0].startswith("POST /video_upload_signed_url")


def test_hook_refuses_bad_job_values_before_the_call(trap, sample_video):
    hook = VideoInferHook()
    with pytest.raises(VideoInferValidationError, match="no valid host"):
        hook.submit_job("http://bad host/v.mp4", 5, [MOTION])
    with pytest.raises(VideoInferValidationError, match=r"holds a control character \(a line feed"):
        hook.submit_job("http://host/v.mp4\nX-Injected: 1", 5, [MOTION])
    with pytest.raises(VideoInferValidationError, match="is a set"):
        hook.submit_job(URL, 5, [{**MOTION, "inference_params": {"classes": {"car"}}}])
    with pytest.raises(VideoInferValidationError, match=r"file_name 'a\\nb.mp4' holds a control character"):
        hook.upload_video(sample_video, file_name="a\nb.mp4")
    with pytest.raises(VideoInferValidationError, match="only an extension"):
        hook.upload_video(sample_video, file_name=".mp4")
    assert trap == []


def test_a_wait_with_absurd_numbers_is_refused_before_the_first_poll(trap):
    hook = VideoInferHook()
    with pytest.raises(VideoInferValidationError, match=r"timeout is 1e\+300 s, above the most allowed"):
        hook.wait_for_job("job-1", poll_interval=1, timeout=1e300)
    with pytest.raises(VideoInferValidationError, match=r"poll_interval must be a positive number of seconds, got nan"):
        hook.wait_for_job("job-1", poll_interval=float("nan"))
    assert trap == []


def test_a_templated_destination_that_is_the_video_is_refused_before_the_download(trap, sample_video):
    operator = VideoInferResultsOperator(
        task_id="t", output_url=URL, destination="{{ params.out }}", video=str(sample_video)
    )
    operator.destination = str(sample_video)  # as rendered at run time
    before = sample_video.read_bytes()
    with pytest.raises(VideoInferValidationError, match="would overwrite the source video"):
        operator.execute(context={})
    assert sample_video.read_bytes() == before and trap == []


def test_a_template_rendered_as_python_text_is_refused_before_the_submission(trap):
    """``models="{{ params.models }}"`` without ``render_template_as_native_obj``: Python's repr of the list."""
    operator = _submit(models="{{ params.models }}")
    operator.models = str([MOTION])  # as rendered at run time
    with pytest.raises(VideoInferValidationError, match=r"holding a Python list .* render_template_as_native_obj=True"):
        operator.execute(context=task_context())
    assert trap == []


def test_an_http_destination_is_refused_before_the_download(trap):
    operator = VideoInferResultsOperator(task_id="t", output_url=URL, destination="{{ params.out }}")
    operator.destination = "http://host/result.json"  # as rendered at run time
    with pytest.raises(VideoInferValidationError, match=r"is an http\(s\) URL, which cannot be written"):
        operator.execute(context={})
    assert trap == []


def test_a_folder_to_upload_is_told_it_is_one(trap, tmp_path):
    (tmp_path / "clips.mp4").mkdir()  # a folder, even with a video's extension
    with pytest.raises(VideoInferValidationError, match=r"is not a file \(it is a folder\): .*howto/folder.rst"):
        VideoInferHook().upload_video(tmp_path / "clips.mp4")
    assert trap == []


def test_a_failed_jobs_message_ends_each_sentence_once():
    """A reason that ends in its own full stop, then the advice: one full stop between them."""
    err = VideoInferJobFailedError("j-1", 5, "use at most 10, ideally a divisor of the frame rate.", "Fix it.")
    assert str(err).endswith(": use at most 10, ideally a divisor of the frame rate. Fix it.")
    assert str(VideoInferJobFailedError("j-2", 2, "internal error", "Retry.")).endswith("internal error. Retry.")


# --- Connections: checked when read, the UI's Test button included ---


@pytest.mark.parametrize(
    ("host", "extra", "message"),
    [
        (
            "http://127.0.0.1:9",
            "[]",
            r"its extra must be a JSON object such as \{\"read_timeout\": 60\}, got a JSON array",
        ),
        ("http://127.0.0.1:9", "{read_timeout: 5}", r"its extra is not valid JSON \(.*\): write a JSON object"),
        (
            "http://127.0.0.1:9",
            '{"read_timout": 5}',
            r"unknown key 'read_timout' \(did you mean 'read_timeout'\?\), which would be ignored",
        ),
        ("http://127.0.0.1:9", '{"retry_max_atempts": 3}', r"did you mean 'retry_max_attempts'\?"),
        (
            "http://127.0.0.1:9",
            '{"read_timeout": 1e12}',
            r"'read_timeout' is 1000000000000.0, above the most allowed, 86400",
        ),
        ("http://127.0.0.1:9", '{"retry_max_attempts": 1000000}', r"'retry_max_attempts' is 1000000, above the most"),
        (
            "http://user:hunter2@127.0.0.1:9",
            "{}",
            r"host 'http://user:\*\*\*@127.0.0.1:9' holds a user name or password .*: remove it from the host",
        ),
        (
            "http://127.0.0.1:9/api?tenant=1",
            "{}",
            r"holds a query or fragment .* paths would be appended: remove it. More: .*errors.rst#connection-host",
        ),
        ("127.0.0.1:9", '{"scheme": "ftp"}', r"extra 'scheme' must be 'http' or 'https', got 'ftp'"),
        ("http://::1", "{}", r"host 'http://::1' holds an IPv6 address without brackets.* e.g. 'http://\[::1\]:9050'"),
        ("::1", "{}", r"holds an IPv6 address without brackets"),
    ],
)
def test_a_bad_connection_is_refused_and_the_test_button_says_why(host, extra, message, monkeypatch):
    conn = Connection(conn_id="bad", conn_type="videoinfer", host=host, password=API_KEY, extra=extra)
    with pytest.raises(VideoInferConfigError, match=message) as err:
        ClientSettings.from_connection(conn)
    assert "hunter2" not in str(err.value) and API_KEY not in str(err.value)
    # The UI's Test button calls test_connection(): a sentence, never a traceback.
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD", json.dumps({"conn_type": "videoinfer", "host": host, "password": API_KEY, "extra": extra})
    )
    ok, text = VideoInferHook("bad").test_connection()
    assert not ok and "hunter2" not in text
    if AIRFLOW_V_3_1_PLUS or isinstance(_json_or_none(extra), dict):  # 3.0 refuses to load an extra that is none
        assert re.search(message, text), text


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_every_known_extra_key_is_accepted():
    extra = {
        "connect_timeout": 2,
        "read_timeout": 3,
        "transfer_timeout": 4,
        "retry_max_attempts": 2,
        "retry_max_elapsed": 9,
        "retry_initial_wait": 0.1,
        "retry_max_wait": 1,
        "poll_interval": 0.5,
        "scheme": "http",
        "max_frames": 10_000,
        "max_video_seconds": 3600,
    }
    assert set(extra) == set(EXTRA_KEYS)
    conn = Connection(
        conn_id="ok", conn_type="videoinfer", host="127.0.0.1", port=9, password="k", extra=json.dumps(extra)
    )
    settings = ClientSettings.from_connection(conn)
    assert settings.base_url == "http://127.0.0.1:9" and settings.read_timeout == 3 and settings.retry.max_attempts == 2


def test_a_404_from_a_wrong_base_url_path_says_to_check_it(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WRONGPATH", connection_json(f"{server.base_url}/api/v1"))
    hook = VideoInferHook("wrongpath")
    with pytest.raises(
        VideoInferNotFoundError, match=r"check the connection's Base URL \(http://127.0.0.1:\d+/api/v1\)"
    ):
        hook.submit_job(URL, 5, [MOTION])
    ok, text = hook.test_connection()
    assert not ok and "check the connection's Base URL" in text

"""No input loses a file, crashes or hangs; a file system error is a VideoInferStorageError naming the place.

Result files are served over loopback HTTP by a small server that counts the requests it gets,
so that "refused before the download" is checked, not assumed.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import connection_json

from airflow_provider_videoinfer.compat import AirflowFailException
from airflow_provider_videoinfer.exceptions import (
    VideoInferMalformedResponseError,
    VideoInferStorageError,
    VideoInferStorageFatalError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.results import ResultReader, summarize_result
from airflow_provider_videoinfer.results.reader import VideoInferResultFileError

GOOD = json.dumps(
    {
        "frame_offset": [0, 15],
        "time_offset": [0.0, 0.5],
        "cars": [{"predictions": [{"x": 1, "y": 2, "width": 3, "height": 4, "confidence": 0.9, "class": "car"}]}, None],
    }
).encode()


class _Files(http.server.BaseHTTPRequestHandler):
    body = b""
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def output(monkeypatch) -> Iterator[Callable[[bytes], str]]:
    """``serve(body)`` makes the output URL answer 200 with ``body`` and returns that URL; ``.seen`` counts GETs."""
    _Files.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(base, retry_max_attempts=1))

    def serve(body: bytes) -> str:
        _Files.body = body
        return f"{base}/results/job-1.json?X-Goog-Signature=abc"

    serve.seen = _Files.seen  # type: ignore[attr-defined]
    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part") or name.startswith(".videoinfer"))


# --- Losses: nothing is overwritten by an answer that is no result file ---


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>Please sign in</body></html>", r"is not valid JSON: expected a JSON object"),
        (GOOD[: len(GOOD) // 2], r"is not valid JSON"),
        (GOOD + b"\n<html>", r"unexpected bytes after the end of the JSON object"),
        (b'{"error": "expired"}', r"has no 'frame_offset' list"),
    ],
    ids=["html-page", "cut-short", "bytes-after", "no-frame-lists"],
)
def test_an_answer_that_is_no_result_never_replaces_the_kept_file(output, tmp_path, body, message):
    kept = tmp_path / "result.json"
    first = VideoInferResultsOperator(task_id="r", output_url=output(GOOD), destination=str(kept))
    assert first.execute(context={})["frames"] == 2
    later = VideoInferResultsOperator(task_id="r", output_url=output(body), destination=str(kept))
    with pytest.raises(VideoInferMalformedResponseError, match=message) as err:
        later.execute(context={})
    assert f"Nothing was written to {kept}" in str(err.value) and "check the output URL" in str(err.value)
    assert kept.read_bytes() == GOOD, "the good result kept before was replaced"
    assert _leftovers(tmp_path) == []
    # The hook's own download is as careful.
    with pytest.raises(VideoInferMalformedResponseError, match=message):
        VideoInferHook().download_result(output(body), kept)
    assert kept.read_bytes() == GOOD and _leftovers(tmp_path) == []


def test_kept_files_get_the_mode_the_users_umask_gives(output, tmp_path):
    previous = os.umask(0o027)
    try:
        operator = VideoInferResultsOperator(
            task_id="r",
            output_url=output(GOOD),
            destination=str(tmp_path / "out" / "result.json"),
            rows_destination=str(tmp_path / "out" / "rows.csv"),
            rows_format="csv",
        )
        operator.execute(context={})
    finally:
        os.umask(previous)
    for name in ("result.json", "rows.csv"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o640, name


# --- Crashes and hangs: refused with a clear error ---


def _within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised, or a failure if it is still running after ``seconds``."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s: it hangs"
    return outcome[0]


def test_a_fifo_a_device_or_a_folder_is_refused_not_read(tmp_path):
    fifo = tmp_path / "result.json"
    os.mkfifo(fifo)
    err = _within(60, lambda: ResultReader(fifo))
    assert isinstance(err, VideoInferStorageFatalError), err
    assert str(err) == f"cannot read {fifo}: it is a FIFO, a named pipe, not a regular file; pass the path of a file."
    err = _within(60, lambda: summarize_result("/dev/zero"))
    assert isinstance(err, VideoInferStorageFatalError) and "it is a device, not a regular file" in str(err)
    err = _within(60, lambda: ResultReader(tmp_path))
    assert isinstance(err, VideoInferStorageFatalError) and "it is a folder, not a regular file" in str(err)
    err = _within(60, lambda: VideoInferHook("unused").upload_video(fifo))
    assert isinstance(err, VideoInferValidationError) and "is not a file (it is a FIFO, a named pipe)" in str(err)


def test_deeply_nested_results_are_an_error_not_a_crash(tmp_path):
    path = tmp_path / "deep.json"
    nested = "[" * 10_000 + "]" * 10_000
    path.write_text(f'{{"frame_offset": [0], "time_offset": [0.0], "m": [{nested}]}}')
    with pytest.raises(VideoInferResultFileError, match="a value is nested too deeply to decode"):
        summarize_result(path)


def test_negative_frame_offsets_are_refused(tmp_path):
    path = tmp_path / "negative.json"
    path.write_text('{"frame_offset": [0, -15], "time_offset": [0.0, 0.5]}')
    with pytest.raises(VideoInferResultFileError, match=r"frame_offset\[1\] is -15: offsets count from 0"):
        summarize_result(path)


# --- Storage errors: named, and raised before the download where the destination can be checked ---


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda root: (root / "notes.txt").write_text("x") and root / "notes.txt" / "result.json",
            r"notes.txt is a file, where a folder of the path must be; move it away or choose another destination",
        ),
        (
            lambda root: (
                root / "notes.txt" / "deeper" / "result.json" if (root / "notes.txt").write_text("x") else None
            ),
            r"notes.txt is a file, where a folder of the path must be",
        ),
        (
            lambda root: os.mkfifo(root / "pipe.json") or root / "pipe.json",
            r"pipe.json: it is not a regular file \(a FIFO, a named pipe\); choose a file path",
        ),
        (
            lambda root: Path("/sys/videoinfer-test/result.json"),
            r"cannot write to /sys/videoinfer-test/result.json: access denied .* check the permissions of the file "
            r"and of its folder",
        ),
    ],
    ids=["file-as-folder", "file-as-grandparent", "fifo", "unwritable-folder"],
)
def test_an_unusable_destination_fails_before_the_download(output, tmp_path, make, message):
    destination = make(tmp_path)
    url = output(GOOD)
    for call in (
        lambda: VideoInferHook().download_result(url, destination),
        lambda: VideoInferResultsOperator(task_id="r", output_url=url, destination=str(destination)).execute({}),
        lambda: VideoInferResultsOperator(task_id="r", output_url=url, rows_destination=str(destination)).execute({}),
    ):
        with pytest.raises(VideoInferStorageError, match=message) as err:
            call()
        assert isinstance(err.value, VideoInferStorageFatalError) and isinstance(err.value, AirflowFailException)
    assert output.seen == [], "the result was downloaded before the destination was checked"  # type: ignore[attr-defined]


def test_a_storage_error_after_the_checks_is_still_a_storage_error(tmp_path):
    """A failure no check could foresee (here the result file vanished) names the location, not a raw OSError."""
    with pytest.raises(
        VideoInferStorageFatalError, match=r"cannot read .*missing.json: it does not exist .* check the path"
    ):
        summarize_result(tmp_path / "missing.json")

"""VideoInferResultsOperator, downloading over real HTTP through the real hook.

Result files are served by a tiny ``http.server`` in a thread (standing in for the signed output
URL's storage); one test runs a whole job on the project's local server.
"""

from __future__ import annotations

import csv
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.sdk import Asset, AssetAlias, ObjectStoragePath
from airflow.sdk.execution_time.context import OutletEventAccessors
from helpers import API_KEY, connection_json

from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferJobFailedFatalError,
    VideoInferNotFoundError,
    VideoInferResponseError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from videoinfer_server.launch import run_server

SIGNATURE = "X-Goog-Signature=secret-signature-0b1d"
MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


def result_bytes() -> bytes:
    """4 frames at 2 fps of one object-detection model: 2 cars, null, 1 car + 1 person, none."""

    def car(x: float, cls: str = "car") -> dict[str, Any]:
        return {"x": x, "y": 5, "width": 10, "height": 10, "confidence": 0.9, "class": cls, "class_id": 0}

    frames = [{"predictions": [car(1), car(2)]}, None, {"predictions": [car(3), car(4, "person")]}, {"predictions": []}]
    return json.dumps({"frame_offset": [0, 15, 30, 45], "time_offset": [0, 0.5, 1.0, 1.5], "cars": frames}).encode()


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.requests.append(self.path)
        body = self.files.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def storage(monkeypatch) -> Iterator[str]:
    """Serve ``_Files.files`` over loopback HTTP; point ``videoinfer_default`` at it; yield its base URL."""
    _Files.files = {"/results/job-1.json": result_bytes()}
    _Files.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(base_url, retry_max_attempts=1))
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()


def signed(base_url: str, path: str = "/results/job-1.json") -> str:
    return f"{base_url}{path}?X-Goog-Algorithm=GOOG4&X-Goog-Expires=900&{SIGNATURE}"


def test_summary_kept_file_asset_and_rows(storage, tmp_path):
    destination = tmp_path / "kept" / "job-1.json"
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage),
        destination=str(destination),
        rows_destination=str(tmp_path / "rows.csv"),
        rows_format="csv",
    )
    assert operator.outlets == [Asset(destination.resolve().as_uri())]

    summary = operator.execute(context={})

    assert destination.read_bytes() == result_bytes()
    assert _Files.requests == [signed(storage).removeprefix(storage)]  # downloaded once
    cars = summary["models"]["cars"]
    assert (summary["frames"], cars["null_frames"], cars["class_counts"]) == (4, 1, {"car": 3, "person": 1})
    assert cars["max_objects"] == {"count": 2, "frame_index": 0, "frame_offset": 0, "time_offset": 0.0}
    assert summary["source"] == str(destination)
    assert summary["rows"] == {"destination": str(tmp_path / "rows.csv"), "format": "csv", "count": 4}
    rows = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert [(r["frame_offset"], r["class"], r["x"]) for r in rows] == [
        ("0", "car", "1.0"),
        ("0", "car", "2.0"),
        ("30", "car", "3.0"),
        ("30", "person", "4.0"),
    ]
    # XCom must not hold the signed URL (a credential until it expires) nor the API key.
    serialized = json.dumps(summary)
    assert SIGNATURE not in serialized and API_KEY not in serialized


def test_without_destination_the_download_is_temporary(storage, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    operator = VideoInferResultsOperator(task_id="results", output_url=signed(storage))
    assert operator.outlets == []

    summary = operator.execute(context={})

    assert summary["models"]["cars"]["predictions"] == 4
    assert (summary["source"], summary["rows"]) == (None, None)
    assert list(tmp_path.iterdir()) == []  # the temporary download is gone


def test_object_storage_destination_and_jsonl_rows(storage, tmp_path):
    destination = ObjectStoragePath((tmp_path / "job-1.json").as_uri())
    rows = ObjectStoragePath((tmp_path / "rows.jsonl").as_uri())
    operator = VideoInferResultsOperator(
        task_id="results", output_url=signed(storage), destination=destination, rows_destination=rows
    )
    assert operator.outlets == [Asset((tmp_path / "job-1.json").as_uri())]

    summary = operator.execute(context={})

    assert (tmp_path / "job-1.json").read_bytes() == result_bytes()
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert summary["rows"]["count"] == len(lines) == 4
    assert json.loads(lines[-1])["class"] == "person"


def test_remote_destination_is_uploaded_from_the_local_copy(storage):
    import fsspec

    destination = "memory://videoinfer-operator-tests/job-1.json"
    operator = VideoInferResultsOperator(task_id="results", output_url=signed(storage), destination=destination)
    assert operator.outlets == [Asset(destination)]

    operator.execute(context={})

    with fsspec.open(destination, "rb") as kept:
        assert kept.read() == result_bytes()


def test_templated_destination_reports_through_an_asset_alias(storage, tmp_path):
    alias = AssetAlias("videoinfer-results")
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url="{{ params.url }}",
        destination=str(tmp_path) + "/{{ ds }}.json",
        outlets=[alias],
    )
    assert operator.outlets == [alias]  # no Asset can be declared before the path is known
    context: dict[str, Any] = {"ds": "2026-11-21", "params": {"url": signed(storage)}}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    context["outlet_events"] = events = OutletEventAccessors()

    operator.execute(context=context)  # type: ignore[arg-type]

    kept = tmp_path / "2026-11-21.json"
    assert kept.read_bytes() == result_bytes()
    (event,) = events[alias].asset_alias_events
    assert event.dest_asset_key.uri == kept.as_uri()


def test_an_expired_url_fails_clearly_and_leaves_nothing(storage, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    operator = VideoInferResultsOperator(task_id="results", output_url=signed(storage, "/results/gone.json"))

    with pytest.raises(VideoInferNotFoundError, match="404"):
        operator.execute(context={})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows_format": "xlsx"}, "rows_format must be one of jsonl, csv, parquet, got 'xlsx'"),
        ({"inference_types": {"cars": "detector"}}, "inference_types\\['cars'\\] is 'detector'"),
        ({"inference_types": ["cars"]}, "inference_types must be a dict"),
        ({"max_timeline_buckets": 0}, "max_timeline_buckets must be a whole number of at least 1"),
    ],
)
def test_arguments_are_checked_at_init(kwargs, message):
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferResultsOperator(task_id="results", output_url="https://example.com/r.json", **kwargs)


def test_parquet_without_pyarrow_fails_before_the_download(storage, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage),
        rows_destination=str(tmp_path / "rows.parquet"),
        rows_format="parquet",
    )
    with pytest.raises(VideoInferValidationError, match="pip install pyarrow"):
        operator.execute(context={})
    assert _Files.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give the job's output_url or its job_id, not neither"),
        ({"output_url": "https://example.com/r.json", "job_id": "j1"}, "output_url or its job_id, not both"),
        ({"job_id": "two words"}, "job_id must be a non-empty string without spaces"),
    ],
)
def test_exactly_one_of_output_url_and_job_id_is_checked_at_init(kwargs, message):
    with pytest.raises(VideoInferValidationError, match=message):
        VideoInferResultsOperator(task_id="results", **kwargs)


@pytest.mark.parametrize("output_url", [{"output_url": "https://example.com/r.json"}, {"job_id": "j1"}, "  "])
def test_output_url_must_render_to_a_url(output_url):
    operator = VideoInferResultsOperator(task_id="results", output_url=output_url)
    with pytest.raises(VideoInferValidationError, match="output_url must be the job's output URL"):
        operator.execute(context={})  # type: ignore[arg-type]


def test_template_fields():
    assert set(VideoInferResultsOperator.template_fields) == {
        "output_url",
        "job_id",
        "destination",
        "rows_destination",
        "video",
        "videoinfer_conn_id",
    }


@pytest.mark.parametrize("job_id", [None, 42, "  "])
def test_a_job_id_that_renders_to_no_id_fails_before_any_call(storage, job_id):
    operator = VideoInferResultsOperator(task_id="results", job_id="{{ ti.xcom_pull('submit') }}")
    operator.job_id = job_id  # as rendered
    with pytest.raises(VideoInferValidationError, match="job_id must be a non-empty string"):
        operator.execute(context={})
    assert _Files.requests == []


def test_a_real_job_of_the_local_server(videoinfer_conn, sample_video, tmp_path):
    """End to end: the local server's own result file, read and summarised by the operator."""
    hook = VideoInferHook()
    model = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [model])
    state = hook.wait_for_job(job_id, poll_interval=0.2, timeout=60)
    operator = VideoInferResultsOperator(
        task_id="results", output_url=state.output_url, destination=str(tmp_path / "job.json")
    )

    summary = operator.execute(context={})

    raw = json.loads(Path(tmp_path / "job.json").read_text())
    frames = raw["motion-detection"]
    model_summary = summary["models"]["motion-detection"]
    assert summary["frames"] == len(raw["frame_offset"]) == 10
    assert model_summary["inference_type"] == "object-detection"
    assert model_summary["null_frames"] == sum(frame is None for frame in frames)
    assert model_summary["predictions"] == sum(len(frame["predictions"]) for frame in frames if frame)
    assert model_summary["predictions"] > 0


def status_reads(server) -> int:
    """How many job status requests the local server received."""
    answer = requests.get(f"{server.base_url}/_requests", params={"api_key": API_KEY, "endpoint": "status"}, timeout=5)
    answer.raise_for_status()
    return len(answer.json()["times"])


def test_a_job_id_reads_a_fresh_output_url_of_the_local_server(videoinfer_conn, sample_video, tmp_path):
    """Given the job's id, the operator reads the job's status once for its output URL, then the results."""
    hook = VideoInferHook()
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
    handed = hook.wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url
    reads = status_reads(videoinfer_conn)
    operator = VideoInferResultsOperator(task_id="results", job_id=job_id, destination=str(tmp_path / "job.json"))

    summary = operator.execute(context={})

    assert status_reads(videoinfer_conn) == reads + 1
    assert summary["frames"] == 10 and summary["models"]["motion-detection"]["predictions"] > 0
    with_url = VideoInferResultsOperator(task_id="results", output_url=handed).execute(context={})
    assert summary["models"] == with_url["models"]


def test_a_job_id_of_a_failed_or_running_job_fails_with_its_state(videoinfer_conn, sample_video, tmp_path, monkeypatch):
    hook = VideoInferHook()
    failed = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
    requests.post(
        f"{videoinfer_conn.base_url}/_faults/jobs/{failed}", params={"api_key": API_KEY}, json={"status": 3}, timeout=5
    ).raise_for_status()
    with pytest.raises(VideoInferError, match="status 3"):
        hook.wait_for_job(failed, poll_interval=0.2, timeout=60)  # it ends, failed
    with pytest.raises(VideoInferJobFailedFatalError, match=f"{failed}.*status 3") as info:
        VideoInferResultsOperator(task_id="results", job_id=failed).execute(context={})
    assert "a retry of this task would read the same failure" in str(info.value)

    with run_server(tmp_path / "slow", API_KEY, min_job_seconds=600) as slow:  # its jobs report "running"
        monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_SLOW", connection_json(slow.base_url))
        slow_hook = VideoInferHook("videoinfer_slow")
        running = slow_hook.submit_job(slow_hook.upload_video(sample_video), 5, [MOTION])
        operator = VideoInferResultsOperator(task_id="results", job_id=running, videoinfer_conn_id="videoinfer_slow")
        with pytest.raises(VideoInferError, match=f"Job {running} has not finished") as info:
            operator.execute(context={})
    assert not isinstance(info.value, VideoInferJobFailedFatalError)  # a retry may find it done


# --- destinations: never a lost or half-written file ---------------------------------------------


def test_the_same_file_for_both_destinations_is_refused_at_parse_time(tmp_path):
    with pytest.raises(VideoInferValidationError, match="destination and rows_destination are the same file"):
        VideoInferResultsOperator(
            task_id="results",
            output_url="https://example.com/r.json",
            destination=str(tmp_path / "out.json"),
            rows_destination=tmp_path / "sub" / ".." / "out.json",
        )
    with pytest.raises(VideoInferValidationError, match="same file"):
        VideoInferResultsOperator(
            task_id="results",
            output_url="https://example.com/r.json",
            destination="s3://aws_default@bucket/out.json",
            rows_destination=ObjectStoragePath("s3://other_conn@bucket/out.json"),
        )


def test_the_same_file_after_templating_is_refused_before_the_download(storage, tmp_path):
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage),
        destination=str(tmp_path) + "/{{ ds }}.json",
        rows_destination=str(tmp_path) + "/{{ ds }}.json",
    )
    operator.render_template_fields({"ds": "2026-11-21"})  # type: ignore[arg-type]

    with pytest.raises(VideoInferValidationError, match="same file"):
        operator.execute(context={})
    assert _Files.requests == [] and list(tmp_path.iterdir()) == []


def test_folder_destinations_are_written_inside_them(storage, tmp_path):
    kept_folder = tmp_path / "kept"
    rows_folder = tmp_path / "exports"
    rows_folder.mkdir()  # an existing folder, named without a trailing slash
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage),
        destination=f"{kept_folder}/",
        rows_destination=str(rows_folder),
        rows_format="csv",
    )
    assert operator.outlets == [Asset((kept_folder / "result.json").as_uri())]

    summary = operator.execute(context={})

    assert (kept_folder / "result.json").read_bytes() == result_bytes()
    assert len((rows_folder / "rows.csv").read_text().splitlines()) == 5
    assert summary["source"] == f"{kept_folder}/result.json"
    assert summary["rows"]["destination"] == f"{rows_folder}/rows.csv"


def test_parents_of_both_destinations_are_created(storage, tmp_path):
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage),
        destination=str(tmp_path / "a" / "b" / "job.json"),
        rows_destination=str(tmp_path / "c" / "d" / "rows.jsonl"),
    )
    operator.execute(context={})
    assert (tmp_path / "a" / "b" / "job.json").is_file() and (tmp_path / "c" / "d" / "rows.jsonl").is_file()


@pytest.mark.parametrize("rows_format", ["jsonl", "csv", "parquet"])
def test_a_failed_export_leaves_no_rows_file(storage, tmp_path, rows_format):
    if rows_format == "parquet":
        pytest.importorskip("pyarrow")
    # Valid JSON, but frame 4000's offset is no whole number: reading fails after 4000 frames of rows.
    box = {"x": 1, "y": 1, "width": 2, "height": 2, "confidence": 0.5, "class": "car"}
    offsets: list[float] = list(range(5000))
    offsets[4000] = 4000.5
    text = json.dumps({"frame_offset": offsets, "time_offset": offsets, "cars": [{"predictions": [box]}] * 5000})
    _Files.files["/results/broken.json"] = text.encode()
    rows = tmp_path / "rows" / f"rows.{rows_format}"
    rows.parent.mkdir()
    rows.write_text("the previous export")
    operator = VideoInferResultsOperator(
        task_id="results",
        output_url=signed(storage, "/results/broken.json"),
        destination=str(tmp_path / "kept.json"),
        rows_destination=str(rows),
        rows_format=rows_format,
    )

    with pytest.raises(VideoInferResponseError, match=r"frame_offset\[4000\] is 4000.5"):
        operator.execute(context={})
    assert rows.read_text() == "the previous export"  # untouched: replaced only by a complete file
    assert [p.name for p in rows.parent.iterdir()] == [rows.name]  # no partial file left beside it


@pytest.mark.parametrize(
    "destination",
    ["s3://aws_default@bucket/results/x.json", "s3://bucket/results/x.json"],
)
def test_asset_uris_never_carry_a_connection_id(destination):
    for value in (destination, ObjectStoragePath(destination)):
        operator = VideoInferResultsOperator(
            task_id="results", output_url="https://example.com/r.json", destination=value
        )
        assert operator.outlets == [Asset("s3://bucket/results/x.json")]

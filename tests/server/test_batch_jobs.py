"""Batch Processing jobs on the local server, over real HTTP: rows, idempotent create and 409, abort,
restart, the runtime cap, webhooks, pagination, expiry."""

from __future__ import annotations

import csv
import datetime
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from batch_client import BatchClient, wait_for
from helpers import API_KEY, CORRUPT_MP4

from videoinfer_contract import batch
from videoinfer_server.launch import RunningServer, run_server
from videoinfer_server.sample import make_sample_video

SECONDS, FPS = 2, 10
#: The slow server waits this long before each sampled frame: a job of two videos sampled at 5 fps
#: (10 frames each) takes about 2 s of wall time and 4 s of cumulative task time.
FRAME_DELAY = 0.2


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    return [
        make_sample_video(folder / name, seconds=SECONDS, fps=FPS, size=(160, 120), seed=seed).path
        for name, seed in (("one.mp4", 7), ("two.mp4", 11), ("three.mp4", 13))
    ]


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("fast"), API_KEY, enable_faults=True) as server:
        yield server


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("slow"), API_KEY, batch_frame_delay_seconds=FRAME_DELAY) as server:
        yield server


@pytest.fixture()
def client(fast: RunningServer) -> Iterator[BatchClient]:
    api = BatchClient(fast.base_url, API_KEY)
    api.http.delete("/_faults", params=api.key)
    yield api
    api.close()


@pytest.fixture()
def slow_client(slow: RunningServer) -> Iterator[BatchClient]:
    api = BatchClient(slow.base_url, API_KEY)
    yield api
    api.close()


class Hooks:
    """A webhook receiver on loopback: every JSON body posted to it, with its Authorization header."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.received.append((self.headers.get("Authorization"), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    yield receiver
    receiver.close()


def _rows(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_job_writes_one_row_per_sampled_frame_of_each_video_and_an_archive(
    client: BatchClient, videos: list[Path], fmt: str
) -> None:
    client.stage(f"rows-{fmt}", *videos[:2])
    body = client.definition(f"rows-{fmt}", aggregation_format=fmt, max_video_fps=5)
    assert client.create(f"rows-{fmt}", body).status_code == 200
    job = client.wait_ended(f"rows-{fmt}")
    assert job.state is batch.BatchJobState.SUCCEEDED, job.last_notification
    assert job.planned_stages == batch.JOB_STAGES
    assert job.created_at.tzinfo is not None and job.last_update >= job.created_at

    processing, export = client.stages(f"rows-{fmt}")
    assert (processing.name, export.name) == batch.JOB_STAGES
    assert processing.tasks_number == 2 and export.tasks_number == 1
    assert processing.output_batches == (f"rows-{fmt}-processing",)
    tasks = client.tasks(f"rows-{fmt}", "processing")
    assert {task.notification["video"] for task in tasks} == {"one.mp4", "two.mp4"}  # type: ignore[index]
    assert all(task.status_type == "success" and task.progress == 1.0 for task in tasks)

    files = client.files(f"rows-{fmt}-processing", batch.PROCESSING_PART)
    assert sorted(item.file_name for item in files) == [f"one.mp4.{fmt}", f"two.mp4.{fmt}"]
    for item in files:
        rows = _rows(httpx.get(item.download_url).text, fmt)
        assert [int(row["frame_index"]) for row in rows] == list(range(0, SECONDS * FPS, 2))
        assert [float(row["time_offset"]) for row in rows][:3] == [0.0, 0.2, 0.4]
        assert list(rows[0]) == [*batch.ROW_COLUMNS, "motion-detection", "motion-classification"]
        detections = rows[-1]["motion-detection"]
        detections = json.loads(detections) if isinstance(detections, str) else detections
        assert detections["predictions"], "the moving rectangles are detected by the last frame"

    (archive,) = client.files(f"rows-{fmt}-export")
    assert archive.is_archive and archive.part_name == batch.EXPORT_PART
    with tarfile.open(fileobj=io.BytesIO(httpx.get(archive.download_url).content), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == [f"one.mp4.{fmt}", f"two.mp4.{fmt}"]


def test_the_same_job_twice_is_one_job_and_another_body_under_its_id_is_refused(
    client: BatchClient, videos: list[Path]
) -> None:
    client.stage("idem", videos[0])
    body = client.definition("idem", max_video_fps=5)
    first, second = client.create("idem-job", body), client.create("idem-job", json.loads(json.dumps(body)))
    assert (first.status_code, second.status_code) == (200, 200)
    assert "nothing started" in second.json()["message"]
    client.wait_ended("idem-job")
    assert [entry.log_type for entry in client.logs("idem-job")].count("job-created") == 1
    assert [entry.log_type for entry in client.logs("idem-job")].count("stage-started") == 2  # one run

    other = client.create("idem-job", client.definition("idem", max_video_fps=2))
    assert other.status_code == 409
    assert "different definition" in other.json()["error"]


def test_a_create_whose_answer_is_lost_made_the_job_and_its_retry_is_idempotent(
    client: BatchClient, videos: list[Path]
) -> None:
    client.stage("lost", videos[0])
    body = client.definition("lost", max_video_fps=5)
    client.http.post("/_faults", params=client.key, json={"endpoint": "batch_create_job", "action": "lose_answer"})
    with pytest.raises(httpx.TransportError):
        client.create("lost-job", body)
    assert client.requests()["batch_create_job"] >= 1
    retry = client.create("lost-job", body)
    assert retry.status_code == 200 and "nothing started" in retry.json()["message"]
    assert client.wait_ended("lost-job").state is batch.BatchJobState.SUCCEEDED


def test_refusals_name_the_value_and_the_fix(client: BatchClient, videos: list[Path]) -> None:
    client.stage("refusals", videos[0])
    unknown = client.create("bad-workflow", client.definition("refusals", "no-such-workflow"))
    assert unknown.status_code == 400 and "detect-motion" in unknown.json()["error"]
    body = client.definition("refusals")
    body["processingSpecification"]["maxVideoFPS"] = 0
    assert "processingSpecification.maxVideoFPS" in client.create("bad-fps", body).json()["error"]
    missing = client.create("no-batch", client.definition("never-staged"))
    assert missing.status_code == 404 and "never-staged" in missing.json()["error"]
    too_long = client.create("a" * 21, client.definition("refusals"))
    assert too_long.status_code == 400 and "at most 20" in too_long.json()["error"]
    wrong_key = httpx.get(client.base_url + "/", params={"api_key": "wrong"})
    assert wrong_key.status_code == 401
    other_ws = client.http.get("/batch-processing/v1/external/someone-else/jobs", params=client.key)
    assert other_ws.status_code == 403 and "someone-else" in other_ws.json()["error"]


def test_abort_stops_a_running_job_at_once_and_restart_runs_it_again(
    slow_client: BatchClient, videos: list[Path], hooks: Hooks
) -> None:
    client = slow_client
    client.stage("abortable", *videos[:2])
    body = client.definition("abortable", max_video_fps=5, notifications_url=hooks.url)
    assert client.create("abort-me", body).status_code == 200
    wait_for(
        lambda: (
            any(task.progress for task in client.tasks("abort-me", "processing"))
            if client.stages("abort-me")
            else False
        ),
        what="a task to report progress",
    )
    answer = client.ok(batch.ABORT_JOB_ENDPOINT, job_id="abort-me")
    assert answer["status"] == "ok"
    job = client.job("abort-me")  # terminal as the abort answers, not some time later
    assert job.is_terminal and job.error and job.state is batch.BatchJobState.ABORTED
    assert all(task.status_type == "error" for task in client.tasks("abort-me", "processing"))
    assert client.files("abort-me-processing") == []  # no video ran to its end
    assert [entry.log_type for entry in client.logs("abort-me", "warning")] == ["job-aborted"]
    wait_for(lambda: hooks.received, what="the webhook")
    authorization, payload = hooks.received[0]
    assert payload["job_id"] == "abort-me" and payload["job_state"] == "fail"
    assert authorization == f"Bearer rf_{client.workspace}"

    again = client.ok(batch.ABORT_JOB_ENDPOINT, job_id="abort-me")  # idempotent on an ended job
    assert "already ended" in again["message"]

    client.ok(batch.RESTART_JOB_ENDPOINT, job_id="abort-me")
    job = client.wait_ended("abort-me")
    assert job.state is batch.BatchJobState.SUCCEEDED
    assert len(client.files("abort-me-processing")) == 2
    refused = client.call(batch.RESTART_JOB_ENDPOINT, job_id="abort-me")
    assert refused.status_code == 409 and "only an aborted or failed job restarts" in refused.json()["error"]


def test_the_runtime_cap_ends_the_job_failed_and_a_restart_with_a_higher_cap_finishes_it(
    slow_client: BatchClient, videos: list[Path]
) -> None:
    client = slow_client
    client.stage("capped", *videos[:2])
    body = client.definition("capped", max_video_fps=5, processing_timeout_seconds=1, max_parallel_tasks=2)
    assert client.create("capped-job", body).status_code == 200
    job = client.wait_ended("capped-job")
    assert job.state is batch.BatchJobState.FAILED and job.error
    assert job.last_notification["type"] == "job-runtime-cap-reached"  # type: ignore[index]
    assert "processingTimeoutSeconds=1 s" in (job.message or "")
    errors = client.logs("capped-job", "error")
    assert [entry.log_type for entry in errors] == ["job-runtime-cap-reached"]
    assert errors[0].payload["usedSeconds"] >= 1

    override = batch.RestartOverride(processing_timeout_seconds=600).to_payload()
    client.ok(batch.RESTART_JOB_ENDPOINT, job_id="capped-job", json=override)
    job = client.wait_ended("capped-job")
    assert job.state is batch.BatchJobState.SUCCEEDED
    assert job.restart_overrides == (override,)


def test_pages_carry_a_token_until_the_last_and_a_forged_token_is_refused(
    client: BatchClient, videos: list[Path]
) -> None:
    client.stage("paged", *videos)
    for job_id in ("paged-1", "paged-2"):
        client.create(job_id, client.definition("paged", max_video_fps=1))
    for job_id in ("paged-1", "paged-2"):
        client.wait_ended(job_id)
    tasks = client.tasks("paged-1", "processing", page_size=1)
    assert len(tasks) == 3 and len({task.task_id for task in tasks}) == 3
    first = client.ok(batch.STAGE_TASKS_ENDPOINT, {"pageSize": 3}, job_id="paged-1", stage_id="processing")
    assert "nextPageToken" in first and first["nextPageToken"] is None  # present, null: the CLI needs the key
    jobs = client.all_pages(
        lambda token: batch.parse_jobs_page(
            client.ok(batch.LIST_JOBS_ENDPOINT, {"pageSize": 1, **({"nextPageToken": token} if token else {})})
        )
    )
    assert {"paged-1", "paged-2"} <= {job.job_id for job in jobs}
    assert len(client.files("paged", page_size=1)) == 3
    forged = client.call(batch.LIST_JOBS_ENDPOINT, {"nextPageToken": "not-a-token"})
    assert forged.status_code == 400 and "nextPageToken" in forged.json()["error"]


def test_batches_expire_seven_days_after_their_creation(client: BatchClient, videos: list[Path]) -> None:
    client.stage("expiring", videos[0])
    staged = batch.parse_batch(client.ok(batch.BATCH_METADATA_ENDPOINT, batch_id="expiring"))
    assert staged.expires_at - staged.created_at == batch.RETENTION
    assert staged.created_at.tzinfo is not None
    assert abs(staged.created_at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=5)
    assert (staged.batch_type, staged.content_type) == ("simple-batch", "videos")
    listed = client.all_pages(
        lambda token: batch.parse_batches_page(
            client.ok(batch.LIST_BATCHES_ENDPOINT, {"nextPageToken": token} if token else {})
        )
    )
    assert "expiring" in {item.batch_id for item in listed}


def test_a_job_running_when_the_server_stops_runs_again_when_it_comes_back(tmp_path: Path, videos: list[Path]) -> None:
    with run_server(tmp_path, API_KEY, batch_frame_delay_seconds=FRAME_DELAY) as first:
        client = BatchClient(first.base_url, API_KEY)
        client.stage("resumed", videos[0])
        assert client.create("resumed-job", client.definition("resumed", max_video_fps=5)).status_code == 200
        wait_for(lambda: client.job("resumed-job").current_stage == "processing", what="the job to start")
        client.close()
    with run_server(tmp_path, API_KEY) as second:
        client = BatchClient(second.base_url, API_KEY)
        job = client.wait_ended("resumed-job")
        assert job.state is batch.BatchJobState.SUCCEEDED
        assert [entry.log_type for entry in client.logs("resumed-job")].count("stage-started") >= 3  # ran twice
        assert len(client.files("resumed-job-processing")) == 1
        client.close()


def test_a_video_that_does_not_decode_fails_its_task_and_the_others_are_still_exported(
    client: BatchClient, videos: list[Path], tmp_path: Path
) -> None:
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(CORRUPT_MP4)
    client.stage("partly", videos[0], corrupt)
    assert client.create("partly-job", client.definition("partly", max_video_fps=5)).status_code == 200
    job = client.wait_ended("partly-job")
    assert job.state is batch.BatchJobState.FAILED and "1 of 2 videos failed" in (job.message or "")
    by_video = {task.notification["video"]: task for task in client.tasks("partly-job", "processing")}  # type: ignore[index]
    assert (by_video["one.mp4"].status_type, by_video["broken.mp4"].status_type) == ("success", "error")
    assert [
        entry.payload["video"] for entry in client.logs("partly-job", "error") if entry.log_type == "task-failed"
    ] == ["broken.mp4"]
    (archive,) = client.files("partly-job-export")
    with tarfile.open(fileobj=io.BytesIO(httpx.get(archive.download_url).content), mode="r:gz") as tar:
        assert tar.getnames() == ["one.mp4.csv"]

"""The official Batch Processing client, ``inference rf-cloud`` (inference-cli), against the local server.

The CLI lives in its own virtualenv (``make inference-cli``: ``.venv-cli``), found through
``$INFERENCE_CLI``, which ``make test`` sets. Without it the module is skipped, except in CI, where
it fails: there the Makefile always makes it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_client import BatchClient, wait_for
from helpers import API_KEY

from videoinfer_contract import batch
from videoinfer_server.launch import run_server_process
from videoinfer_server.sample import make_sample_video

_CLI = os.environ.get("INFERENCE_CLI")
if not _CLI:
    if os.environ.get("CI"):
        pytest.fail("INFERENCE_CLI is not set: run the tests with `make test` (it makes .venv-cli)", pytrace=False)
    pytest.skip(
        "INFERENCE_CLI is not set (make inference-cli, then INFERENCE_CLI=.venv-cli/bin/inference)",
        allow_module_level=True,
    )
CLI = Path(_CLI).resolve()
VIDEO_SECONDS, VIDEO_FPS, MAX_VIDEO_FPS = 2, 10, 5


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of two real videos (2 s at 10 fps), as a user would stage."""
    folder = tmp_path_factory.mktemp("videos")
    for name, seed in (("left.mp4", 7), ("right.mp4", 11)):
        make_sample_video(folder / name, seconds=VIDEO_SECONDS, fps=VIDEO_FPS, size=(160, 120), seed=seed)
    return folder


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "server.log"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, server_log: Path) -> Iterator[str]:
    """The local server in its own process (faults on, for ``GET /_requests``), its output in ``server_log``."""
    assert CLI.is_file(), f"{CLI} does not exist: run `make inference-cli`"
    with (
        open(server_log, "wb") as log,
        run_server_process(tmp_path_factory.mktemp("data"), API_KEY, "--enable-faults", output=log) as url,
    ):
        yield url


def inference(base_url: str, cwd: Path, *args: str) -> str:
    """Run ``inference rf-cloud ARGS`` with ``API_BASE_URL`` at the local server; it must succeed."""
    env = {**os.environ, "API_BASE_URL": base_url, "ROBOFLOW_API_KEY": API_KEY, "COLUMNS": "200"}
    done = subprocess.run(
        [str(CLI), "rf-cloud", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"inference rf-cloud {' '.join(args)} failed:\n{output}"
    return output


def test_the_cli_stages_runs_shows_logs_and_exports_a_video_job(
    base_url: str, videos: Path, tmp_path: Path, server_log: Path
) -> None:
    client = BatchClient(base_url, API_KEY)
    inference(
        base_url,
        tmp_path,
        "data-staging",
        "create-batch-of-videos",
        "--videos-dir",
        str(videos),
        "--batch-id",
        "cli-videos",
    )
    assert client.count("cli-videos") == 2
    assert client.requests()["staging_put"] == 2

    inference(
        base_url,
        tmp_path,
        "batch-processing",
        "process-videos-with-workflow",
        "--batch-id",
        "cli-videos",
        "--workflow-id",
        "detect-motion",
        "--job-id",
        "cli-job",
        "--max-video-fps",
        str(MAX_VIDEO_FPS),
        "--aggregation-format",
        "csv",
        "--max-runtime-seconds",
        "600",
    )
    job = client.wait_ended("cli-job")
    assert job.state is batch.BatchJobState.SUCCEEDED, job.last_notification
    assert batch.VideoJobDefinition.from_payload(job.definition).processing_timeout_seconds == 600

    details = inference(base_url, tmp_path, "batch-processing", "show-job-details", "--job-id", "cli-job")
    assert "cli-job-processing" in details and "cli-job-export" in details
    assert "✅: 2, ❌: 0" in details  # both video tasks succeeded, as the CLI counts them

    logs_file = tmp_path / "logs.jsonl"
    inference(
        base_url, tmp_path, "batch-processing", "fetch-logs", "--job-id", "cli-job", "--output-file", str(logs_file)
    )
    logs = [json.loads(line) for line in logs_file.read_text().splitlines() if line.strip()]
    completed = sorted(entry["payload"]["video"] for entry in logs if entry["log_type"] == "task-completed")
    assert completed == ["left.mp4", "right.mp4"]

    out = tmp_path / "export"
    inference(
        base_url, tmp_path, "data-staging", "export-batch", "--batch-id", "cli-job-export", "--target-dir", str(out)
    )
    exported = sorted(path.name for path in (out / batch.EXPORT_PART).iterdir())
    assert exported == ["left.mp4.csv", "right.mp4.csv"]  # the archive was downloaded and unpacked
    expected_rows = VIDEO_SECONDS * MAX_VIDEO_FPS
    for name in exported:
        with open(out / batch.EXPORT_PART / name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == expected_rows
        assert list(rows[0]) == [*batch.ROW_COLUMNS, "motion-detection", "motion-classification"]
        assert [int(row["frame_index"]) for row in rows] == list(range(0, VIDEO_SECONDS * VIDEO_FPS, 2))
        assert {row["video"] for row in rows} == {name.removesuffix(".csv")}
        moving = [json.loads(row["motion-classification"])["top"] for row in rows]
        assert "moving" in moving  # the rectangles move: the model saw them

    server_text = server_log.read_text()
    assert "POST /batch-processing/v1/external/local/jobs/cli-job" in server_text  # the log is the server's
    assert API_KEY not in server_text
    assert "X-Goog-Signature=" not in server_text.replace("X-Goog-Signature=***", "")


@pytest.fixture(scope="module")
def slow_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server whose tasks wait 2 s before each frame: a job of it runs for 20 s, long enough for
    the CLI (several seconds to start) to abort it mid-run."""
    log_path = tmp_path_factory.mktemp("slow-log") / "server.log"
    with (
        open(log_path, "wb") as log,
        run_server_process(tmp_path_factory.mktemp("slow"), API_KEY, "--batch-frame-delay", "2", output=log) as url,
    ):
        yield url


def test_the_cli_aborts_a_running_job_and_restarts_it_with_a_new_cap(
    slow_base_url: str, videos: Path, tmp_path: Path
) -> None:
    client = BatchClient(slow_base_url, API_KEY)
    client.stage("slow-videos", *sorted(videos.glob("*.mp4")))  # the CLI keeps its .import_log-* there too
    inference(
        slow_base_url,
        tmp_path,
        "batch-processing",
        "process-videos-with-workflow",
        "--batch-id",
        "slow-videos",
        "--workflow-id",
        "detect-motion",
        "--job-id",
        "slow-job",
        "--max-video-fps",
        str(MAX_VIDEO_FPS),
    )
    wait_for(lambda: client.job("slow-job").current_stage == "processing", what="the job to start")
    aborted = inference(slow_base_url, tmp_path, "batch-processing", "abort-job", "--job-id", "slow-job")
    assert "aborted" in aborted
    job = client.job("slow-job")
    assert job.state is batch.BatchJobState.ABORTED and job.is_terminal
    assert client.files("slow-job-processing") == []  # stopped before any video's end

    inference(
        slow_base_url,
        tmp_path,
        "batch-processing",
        "restart-job",
        "--job-id",
        "slow-job",
        "--max-runtime-seconds",
        "900",
    )
    job = client.job("slow-job")
    assert not job.is_terminal  # running again
    assert job.restart_overrides == ({"type": "parameters-override-v1", "processingTimeoutSeconds": 900},)
    client.ok(batch.ABORT_JOB_ENDPOINT, job_id="slow-job")  # no need to wait 20 s for its end
    client.close()

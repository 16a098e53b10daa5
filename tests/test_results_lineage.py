"""OpenLineage: the operators report their inputs and outputs through the OpenLineage provider.

A real ``airflow dags test`` process, with the OpenLineage provider's file transport configured,
runs upload -> submit (waiting) -> results against the local server; the events it writes are
then read back. Without the provider's configuration nothing is emitted (its listener is off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import API_KEY, connection_json

from airflow_provider_videoinfer.lineage import dataset_name

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")

DAG = textwrap.dedent(
    """
    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
    from airflow_provider_videoinfer.operators.videoinfer import (
        VideoInferSubmitJobOperator,
        VideoInferUploadOperator,
    )

    MODEL = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
    OUT = os.environ["LINEAGE_OUT"]

    with DAG("videoinfer_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        upload = VideoInferUploadOperator(task_id="upload", video=os.environ["LINEAGE_VIDEO"])
        submit = VideoInferSubmitJobOperator(
            task_id="submit", input_url=upload.output, infer_fps=5, models=[MODEL],
            wait_for_completion=True, deferrable=False, poll_interval=0.5,
        )
        VideoInferResultsOperator(
            task_id="results", output_url=submit.output,
            destination=OUT + "/kept/result.json", rows_destination=OUT + "/rows.csv", rows_format="csv",
        )
    """
)


def run_dag(home: Path, server, video: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (home / "dags").mkdir(parents=True, exist_ok=True)
    (home / "dags" / "lineage_dag.py").write_text(DAG)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW_CONN_VIDEOINFER_DEFAULT": connection_json(server.base_url),
        "LINEAGE_VIDEO": str(video),
        "LINEAGE_OUT": str(home / "out"),
        **env,
    }
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=environment, check=True, capture_output=True, timeout=300)
    return subprocess.run(
        [*airflow, "dags", "test", "videoinfer_lineage"], env=environment, capture_output=True, text=True, timeout=300
    )


def test_operators_report_their_datasets_to_openlineage(videoinfer_conn, sample_video, tmp_path):
    events_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    run = run_dag(
        tmp_path / "airflow",
        videoinfer_conn,
        sample_video,
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(transport),
        AIRFLOW__OPENLINEAGE__NAMESPACE="videoinfer-tests",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    complete = {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in events
        if event["eventType"] == "COMPLETE" and event["job"]["name"].startswith("videoinfer_lineage.")
    }

    def names(event: dict, key: str) -> list[tuple[str, str]]:
        return [(d["namespace"], d["name"]) for d in event[key]]

    out = tmp_path / "airflow" / "out"
    server_namespace = f"http://127.0.0.1:{videoinfer_conn.base_url.rsplit(':', 1)[1]}"
    assert names(complete["upload"], "inputs") == [("file", str(sample_video))]
    [(namespace, uploaded)] = names(complete["upload"], "outputs")
    assert namespace == server_namespace and uploaded.endswith(".mp4")
    assert (names(complete["submit"], "inputs"), names(complete["submit"], "outputs")) == (
        [(server_namespace, uploaded)],
        [],
    )
    [(namespace, result)] = names(complete["results"], "inputs")
    assert namespace == server_namespace and result.startswith("/results/")
    assert names(complete["results"], "outputs") == [
        ("file", str(out / "kept" / "result.json")),
        ("file", str(out / "rows.csv")),
    ]
    # Signed URLs' query strings (signatures) and the API key never reach the lineage backend.
    text = events_file.read_text()
    assert API_KEY not in text and "X-Goog-Signature" not in text and "signature=" not in text.lower()


def test_dataset_names_follow_openlineage_conventions(tmp_path):
    from airflow.sdk import ObjectStoragePath

    assert dataset_name("s3://aws_default@bucket/results/x.json") == ("s3://bucket", "results/x.json")
    assert dataset_name(ObjectStoragePath("s3://aws_default@bucket/x.json")) == ("s3://bucket", "x.json")
    assert dataset_name(tmp_path / "r.json") == ("file", str(tmp_path / "r.json"))
    assert dataset_name("https://storage.example.com/b/job.json?X-Goog-Signature=s&X-Goog-Expires=9") == (
        "https://storage.example.com",
        "/b/job.json",
    )

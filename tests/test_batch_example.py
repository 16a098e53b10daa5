"""The Batch Processing example DAG end to end under ``dag.test()``, staging by reference from S3 (moto), and
no key nor signed URL in any log, XCom or rendered field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    API_KEY,
    FakeTaskStateStore,
    aws_connection_json,
    clear_faults,
    connection_json,
    holds_key,
    key_leaks_in_airflow,
    moto_client,
    run_dag,
    run_moto_server,
    signature_leaks,
    states,
    xcom,
)

from airflow_provider_videoinfer.hooks.batch import VideoInferBatchHook
from airflow_provider_videoinfer.operators.batch_staging import VideoInferBatchStageOperator


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory):
    """A local server that also fetches remote URLs (the presigned URLs of videos staged by reference)."""
    from videoinfer_server.launch import run_server

    with run_server(tmp_path_factory.mktemp("batch-example"), API_KEY, enable_faults=True, allow_remote_urls=True) as s:
        yield s


@pytest.fixture
def batch_conn(batch_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(batch_server.base_url))
    clear_faults(batch_server)
    return batch_server


def test_the_example_stages_runs_keeps_and_summarises(
    batch_conn, airflow_db, sample_video, tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("VIDEOINFER_POLL_INTERVAL", "0.2")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("one.mp4", "two.mp4"):
        (videos / name).write_bytes(sample_video.read_bytes())
    results = tmp_path / "results"
    run = run_dag("videoinfer_batch", source=str(videos), results_dir=str(results), max_runtime_seconds=600)
    assert set(states(run).values()) == {"success"}, states(run)

    summary = xcom(run, "report")
    job_id = xcom(run, "run")
    assert summary["job_id"] == job_id and summary["videos"] == 2 and summary["rows"] > 0
    kept = results / job_id
    assert (kept / "_MANIFEST.json").is_file()
    assert json.loads((kept / "_MANIFEST.json").read_text()) == summary
    assert not list(results.glob(".*.partial")), "the working folder was committed, not left behind"
    assert summary["files"] == len([p for p in kept.rglob("*") if p.is_file() and p.name != "_MANIFEST.json"])

    out, err = capfd.readouterr()
    text = out + err
    assert not holds_key(text) and not signature_leaks(text)
    assert key_leaks_in_airflow(API_KEY) == []
    for task_id in ("stage", "run", "results", "report"):
        assert not signature_leaks(json.dumps(xcom(run, task_id), default=str))
    assert signature_leaks_in_airflow(run.run_id) == []


def signature_leaks_in_airflow(run_id: str) -> list[str]:
    """Each table of the Airflow database (XCom, rendered fields, trigger kwargs, logs...) with a row of this
    DAG run (or a trigger) that holds a presigned URL's credential unmasked. Other tests of the session keep
    other runs in the same database, such as a video job's output URL that a results task was given."""
    import os
    import sqlite3

    leaks = []
    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            rows = (repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))
            if any((table == "trigger" or run_id in row) and signature_leaks(row) for row in rows):
                leaks.append(table)
    return leaks


def test_the_results_are_kept_in_a_bucket_and_a_second_run_reads_the_manifest(batch_conn, sample_video, monkeypatch):
    from airflow_provider_videoinfer.operators.batch import VideoInferBatchJobOperator
    from airflow_provider_videoinfer.operators.batch_results import VideoInferBatchResultsOperator

    hook = VideoInferBatchHook()
    if not hook.count("results-batch"):
        hook.upload_video("results-batch", sample_video, "clip.mp4")
    run = VideoInferBatchJobOperator(
        task_id="run", batch_id="results-batch", workflow_id="detect-people", poll_interval=0.2, deferrable=False
    )
    context = {"ti": _TaskInstance(), "task_state_store": FakeTaskStateStore()}
    job_id = run.execute(context)  # type: ignore[arg-type]
    with run_moto_server() as endpoint:
        moto_client(endpoint).create_bucket(Bucket="results")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_RESULTS", aws_connection_json(endpoint))
        destination = "s3://aws_results@results/kept"
        first = VideoInferBatchResultsOperator(task_id="results", job_id=job_id, destination=destination).execute({})
        keys = [item["Key"] for item in moto_client(endpoint).list_objects_v2(Bucket="results")["Contents"]]
        assert f"kept/{job_id}/_MANIFEST.json" in keys
        assert first["files"] == len(keys) - 1 and first["videos"] == 1 and first["rows"] > 0
        again = VideoInferBatchResultsOperator(task_id="results", job_id=job_id, destination=destination).execute({})
        assert again == first


def _printed(capfd) -> str:
    """What the test printed so far (task and hook logs go to stdout through Airflow's structlog)."""
    out, err = capfd.readouterr()
    _PRINTED.append(out + err)
    return " ".join("".join(_PRINTED).split())


_PRINTED: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_output():
    _PRINTED.clear()


class _TaskInstance:
    dag_id, run_id, task_id, map_index, max_tries, try_number = "stage_dag", "run-s3", "stage", -1, 1, 1

    def xcom_push(self, key: str, value: object) -> None:  # pragma: no cover -- the staging operator pushes nothing
        pass


def test_videos_in_a_bucket_are_staged_by_reference_once(batch_conn, sample_video, tmp_path, monkeypatch, capfd):
    record = tmp_path / "moto.jsonl"
    with run_moto_server(record_to=record) as endpoint:
        client = moto_client(endpoint)
        client.create_bucket(Bucket="videos")
        for name in ("a.mp4", "b.mp4"):
            client.put_object(Bucket="videos", Key=f"in/{name}", Body=sample_video.read_bytes())
        client.put_object(Bucket="videos", Key="in/notes.txt", Body=b"not a video")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", aws_connection_json(endpoint))
        stage = VideoInferBatchStageOperator(task_id="stage", sources="s3://aws_test@videos/in/", poll_interval=0.2)
        context = {"ti": _TaskInstance(), "task_state_store": FakeTaskStateStore()}
        batch_id = stage.execute(context)  # type: ignore[arg-type]
        hook = VideoInferBatchHook()
        assert hook.count(batch_id) == 2
        assert sorted(item.file_name for item in hook.list_files(batch_id)) == ["a.mp4", "b.mp4"]
        assert "nothing is uploaded" in _printed(capfd)

        _printed(capfd)
        assert stage.execute(context) == batch_id  # type: ignore[arg-type]  # a retry
        assert "2 already in it, 0 to add" in _printed(capfd)
        assert hook.count(batch_id) == 2
    assert not signature_leaks(_printed(capfd)) and not holds_key(_printed(capfd))
    assert not signature_leaks(repr(stage.sources))


def test_a_local_folder_is_uploaded_and_a_retry_adds_nothing(batch_conn, sample_video, tmp_path, capfd):
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "x.mp4").write_bytes(sample_video.read_bytes())
    (folder / "readme.md").write_text("no video")
    stage = VideoInferBatchStageOperator(task_id="stage", sources=str(Path(folder) / "*.mp4"), poll_interval=0.2)
    context = {"ti": _TaskInstance(), "task_state_store": FakeTaskStateStore()}
    context["ti"].run_id = "run-local"  # type: ignore[attr-defined]
    batch_id = stage.execute(context)  # type: ignore[arg-type]
    assert VideoInferBatchHook().count(batch_id) == 1
    _printed(capfd)
    stage.execute(context)  # type: ignore[arg-type]
    assert "1 already in it, 0 to add" in _printed(capfd)

"""The example DAGs: they import cleanly and run end to end under ``dag.test()`` against the local server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState
from helpers import run_dag, states, xcom

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
EXAMPLE_IDS = {"videoinfer_quickstart", "videoinfer_folder", "videoinfer_submit_and_wait"}


@pytest.fixture
def fast_polls(monkeypatch):
    """The examples read their poll interval at parse time; the local server allows fast polls."""
    monkeypatch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")


def test_every_example_dag_imports_without_errors_or_cycles():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(EXAMPLES))
    assert bag.import_errors == {}  # a cycle is reported here too
    assert set(bag.dag_ids) == EXAMPLE_IDS
    for dag in bag.dags.values():
        assert dag.tags and "example" in dag.tags


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_quickstart_runs_end_to_end(videoinfer_conn, sample_video, tmp_path):
    run = run_dag("videoinfer_quickstart", video=str(sample_video), results_dir=str(tmp_path / "results"))
    assert run.state == DagRunState.SUCCESS, states(run)
    summary = xcom(run, "results")
    kept = Path(summary["source"])
    assert kept.is_file() and kept.parent.parent == tmp_path / "results"
    assert set(summary["models"]) == {"motion-detection", "motion-classification"}
    detections = summary["models"]["motion-detection"]
    assert detections["frames"] == 10 and detections["frames_with_predictions"] > 0
    assert json.loads(kept.read_text())["frame_offset"][:2] == [0, 2]
    rows = (kept.parent / "predictions.jsonl").read_text().splitlines()
    assert len(rows) >= detections["predictions"]


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_folder_fans_out_one_chain_per_video(videoinfer_conn, sample_video, tmp_path):
    source = tmp_path / "incoming"
    source.mkdir()
    for name in ("a.mp4", "B.MP4"):
        shutil.copy(sample_video, source / name)
    (source / "notes.txt").write_text("not a video")
    results = tmp_path / "results"
    run = run_dag("videoinfer_folder", source=f"file://{source}", results_dir=f"file://{results}", infer_fps=2)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(list(results.rglob("*.json"))) == 2


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_submit_and_wait_returns_the_output_url(videoinfer_conn, sample_video):
    input_url = VideoInferHook().upload_video(sample_video)
    run = run_dag("videoinfer_submit_and_wait", input_url=input_url)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert xcom(run, "submit_and_wait").startswith(videoinfer_conn.base_url)

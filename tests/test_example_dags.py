"""The example DAGs: they import cleanly and run end to end under ``dag.test()`` against the local server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState
from helpers import connection_json, dag_bag, run_dag, states, xcom

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
EXAMPLE_IDS = {
    "videoinfer_quickstart",
    "videoinfer_folder",
    "videoinfer_submit_and_wait",
    "videoinfer_batch",
    "videoinfer_mapped",
}


@pytest.fixture
def fast_polls(monkeypatch):
    """The examples read their poll interval at parse time; the local server allows fast polls."""
    monkeypatch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")


def test_every_example_dag_imports_without_errors_or_cycles():
    bag = dag_bag(EXAMPLES)
    assert bag.import_errors == {}  # a cycle is reported here too
    assert set(bag.dag_ids) == EXAMPLE_IDS
    for dag in bag.dags.values():
        assert dag.tags and "example" in dag.tags


def test_every_example_documents_itself_and_its_params():
    for dag in dag_bag(EXAMPLES).dags.values():
        assert dag.description and dag.doc_md, dag.dag_id
        for name, param in dag.params.items():
            param = dag.params.get_param(name)
            assert param.schema.get("title") and param.description, (dag.dag_id, name)
            param.resolve()  # every default is valid against its own schema
        models = dag.params.get_param("models").schema if "models" in dag.params else None
        if models is not None:
            assert models["type"] == "array" and models["items"] == {"type": "object"}


def test_every_task_of_every_example_has_retries_with_a_delay():
    """Users copy the examples: a retry is what reconnects to a job after a lost worker or a broker blip."""
    from airflow.dag_processing.dagbag import DagBag

    for dag in DagBag(str(EXAMPLES)).dags.values():
        for task in dag.tasks:
            assert task.retries >= 1 and task.retry_delay.total_seconds() >= 30, (dag.dag_id, task.task_id)


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_quickstart_with_its_defaults_generates_the_sample_and_keeps_a_contact_sheet(
    videoinfer_conn, tmp_path, monkeypatch
):
    monkeypatch.setenv("VIDEOINFER_SAMPLE_VIDEO", str(tmp_path / "sample.mp4"))
    run = run_dag("videoinfer_quickstart", results_dir=str(tmp_path / "results"))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert (tmp_path / "sample.mp4").is_file()
    summary = xcom(run, "results")
    sheet = Path(summary["contact_sheet"]["location"])
    assert sheet.is_file() and sheet.parent == Path(summary["source"]).parent
    assert Path(summary["source"]).as_uri() in asset_uris(run, "results")


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
    # The folder's total, logged before any job, is what the jobs' result files hold.
    files = [json.loads(path.read_text()) for path in results.rglob("result.json")]
    held = sum(len(result[key]) for result in files for key in result if key not in ("frame_offset", "time_offset"))
    assert xcom(run, "estimate") == {"videos": 2, "frames": held, "video_seconds": 4.0, "unknown": []}


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_folder_one_corrupt_video_fails_only_its_own_chain(videoinfer_conn, sample_video, tmp_path):
    source = tmp_path / "incoming"
    source.mkdir()
    for name in ("a.mp4", "c.mp4"):
        shutil.copy(sample_video, source / name)
    (source / "b-corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    results = tmp_path / "results"
    run = run_dag("videoinfer_folder", source=f"file://{source}", results_dir=f"file://{results}", infer_fps=2)

    chains = mapped_states(run)
    assert chains["b-corrupt.mp4"]["video.wait"] == "failed"
    assert chains["b-corrupt.mp4"]["video.results"] == "upstream_failed"
    for name in ("a.mp4", "c.mp4"):
        assert set(chains[name].values()) == {"success"}, chains[name]
        assert (results / run.run_id.replace(":", "_") / name / "result.json").is_file()
        assert (results / run.run_id.replace(":", "_") / name / "result.contact-sheet.png").is_file()
    assert len(asset_uris(run, "video.results")) == 2


def mapped_states(run) -> dict[str, dict[str, str]]:
    """Each mapped chain's task states, by the label the UI shows (the video's name).

    A task that never ran (upstream failed) has no label of its own (Airflow shows its index):
    its chain's label is the one of the tasks that ran, which must all agree.
    """
    from airflow.utils.session import create_session

    by_index: dict[int, dict[str, str]] = {}
    labels: dict[int, set[str]] = {}
    with create_session() as session:
        for ti in run.get_task_instances(session=session):
            if ti.map_index >= 0:
                by_index.setdefault(ti.map_index, {})[ti.task_id] = ti.state
                if ti.rendered_map_index not in (None, str(ti.map_index)):
                    labels.setdefault(ti.map_index, set()).add(ti.rendered_map_index)
    assert all(len(names) == 1 for names in labels.values()), labels
    return {labels[index].pop(): chain for index, chain in by_index.items()}


def asset_uris(run, task_id: str) -> list[str]:
    """The URIs of the asset events a task of the run emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter_by(source_dag_id=run.dag_id, source_run_id=run.run_id).all()
        return [event.asset.uri for event in events if event.source_task_id == task_id]


@pytest.mark.usefixtures("airflow_db")
def test_mapped_labels_each_video_and_draws_its_own_contact_sheet(videoinfer_conn, sample_video, tmp_path, monkeypatch):
    """``.expand`` per task, ``video=`` per item, ``map_index_template``; paced by the connection's poll_interval."""
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(videoinfer_conn.base_url, poll_interval=0.3))
    videos = []
    for name in ("north.mp4", "south.mp4"):
        shutil.copy(sample_video, tmp_path / name)
        videos.append(str(tmp_path / name))
    results = tmp_path / "results"
    run = run_dag("videoinfer_mapped", videos=videos, results_dir=str(results))
    assert run.state == DagRunState.SUCCESS, states(run)
    chains = mapped_states(run)
    assert set(chains) == {"north.mp4", "south.mp4"}
    for name, chain in chains.items():
        assert chain == {"upload": "success", "submit": "success", "wait": "success", "results": "success"}
        folder = results / run.run_id.replace(":", "_") / name
        assert (folder / "result.json").is_file() and (folder / "result.contact-sheet.png").is_file()


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_submit_and_wait_with_its_defaults_uploads_a_sample(videoinfer_conn, tmp_path):
    run = run_dag("videoinfer_submit_and_wait", results_dir=str(tmp_path))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert xcom(run, "results")["models"]["motion-detection"]["frames_with_predictions"] > 0


@pytest.mark.usefixtures("airflow_db", "fast_polls")
def test_submit_and_wait_returns_the_output_url(videoinfer_conn, sample_video):
    input_url = VideoInferHook().upload_video(sample_video)
    run = run_dag("videoinfer_submit_and_wait", input_url=input_url)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert xcom(run, "submit_and_wait").startswith(videoinfer_conn.base_url)

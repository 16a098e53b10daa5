"""Shared fixtures: an isolated Airflow home, the real local server over loopback, a sample video.

The Airflow environment is set before anything imports Airflow, so every test (and every
``dag.test()``) runs against a throwaway SQLite database and a DAGs folder that holds the
example DAGs and the test DAGs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import API_KEY, CAPTURED, connection_json

ROOT = Path(__file__).resolve().parent.parent

_home = Path(tempfile.mkdtemp(prefix="videoinfer-airflow-"))
_dags = _home / "dags"
_dags.mkdir()
for folder in (ROOT / "example_dags", ROOT / "tests" / "dags"):
    for file in sorted(folder.glob("*.py")):
        (_dags / file.name).symlink_to(file)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
)
from airflow_provider_videoinfer import compat  # noqa: E402 (after AIRFLOW_HOME is set)

if compat.DAGS_TEST_PRINTS_DEBUG:
    compat.filter_debug_logs()  # Airflow 3.0's dag.test() would print each password in a debug line


def pytest_collection_modifyitems(items):
    """Run the suite-wide leak check after every other test."""
    last = [item for item in items if item.get_closest_marker("suite_leak_check")]
    items[:] = [item for item in items if item not in last] + last


def pytest_runtest_logreport(report):
    """Keep every captured log, output and failure text for the suite-wide leak check."""
    for name, text in report.sections:
        CAPTURED.append((f"{report.nodeid} {name}", text))
    if report.longrepr is not None:
        CAPTURED.append((f"{report.nodeid} failure", report.longreprtext))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (needed by ``dag.test()``)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _home


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The project's local server on loopback, with fault injection on, for the whole session."""
    from videoinfer_server.launch import run_server

    with run_server(tmp_path_factory.mktemp("server"), API_KEY, enable_faults=True) as running:
        yield running


@pytest.fixture
def videoinfer_conn(server, monkeypatch):
    """Point ``videoinfer_default`` at the local server; clear faults before and after the test."""
    import requests

    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
    requests.delete(f"{server.base_url}/_faults", params={"api_key": API_KEY}, timeout=5).raise_for_status()
    yield server
    requests.delete(f"{server.base_url}/_faults", params={"api_key": API_KEY}, timeout=5)


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    """A short generated video with moving rectangles (real content for the built-in models)."""
    from videoinfer_server.sample import make_sample_video

    path = tmp_path_factory.mktemp("videos") / "sample.mp4"
    make_sample_video(path, seconds=2.0, fps=10.0)
    return path


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory):
    """A second local server whose jobs report "running" for at least 4 s (emulating long jobs)."""
    from videoinfer_server.launch import run_server

    with run_server(tmp_path_factory.mktemp("slow-server"), API_KEY, enable_faults=True, min_job_seconds=4) as running:
        yield running


@pytest.fixture
def slow_conn(slow_server, monkeypatch):
    """Point ``videoinfer_slow`` (and ``videoinfer_default``) at the slow server."""
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_SLOW", connection_json(slow_server.base_url))
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(slow_server.base_url))
    return slow_server

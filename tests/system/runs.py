"""What the scenarios of both deployments share: test videos, jobs, waits for states and runs, the leak scan."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deployment import Deployment, VideoServer
from processes import wait_until

from videoinfer_server.sample import make_sample_video


def sample(folder: Path, name: str) -> Path:
    """A 4-second 10 fps test video named ``name`` (20 frames sampled at ``infer_fps`` 5)."""
    path = folder / name
    make_sample_video(path, seconds=4.0, fps=10.0)
    return path


def jobs_of(server: VideoServer, file_name: str) -> list[dict[str, Any]]:
    """The server's jobs whose input is an upload named ``file_name``."""
    return [job for job in server.jobs() if urlparse(job["input_url"]).path.endswith("/" + file_name)]


def watch_run(d: Deployment, dag_id: str, run_id: str, timeout: float = 600) -> tuple[str, dict[str, set[str]]]:
    """Wait for a run to end, noting every state each task was seen in; return (run state, states seen)."""
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + timeout
    while True:
        for ti in d.task_instances(dag_id, run_id):
            seen.setdefault(ti["task_id"], set()).add(str(ti["state"]))
        state = d.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return state, seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout} s; tasks seen: {seen}")
        time.sleep(0.5)


def wait_for_states(d: Deployment, dag_id: str, run_id: str, wanted: dict[str, str], timeout: float = 300) -> None:
    """Wait until each task of ``wanted`` is in its state (raise if the run ends first)."""

    def reached() -> bool:
        states = {ti["task_id"]: ti["state"] for ti in d.task_instances(dag_id, run_id)}
        if d.run_state(dag_id, run_id) in ("success", "failed"):
            raise AssertionError(f"run {run_id} of {dag_id} ended before {wanted}; task states: {states}")
        return all(states.get(task) == state for task, state in wanted.items())

    wait_until(f"{wanted} in run {run_id} of {dag_id}", reached, timeout)


def wait_for_running_job(server: VideoServer, file_name: str, timeout: float = 300) -> dict[str, Any]:
    """Wait until the job on upload ``file_name`` is running on ``server``; return it."""

    def running() -> dict[str, Any] | None:
        jobs = jobs_of(server, file_name)
        if any(job["state"] in ("succeeded", "failed") for job in jobs):
            raise AssertionError(f"the job on {file_name} ended before the scenario could disturb it: {jobs}")
        return next((job for job in jobs if job["state"] == "running"), None)

    return dict(wait_until(f"a running job on {file_name}", running, timeout))


def status_reads(server: VideoServer, job_id: str) -> int:
    """How many times the job's status was read (``GET /videoinfer``), from the server's access log."""
    text = server.process.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if '"GET /videoinfer?' in line and f"job_id={job_id}" in line)


def key_leaks(d: Deployment, folder: Path) -> None:
    """The API key in no log file of the deployment and no row of a pg_dump of its metadata database."""
    dump = d.pg_dump()
    files = list(d.log_files())
    # The scan sees real content: the scenarios' runs in the dump, their task logs among the files
    # (run it with at least one other scenario).
    assert "COPY public.dag_run " in dump and "manual__" in dump, "the dump holds no DAG run"
    assert any(path.name.startswith("attempt=") for path in files), "no task log to scan"
    leaks = [str(path) for path in files if d.api_key in path.read_text(errors="replace")]
    leaks += [f"pg_dump line {number}" for number, line in enumerate(dump.splitlines(), 1) if d.api_key in line]
    assert not leaks, f"the API key appears in: {leaks}"

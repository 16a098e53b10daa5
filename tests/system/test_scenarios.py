"""Issue 8's and issue 24's scenarios in a real deployment: asserted from Airflow's REST API and the local
servers' job lists and request times.

The triggerer kill runs first, beside only the scenarios that never defer (it would restart any
deferred wait); then the other scenarios run at the same time, each on its own local server where it
disturbs one. The key-leak scan runs when every other scenario has ended.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import requests
from deployment import Deployment
from helpers import CORRUPT_MP4
from processes import kill_task_process, wait_until
from runs import (
    jobs_of,
    key_leaks,
    run_in_phases,
    sample,
    selected_scenarios,
    status_reads,
    wait_for_running_job,
    wait_for_states,
    watch_run,
)

# Fixture setup (the deployment) and the longest scenario both count against one test's time.
pytestmark = pytest.mark.timeout(1500)

OUTAGE_SECONDS = 180
POLL_INTERVAL = 3.0  # the system DAGs' (dags/videoinfer_system_dags.py)
FAULTY_STATUS_READS = 8  # more than the default retry_max_attempts (5) of one status read


def kept_file(uri: str) -> Path:
    """The local path of a ``file://`` Asset URI."""
    return Path(unquote(urlparse(uri).path))


# ----- the scenarios (each runs in a thread; failed asserts surface in its test) -----


def pipeline(d: Deployment, folder: Path) -> None:
    """upload -> submit -> deferrable sensor -> results."""
    server = d.servers["default"]
    video, results = sample(folder, "pipeline.mp4"), folder / "results-pipeline"
    run_id = d.trigger("vs_pipeline", {"video": str(video), "delay": 2.0, "results_dir": str(results)})  # 40 s
    state, seen = watch_run(d, "vs_pipeline", run_id)
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"

    # The sensor was deferred: seen in that state, and the triggerer wrote a log for its trigger.
    assert "deferred" in seen["wait"], f"the sensor was never seen deferred: {seen['wait']}"
    assert ".trigger." in d.task_log("vs_pipeline", run_id, "wait", 1), "no trigger log for the sensor's try"

    job_id = d.xcom("vs_pipeline", run_id, "submit")
    output_url = d.xcom("vs_pipeline", run_id, "wait")
    assert output_url.startswith(f"{server.base_url}/results/{job_id}?"), output_url
    jobs = jobs_of(server, video.name)
    assert [(job["job_id"], job["status"]) for job in jobs] == [(job_id, 0)], jobs

    events = d.asset_events("vs_pipeline", run_id)
    assert [event["source_task_id"] for event in events] == ["results"], events
    kept = kept_file(events[0]["uri"])
    assert kept.is_relative_to(results) and kept.is_file(), f"the Asset {events[0]['uri']} names no kept file"
    served = requests.get(output_url, timeout=60)
    served.raise_for_status()
    assert kept.read_bytes() == served.content, f"{kept} differs from the job's result file"
    summary = d.xcom("vs_pipeline", run_id, "results")
    assert "slow-test" in json.dumps(summary), summary


def folder_example(d: Deployment, folder: Path) -> None:
    """The folder example over five videos, one corrupt: four chains succeed, the corrupt one fails alone."""
    server = d.servers["default"]
    videos = folder / "folder-videos"
    videos.mkdir()
    good = [sample(videos, f"folder-good-{index}.mp4").name for index in range(1, 5)]
    (videos / "folder-corrupt.mp4").write_bytes(CORRUPT_MP4)
    results = folder / "results-folder"
    run_id = d.trigger("videoinfer_folder", {"source": videos.as_uri() + "/", "results_dir": results.as_uri()})
    state, seen = watch_run(d, "videoinfer_folder", run_id)

    jobs = {name: jobs_of(server, name) for name in [*good, "folder-corrupt.mp4"]}
    assert all(len(found) == 1 for found in jobs.values()), f"not one job per video: {jobs}"
    assert [jobs[name][0]["status"] for name in good] == [0, 0, 0, 0], jobs
    assert jobs["folder-corrupt.mp4"][0]["status"] == 3, jobs["folder-corrupt.mp4"]

    instances = d.task_instances("videoinfer_folder", run_id)
    summary = [(ti["task_id"], ti["map_index"], ti["rendered_map_index"], ti["state"]) for ti in instances]
    # Every task instance that did not succeed belongs to the corrupt video's chain: the map index
    # of the tasks labelled with its name (a task that never ran has no label, only its index).
    corrupt = {ti["map_index"] for ti in instances if "folder-corrupt" in (ti["rendered_map_index"] or "")}
    assert len(corrupt) == 1, f"the mapped tasks are not labelled by video name: {summary}"
    bad = [ti for ti in instances if ti["state"] != "success"]
    assert bad, f"run {run_id} ended {state} and nothing failed: {summary}"
    assert all(ti["map_index"] in corrupt for ti in bad), f"a failure outside the corrupt video's chain: {summary}"
    # The corrupt chain failed with the job's status (3: not a readable video).
    failed = [ti for ti in bad if ti["state"] == "failed"]
    assert failed, summary
    logs = [d.task_log("videoinfer_folder", run_id, ti["task_id"], ti["try_number"], ti["map_index"]) for ti in failed]
    assert any("status 3" in log for log in logs), "no failed task names the job's status 3"
    # The four good chains kept their results.
    kept = [ti for ti in instances if ti["task_id"].split(".")[-1] == "results" and ti["state"] == "success"]
    labels = sorted(ti["rendered_map_index"] or "" for ti in kept)
    assert len(kept) == 4 and all(any(name.removesuffix(".mp4") in label for label in labels) for name in good), (
        f"results kept for {labels}; want the four good videos: {summary}"
    )
    assert len(list(results.rglob("*.json"))) == 4, sorted(map(str, results.rglob("*")))


def triggerer_kill(d: Deployment, folder: Path) -> None:
    """Three waits deferred; the triggerer killed with kill -9 and restarted: all succeed, no extra job."""
    server = d.servers["default"]
    video = sample(folder, "three-waits.mp4")
    run_id = d.trigger("vs_three_waits", {"video": str(video), "delay": 3.0})  # 60 s jobs
    waits = {f"wait_{index}": "deferred" for index in range(3)}
    wait_for_states(d, "vs_three_waits", run_id, waits)
    before = {job["job_id"]: job["state"] for job in jobs_of(server, video.name)}
    assert len(before) == 3 and set(before.values()) <= {"queued", "running"}, f"jobs at the kill: {before}"
    # The triggerer runs the three triggers: each job's status read again after the sensor's own read.
    wait_until("the triggers to poll", lambda: all(status_reads(server, job_id) >= 2 for job_id in before), 120)

    d.processes["triggerer"].kill9()
    time.sleep(3)
    d.restart("triggerer")

    state, seen = watch_run(d, "vs_three_waits", run_id)
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    after = jobs_of(server, video.name)
    assert sorted(job["job_id"] for job in after) == sorted(before), f"jobs before the kill {before}, after {after}"
    assert all(job["status"] == 0 for job in after), after
    outputs = {d.xcom("vs_three_waits", run_id, task) for task in waits}
    assert {url.split("/results/")[1].split("?")[0] for url in outputs} == set(before), outputs


def worker_kill(d: Deployment, folder: Path) -> None:
    """A task killed with kill -9 while it waits in the worker; 503s on its retry's first status reads."""
    server = d.servers["faults"]
    video = sample(folder, "worker-wait.mp4")
    run_id = d.trigger("vs_worker_wait", {"video": str(video), "delay": 4.0})  # an 80 s job
    wait_for_states(d, "vs_worker_wait", run_id, {"submit_and_wait": "running"})
    job = wait_for_running_job(server, video.name)
    # At least two polls of the job by the task, in the worker.
    wait_until("two status reads", lambda: status_reads(server, job["job_id"]) >= 2, 120)

    ti = d.task_instance("vs_worker_wait", run_id, "submit_and_wait")
    assert ti["state"] == "running" and ti["pid"], ti
    server.inject_fault("status", "status", count=FAULTY_STATUS_READS, status_code=503)
    kill_task_process(ti["pid"], d.processes["scheduler"])  # the task's process, run by the scheduler's executor

    state, seen = watch_run(d, "vs_worker_wait", run_id)
    ti = d.task_instance("vs_worker_wait", run_id, "submit_and_wait")
    jobs = jobs_of(server, video.name)
    assert len(jobs) == 1, f"{len(jobs)} jobs for one task: {jobs}"
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert ti["try_number"] >= 2, f"the kill did not cause a retry: {ti}"
    injected = d.processes["server-faults"].log_path.read_text().count("injecting fault status into GET status")
    assert injected == FAULTY_STATUS_READS, f"{injected} of {FAULTY_STATUS_READS} 503s were served"


def server_restart(d: Deployment, folder: Path) -> None:
    """The local server killed with kill -9 mid-job and restarted: success, no extra job."""
    server = d.servers["restart"]
    video, results = sample(folder, "server-restart.mp4"), folder / "results-restart"
    run_id = d.trigger("vs_server_restart", {"video": str(video), "delay": 3.0, "results_dir": str(results)})
    wait_for_states(d, "vs_server_restart", run_id, {"wait": "deferred"})
    job = wait_for_running_job(server, video.name)

    server.process.kill9()
    server.start()

    state, seen = watch_run(d, "vs_server_restart", run_id)
    jobs = jobs_of(server, video.name)
    assert [(found["job_id"], found["status"]) for found in jobs] == [(job["job_id"], 0)], jobs
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"


def outage(d: Deployment, folder: Path) -> None:
    """A three-minute outage of the service during a deferred wait, default connection settings."""
    server = d.servers["outage"]
    video, results = sample(folder, "outage.mp4"), folder / "results-outage"
    run_id = d.trigger("vs_outage", {"video": str(video), "delay": 3.0, "results_dir": str(results)})  # 60 s
    wait_for_states(d, "vs_outage", run_id, {"wait": "deferred"})
    wait_for_running_job(server, video.name)

    server.process.stop()
    stopped = time.monotonic()
    while time.monotonic() - stopped < OUTAGE_SECONDS:
        time.sleep(5)
    during = {ti["task_id"]: ti["state"] for ti in d.task_instances("vs_outage", run_id)}
    server.start()

    state, seen = watch_run(d, "vs_outage", run_id)
    jobs = server.jobs()
    assert state == "success", f"run {run_id} ended {state}; task states at the end of the outage {during}; seen {seen}"
    assert [found["status"] for found in jobs] == [0], jobs


# ----- issue 24's promises: never a second paid job, only a definite answer ends a wait -----

TRANSIENT_STATUSES = (520, 522, 524, 529, 408)


def injected(d: Deployment, server_name: str, action: str, method: str, endpoint: str) -> int:
    """How many faults of ``action`` the local server ``server_name`` served to ``method endpoint``."""
    log = d.processes[f"server-{server_name}"].log_path.read_text(errors="replace")
    return log.count(f"injecting fault {action} into {method} {endpoint}")


def lost_answer(d: Deployment, folder: Path) -> None:
    """The job is created, then its answer lost: the task (retries=2) fails at once naming the attempt,
    and the server has exactly one job."""
    server = d.servers["faults"]
    video = sample(folder, "lost-answer.mp4")
    server.inject_fault("submit", "lose_answer")
    run_id = d.trigger("vs_lost_answer", {"video": str(video)})
    state, seen = watch_run(d, "vs_lost_answer", run_id)

    jobs = jobs_of(server, video.name)
    assert len(jobs) == 1, f"{len(jobs)} jobs for one task whose submission's answer was lost: {jobs}"
    assert injected(d, "faults", "lose_answer", "POST", "submit") == 1
    assert state == "failed", f"run {run_id} ended {state}; tasks seen in {seen}"
    ti = d.task_instance("vs_lost_answer", run_id, "submit")
    assert ti["state"] == "failed" and ti["try_number"] == 1, f"the task used its retries: {ti}"
    log = " ".join(d.task_log("vs_lost_answer", run_id, "submit", 1).split())
    assert "VideoInferSubmissionUnknownError" in log and "got no answer" in log, log[-3000:]
    assert re.search(r"job submission of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", log), log[-3000:]
    assert "dashboard" in log and "clear this task" in log and "resubmit_unknown_outcome=True" in log, log[-3000:]


def clear_after_failure(d: Deployment, folder: Path) -> None:
    """A job fails: the task fails without its retries; a clear of the task pays for exactly one new job."""
    server = d.servers["restart"]
    video = sample(folder, "clear-after-failure.mp4")
    run_id = d.trigger("vs_clear_after_failure", {"video": str(video), "delay": 0.5})  # 10 s jobs
    first = wait_for_running_job(server, video.name)
    server.fail_job(first["job_id"], 3, "injected failure: fix the input, then clear the task")
    state, seen = watch_run(d, "vs_clear_after_failure", run_id)
    assert state == "failed", f"run {run_id} ended {state} although its job failed; tasks seen in {seen}"
    ti = d.task_instance("vs_clear_after_failure", run_id, "submit_and_wait")
    assert ti["try_number"] == 1, f"a failed job's task used its retries: {ti}"
    assert [(job["job_id"], job["status"]) for job in jobs_of(server, video.name)] == [(first["job_id"], 3)]

    d.clear("vs_clear_after_failure", run_id, ["submit_and_wait"])
    wait_until(
        "the cleared task to run again",
        lambda: d.task_instance("vs_clear_after_failure", run_id, "submit_and_wait")["try_number"] >= 2,
        300,
    )
    state, seen = watch_run(d, "vs_clear_after_failure", run_id)
    jobs = jobs_of(server, video.name)
    assert len(jobs) == 2 and jobs[0]["job_id"] == first["job_id"], f"not one new job after the clear: {jobs}"
    assert [job["status"] for job in jobs] == [3, 0], jobs
    assert state == "success", f"run {run_id} ended {state} after the clear; tasks seen in {seen}"


def transient_statuses(d: Deployment, folder: Path) -> None:
    """520, 522, 524, 529 and 408 on the status reads of a deferred wait: ridden out, success, one job."""
    server = d.servers["transient"]
    video, results = sample(folder, "transient.mp4"), folder / "results-transient"
    run_id = d.trigger("vs_transient_statuses", {"video": str(video), "delay": 2.0, "results_dir": str(results)})
    wait_for_states(d, "vs_transient_statuses", run_id, {"wait": "deferred"})
    for status in TRANSIENT_STATUSES:  # served in this order to the trigger's next five polls
        server.inject_fault("status", "status", status_code=status)

    state, seen = watch_run(d, "vs_transient_statuses", run_id)
    assert injected(d, "transient", "status", "GET", "status") == len(TRANSIENT_STATUSES), "a fault was not served"
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert d.task_instance("vs_transient_statuses", run_id, "wait")["try_number"] == 1
    assert [job["status"] for job in jobs_of(server, video.name)] == [0]


def pacing(d: Deployment, folder: Path) -> None:
    """429s during a deferred wait (three without Retry-After, then Retry-After: 0): no two status
    requests closer than the poll interval, from the server's own arrival times."""
    server = d.servers["pacing"]
    video, results = sample(folder, "pacing.mp4"), folder / "results-pacing"
    run_id = d.trigger("vs_pacing", {"video": str(video), "delay": 2.0, "results_dir": str(results)})
    wait_for_states(d, "vs_pacing", run_id, {"wait": "deferred"})
    server.inject_fault("status", "status", count=3, status_code=429)
    server.inject_fault("status", "status", count=1, status_code=429, retry_after=0)

    state, seen = watch_run(d, "vs_pacing", run_id)
    assert injected(d, "pacing", "status", "GET", "status") == 4, "a 429 was not served"
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert [job["status"] for job in jobs_of(server, video.name)] == [0]
    times = server.request_times("status")  # this server's status reads are this job's alone
    gaps = [later - earlier for earlier, later in pairwise(times)]
    shown = [f"{gap:.3f}" for gap in gaps]
    assert len(times) >= 6 and min(gaps) >= POLL_INTERVAL, f"status reads not {POLL_INTERVAL} s apart: {shown}"


# ----- running them -----

# The first phase's other scenarios never defer, so the triggerer kill cannot disturb them; each uses a
# server the next phase's scenarios use again, once it has ended.
FIRST = {"triggerer_kill": triggerer_kill, "lost_answer": lost_answer, "clear_after_failure": clear_after_failure}
CONCURRENT = {
    "pipeline": pipeline,
    "folder_example": folder_example,
    "worker_kill": worker_kill,
    "server_restart": server_restart,
    "outage": outage,
    "transient_statuses": transient_statuses,
    "pacing": pacing,
}


PHASES = [FIRST, CONCURRENT, {"key_leaks": key_leaks}]


@pytest.fixture(scope="module")
def scenarios(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Future[None]]]:
    """Start the selected scenarios: the triggerer kill beside those that never defer, then the others at
    once, then the leak scan."""
    folder = tmp_path_factory.mktemp("system-scenarios")
    with run_in_phases(deployment, folder, PHASES, selected_scenarios(request)) as futures:
        yield futures


def scenario_test(name: str, *dag_ids: str) -> Callable[[dict[str, Future[None]]], None]:
    """A test that waits for scenario ``name`` and fails with its error; its report shows ``dag_ids``' logs."""

    def test(scenarios: dict[str, Future[None]], deployment: Deployment) -> None:
        scenarios[name].result()

    test.__name__ = f"test_{name}"
    test.__doc__ = (FIRST | CONCURRENT | {"key_leaks": key_leaks})[name].__doc__
    test.dag_ids = dag_ids  # type: ignore[attr-defined]
    return test


test_triggerer_kill = scenario_test("triggerer_kill", "vs_three_waits")
test_pipeline = scenario_test("pipeline", "vs_pipeline")
test_folder_example = scenario_test("folder_example", "videoinfer_folder")
test_worker_kill = scenario_test("worker_kill", "vs_worker_wait")
test_server_restart = scenario_test("server_restart", "vs_server_restart")
test_outage = scenario_test("outage", "vs_outage")
test_lost_answer = scenario_test("lost_answer", "vs_lost_answer")
test_clear_after_failure = scenario_test("clear_after_failure", "vs_clear_after_failure")
test_transient_statuses = scenario_test("transient_statuses", "vs_transient_statuses")
test_pacing = scenario_test("pacing", "vs_pacing")
test_key_leaks = scenario_test("key_leaks")

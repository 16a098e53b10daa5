"""The CeleryExecutor for real: two Celery workers and two triggerers that share no disk, S3 for everything.

The deployment (``celery_deployment``): Postgres, Redis (the broker), moto's S3 server, Airflow's
api-server, scheduler and dag-processor, two triggerers and two Celery workers, each with an
Airflow home, working folder, ``TMPDIR`` and hostname of its own, and the task and trigger logs
on S3. Videos are read from S3 (the folder example's by the local server, through presigned URLs;
the Batch Processing scenarios' staged by reference) and results written to S3. The folder example,
the triggerer kill and the three Batch Processing scenarios (the batch example, a batch task's
process killed mid-wait, a batch task marked failed) run at the same time (the deferred waits may
move to the surviving triggerer too; the batch tasks that are disturbed wait in their worker); then
the worker kill, alone (it would kill the other scenarios' tasks on its worker); then the leak scan.
The scenarios assert from Airflow's REST API, the local server's ``GET /_jobs``, its Batch
Processing job list, ``GET /_requests`` and its access log, and the buckets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import requests
from deployment import Deployment, VideoServer
from helpers import CORRUPT_MP4, signature_leaks
from object_store import CONN_ID
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

from videoinfer_contract import batch as wire

pytestmark = pytest.mark.timeout(900)

WORKERS = {"worker-1", "worker-2"}
TRIGGERERS = {"triggerer-1", "triggerer-2"}


def put_video(d: Deployment, folder: Path, key: str, corrupt: bool = False) -> str:
    """Write a test video (or a corrupt one) to the ``videos`` bucket; return its ``s3://moto_s3@...`` URI."""
    assert d.s3 is not None
    name = key.rsplit("/", 1)[-1]
    body = CORRUPT_MP4 if corrupt else sample(folder, name).read_bytes()
    d.s3.client().put_object(Bucket="videos", Key=key, Body=body)
    return f"s3://{CONN_ID}@videos/{key}"


def uploaded_log(d: Deployment, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    """The log of one try, read through the REST API once its worker has uploaded it to S3 (at the try's end,
    shortly after the task instance's state changed)."""
    assert d.s3 is not None
    mapped = f"map_index={map_index}/" if map_index >= 0 else ""
    key = f"logs/dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{mapped}attempt={try_number}.log"
    # A deferred try also has its trigger's log, ``<key>.trigger.<n>.log``, under the same prefix.
    wait_until(f"the log {key} on S3", lambda: d.s3 is not None and key in d.s3.keys("airflow-logs", key), 120)
    return d.task_log(dag_id, run_id, task_id, try_number, map_index)


def hostnames(instances: list[dict[str, Any]]) -> set[str]:
    """The hostnames that ran the task instances (the workers', through the deployment's hostname_callable)."""
    return {str(ti["hostname"]) for ti in instances if ti.get("hostname")}


def triggerer_of(ti: dict[str, Any]) -> str | None:
    """The hostname of the triggerer that holds a deferred task instance's trigger, if one does."""
    job = ti.get("triggerer_job") or {}
    return job.get("hostname")


# ----- the scenarios (each runs in a thread; failed asserts surface in its test) -----


def folder_example(d: Deployment, folder: Path) -> None:
    """The folder example over six S3 videos, one corrupt: none uploaded (the server reads them through
    presigned URLs), five results in the bucket, the corrupt chain fails alone, one job per video, tasks
    on both workers, the failure's log read from S3."""
    assert d.s3 is not None
    server = d.servers["default"]
    good = [f"celery-good-{n}.mp4" for n in range(1, 6)]
    for name in good:
        put_video(d, folder, f"folder/{name}")
    put_video(d, folder, "folder/celery-corrupt.mp4", corrupt=True)
    source, results = f"s3://{CONN_ID}@videos/folder/", f"s3://{CONN_ID}@results/folder"
    run_id = d.trigger("videoinfer_folder", {"source": source, "results_dir": results})
    state, seen = watch_run(d, "videoinfer_folder", run_id)

    jobs = {name: jobs_of(server, name) for name in [*good, "celery-corrupt.mp4"]}
    assert all(len(found) == 1 for found in jobs.values()), f"not one job per video: {jobs}"
    # No upload: the server read every video from the bucket through a presigned URL (signature redacted).
    inputs = [found[0]["input_url"] for found in jobs.values()]
    assert all(url.startswith(f"{d.s3.url}/videos/folder/") and "Signature=***" in url for url in inputs), inputs
    assert [jobs[name][0]["status"] for name in good] == [0] * 5, jobs
    assert jobs["celery-corrupt.mp4"][0]["status"] == 3, jobs["celery-corrupt.mp4"]

    instances = d.task_instances("videoinfer_folder", run_id)
    summary = [(ti["task_id"], ti["rendered_map_index"], ti["state"], ti["hostname"]) for ti in instances]
    assert state == "failed", f"run {run_id} ended {state}; tasks seen in {seen}"
    corrupt = {ti["map_index"] for ti in instances if "celery-corrupt" in (ti["rendered_map_index"] or "")}
    assert len(corrupt) == 1, f"the mapped tasks are not labelled by video name: {summary}"
    bad = [ti for ti in instances if ti["state"] != "success"]
    assert bad and all(ti["map_index"] in corrupt for ti in bad), f"a failure outside the corrupt chain: {summary}"
    # The tasks ran on both workers, and only there.
    ran_on = hostnames(instances)
    assert ran_on == WORKERS, f"tasks ran on {ran_on}, want both workers {sorted(WORKERS)}: {summary}"

    # Every good video's result is in the bucket, byte for byte the job's result file.
    kept = [key for key in d.s3.keys("results", "folder/") if key.endswith("/result.json")]
    assert len(kept) == 5 and all(any(f"/{name}/result.json" in key for key in kept) for name in good), kept
    for ti in instances:
        if ti["task_id"] == "video.wait" and ti["state"] == "success":
            output_url = d.xcom("videoinfer_folder", run_id, "video.wait", map_index=ti["map_index"])
            name = str(ti["rendered_map_index"])
            key = next(key for key in kept if f"/{name}/" in key)
            served = requests.get(output_url, timeout=60)
            served.raise_for_status()
            assert d.s3.read("results", key) == served.content, f"{key} differs from the job's result file"

    # The failed task's log, which its worker wrote to S3, names the job's status.
    failed = [ti for ti in bad if ti["state"] == "failed"]
    # It failed at its first try although the example allows two retries: no retry pays for a failed job again.
    assert failed and all(ti["try_number"] == 1 for ti in failed), summary
    logs = [
        uploaded_log(d, "videoinfer_folder", run_id, ti["task_id"], ti["try_number"], ti["map_index"]) for ti in failed
    ]
    assert any("status 3" in log for log in logs), f"no failed task's log names the job's status 3: {logs}"


def worker_kill(d: Deployment, folder: Path) -> None:
    """The worker running a task that waits in it (not deferrable) killed with kill -9 and left dead:
    the retry runs on the other worker and reconnects to the job; one job."""
    server = d.servers["faults"]
    video = put_video(d, folder, "celery-worker-wait.mp4")
    run_id = d.trigger("vs_worker_wait", {"video": video, "delay": 4.0})  # an 80 s job
    wait_for_states(d, "vs_worker_wait", run_id, {"submit_and_wait": "running"})
    job = wait_for_running_job(server, "celery-worker-wait.mp4")
    # Two status reads: the task is waiting for the job, in the worker.
    wait_until(f"two status reads of job {job['job_id']}", lambda: status_reads(server, job["job_id"]) >= 2, 120)
    ti = d.task_instance("vs_worker_wait", run_id, "submit_and_wait")
    assert ti["state"] == "running" and ti["hostname"] in WORKERS, ti
    victim = str(ti["hostname"])

    d.processes[victim].kill9()

    state, seen = watch_run(d, "vs_worker_wait", run_id)
    ti = d.task_instance("vs_worker_wait", run_id, "submit_and_wait")
    jobs = server.jobs()
    assert [(found["job_id"], found["status"]) for found in jobs] == [(job["job_id"], 0)], f"not one job: {jobs}"
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert ti["try_number"] >= 2, f"the kill did not cause a retry: {ti}"
    assert ti["hostname"] == (WORKERS - {victim}).pop(), f"the retry ran on {ti['hostname']}, not the live worker"
    log = uploaded_log(d, "vs_worker_wait", run_id, "submit_and_wait", ti["try_number"])
    assert f"Reconnecting to job {job['job_id']}" in log, f"the retry did not reconnect: {log[-3000:]}"
    assert not d.processes[victim].alive(), f"{victim} came back"


def triggerer_kill(d: Deployment, folder: Path) -> None:
    """Three deferred waits; the triggerer holding them killed with kill -9 and left dead: the other
    triggerer takes them over and finishes them; no extra job."""
    server = d.servers["default"]
    video = put_video(d, folder, "celery-three-waits.mp4")
    run_id = d.trigger("vs_three_waits", {"video": video, "delay": 3.0})  # 60 s jobs
    waits = [f"wait_{index}" for index in range(3)]
    wait_for_states(d, "vs_three_waits", run_id, dict.fromkeys(waits, "deferred"))
    before = {job["job_id"]: job for job in jobs_of(server, "celery-three-waits.mp4")}
    assert len(before) == 3 and all(job["status"] == 1 for job in before.values()), f"jobs at the kill: {before}"

    def held() -> dict[str, str] | None:
        """Which triggerer holds each wait, once every trigger has read its job's status (the sensor read it
        once before deferring)."""
        instances = [d.task_instance("vs_three_waits", run_id, task) for task in waits]
        holders = {ti["task_id"]: triggerer_of(ti) for ti in instances}
        polled = all(status_reads(server, job_id) >= 2 for job_id in before)
        return holders if polled and all(holders.values()) else None  # type: ignore[return-value]

    holders = wait_until("the triggers to run", held, 120)
    victim = Counter(holders.values()).most_common(1)[0][0]
    survivor = (TRIGGERERS - {victim}).pop()
    moved = sorted(task for task, holder in holders.items() if holder == victim)

    d.processes[victim].kill9()

    # Each wait the victim held is seen held by the survivor, then the run ends.
    taken: set[str] = set()

    def over() -> str | None:
        for task in moved:
            if triggerer_of(d.task_instance("vs_three_waits", run_id, task)) == survivor:
                taken.add(task)
        state = d.run_state("vs_three_waits", run_id)
        return state if state in ("success", "failed") else None

    state = wait_until(f"run {run_id} of vs_three_waits to end", over, 600, 1)
    after = jobs_of(server, "celery-three-waits.mp4")
    assert state == "success", f"run {run_id} ended {state}"
    assert sorted(taken) == moved, f"{survivor} was seen holding {sorted(taken)} of the killed {victim}'s {moved}"
    assert sorted(job["job_id"] for job in after) == sorted(before), f"jobs before the kill {before}, after {after}"
    assert all(job["status"] == 0 for job in after), after
    outputs = {d.xcom("vs_three_waits", run_id, task) for task in waits}
    assert {url.split("/results/")[1].split("?")[0] for url in outputs} == set(before), outputs
    assert not d.processes[victim].alive(), f"{victim} came back"


def key_leaks_with_s3(d: Deployment, folder: Path) -> None:
    """The API key in no log file of any process or home, no task or trigger log on S3, no row of a pg_dump."""
    assert d.s3 is not None
    key_leaks(d, folder)
    logs = d.s3.keys("airflow-logs")
    assert any("/attempt=" in key for key in logs), "no task log on S3 to scan"
    leaks = [key for key in logs if d.api_key.encode() in d.s3.read("airflow-logs", key)]
    assert not leaks, f"the API key appears in these logs on S3: {leaks}"


# ----- Batch Processing -----

#: The local server's workspace (``GET /``), in the Batch Processing paths.
WORKSPACE = "local"


def batch_jobs(server: VideoServer, dag_id: str) -> list[wire.BatchJob]:
    """The server's Batch Processing jobs of ``dag_id``'s job task (named ``<dag_id>.run``), every page read."""
    path = wire.endpoint_path(wire.LIST_JOBS_ENDPOINT, workspace=WORKSPACE)
    jobs: list[wire.BatchJob] = []
    token: str | None = None
    while True:
        params = {"api_key": server.api_key, "nextPageToken": token}
        answer = requests.get(server.base_url + path, params=params, timeout=10)
        answer.raise_for_status()
        page = wire.parse_jobs_page(answer.json())
        jobs += [job for job in page.items if job.name == f"{dag_id}.run"]
        if (token := page.next_page_token) is None:
            return jobs


def batch_job(server: VideoServer, job_id: str) -> wire.BatchJob:
    """One Batch Processing job of the server."""
    path = wire.endpoint_path(wire.JOB_METADATA_ENDPOINT, workspace=WORKSPACE, job_id=job_id)
    answer = requests.get(server.base_url + path, params={"api_key": server.api_key}, timeout=10)
    answer.raise_for_status()
    return wire.parse_job(answer.json())


def batch_requests(server: VideoServer, endpoint: str) -> int:
    """How many requests the server received at ``endpoint`` (a name of its fault injection), from ``/_requests``."""
    answer = requests.get(f"{server.base_url}/_requests", params={"api_key": server.api_key}, timeout=10)
    answer.raise_for_status()
    return int(answer.json()["requests"].get(endpoint, 0))


def job_reads(server: VideoServer, job_id: str) -> int:
    """How many times the existing job was read (``GET .../jobs/{job_id}`` answered 200), from the server's
    access log (the reads before its creation are answered 404)."""
    path = wire.endpoint_path(wire.JOB_METADATA_ENDPOINT, workspace=WORKSPACE, job_id=job_id)
    text = server.process.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if f'"GET {path}?' in line and '" 200' in line)


def wait_for_waiting_batch_task(d: Deployment, server: VideoServer, dag_id: str, run_id: str) -> dict[str, Any]:
    """Wait until the run's job task waits in its worker for a running job (two reads of the job after its
    creation); return the task instance, with the job's id under ``job_id``."""
    wait_for_states(d, dag_id, run_id, {"run": "running"})
    job_id = str(wait_until(f"the job id of {dag_id}'s run task", lambda: d.xcom(dag_id, run_id, "run", "job_id"), 120))

    def waiting() -> bool:
        job = batch_job(server, job_id)
        if job.is_terminal:
            raise AssertionError(f"batch job {job_id} ended before the scenario could disturb it: {job}")
        return job.state is wire.BatchJobState.RUNNING and job_reads(server, job_id) >= 2

    wait_until(f"batch job {job_id} running and read twice by its task", waiting, 180)
    ti = d.task_instance(dag_id, run_id, "run")
    assert ti["state"] == "running" and ti["hostname"] in WORKERS and ti["pid"], ti
    return {**ti, "job_id": job_id}


def batch_example(d: Deployment, folder: Path) -> None:
    """The Batch Processing example on two S3 videos: staged by reference (nothing uploaded), one capped job,
    its results kept in the bucket with their manifest, the summary as XCom; no signed URL in its logs."""
    assert d.s3 is not None
    server = d.servers["default"]
    names = ["celery-batch-1.mp4", "celery-batch-2.mp4"]
    for name in names:
        put_video(d, folder, f"batch/{name}")
    uploads = batch_requests(server, "staging_upload_video")
    conf = {
        "source": f"s3://{CONN_ID}@videos/batch/",
        "results_dir": f"s3://{CONN_ID}@results/batch",
        "max_runtime_seconds": 600,
    }
    run_id = d.trigger("videoinfer_batch", conf)
    state, seen = watch_run(d, "videoinfer_batch", run_id)
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"

    job_id = d.xcom("videoinfer_batch", run_id, "run")
    jobs = batch_jobs(server, "videoinfer_batch")
    assert [(job.job_id, job.state) for job in jobs] == [(job_id, wire.BatchJobState.SUCCEEDED)], jobs
    assert jobs[0].definition["processingTimeoutSeconds"] == 600, jobs[0].definition
    # Staged by reference: the server read the videos from the bucket, nothing went through the workers.
    assert batch_requests(server, "staging_upload_video") == uploads, "a video was uploaded, not referenced"
    assert batch_requests(server, "staging_video_references") >= 1, "no video reference was registered"

    summary = d.xcom("videoinfer_batch", run_id, "report")
    assert summary["job_id"] == job_id and summary["videos"] == 2 and summary["rows"] > 0, summary
    kept = d.s3.keys("results", f"batch/{job_id}/")
    assert f"batch/{job_id}/_MANIFEST.json" in kept, kept
    assert json.loads(d.s3.read("results", f"batch/{job_id}/_MANIFEST.json")) == summary
    assert summary["files"] == len(kept) - 1, (summary, kept)
    events = d.asset_events("videoinfer_batch", run_id)
    assert [event["source_task_id"] for event in events] == ["results"], events

    for ti in d.task_instances("videoinfer_batch", run_id):
        log = uploaded_log(d, "videoinfer_batch", run_id, ti["task_id"], ti["try_number"])
        assert not signature_leaks(log), f"a signed URL in the log of {ti['task_id']}: {signature_leaks(log)}"


def batch_worker_kill(d: Deployment, folder: Path) -> None:
    """A batch job task's process killed with kill -9 while it waits in its Celery worker: the retry
    reconnects to the job by its id, which was created once, and the task succeeds."""
    server = d.servers["faults"]
    put_video(d, folder, "batch-worker/celery-batch-wait.mp4")
    source = f"s3://{CONN_ID}@videos/batch-worker/"
    run_id = d.trigger("vs_batch_worker_wait", {"source": source, "delay": 3.0})  # 20 frames: a 60 s job
    ti = wait_for_waiting_batch_task(d, server, "vs_batch_worker_wait", run_id)
    creations = batch_requests(server, "batch_create_job")

    kill_task_process(ti["pid"], d.processes[ti["hostname"]])

    state, seen = watch_run(d, "vs_batch_worker_wait", run_id)
    after = d.task_instance("vs_batch_worker_wait", run_id, "run")
    jobs = batch_jobs(server, "vs_batch_worker_wait")
    assert state == "success", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert [(job.job_id, job.state) for job in jobs] == [(ti["job_id"], wire.BatchJobState.SUCCEEDED)], jobs
    assert batch_requests(server, "batch_create_job") == creations, "the retry created the job again"
    assert after["try_number"] >= 2, f"the kill did not cause a retry: {after}"
    log = uploaded_log(d, "vs_batch_worker_wait", run_id, "run", after["try_number"])
    assert f"A previous try of this task created batch job {ti['job_id']}: reading it." in log, log[-3000:]
    assert f"Reconnecting to batch job {ti['job_id']} (running)" in log, f"the retry did not reconnect: {log[-3000:]}"


def batch_abort(d: Deployment, folder: Path) -> None:
    """A batch job task marked failed through the REST API while it waits: Airflow kills it, the task aborts
    its job at the server and its log says so with the job's id."""
    server = d.servers["default"]
    put_video(d, folder, "batch-abort/celery-batch-abort.mp4")
    source = f"s3://{CONN_ID}@videos/batch-abort/"
    run_id = d.trigger("vs_batch_abort", {"source": source, "delay": 3.0})  # a 60 s job
    ti = wait_for_waiting_batch_task(d, server, "vs_batch_abort", run_id)
    aborts = batch_requests(server, "batch_abort")

    path = f"/dags/vs_batch_abort/dagRuns/{run_id}/taskInstances/run"
    d.api("PATCH", path, json={"new_state": "failed"})

    job_id = ti["job_id"]
    job = wait_until(
        f"batch job {job_id} aborted",
        lambda: (found := batch_job(server, job_id)).is_terminal and found,
        120,
    )
    assert job.state is wire.BatchJobState.ABORTED, f"batch job {job_id} ended {job.state}, not aborted: {job}"
    assert batch_requests(server, "batch_abort") == aborts + 1, "not one abort request"
    state, seen = watch_run(d, "vs_batch_abort", run_id)
    after = d.task_instance("vs_batch_abort", run_id, "run")
    assert state == "failed" and after["state"] == "failed", f"run {run_id} ended {state}; tasks seen in {seen}"
    assert after["try_number"] == 1, f"the task was retried: {after}"
    assert [job.job_id for job in batch_jobs(server, "vs_batch_abort")] == [job_id]
    log = uploaded_log(d, "vs_batch_abort", run_id, "run", 1)
    assert f"Aborted batch job {job_id}: task run was killed" in log, f"the log does not say so: {log[-3000:]}"


# ----- running them -----

PHASES: list[dict[str, Callable[[Deployment, Path], None]]] = [
    {
        "folder_example": folder_example,
        "triggerer_kill": triggerer_kill,
        "batch_example": batch_example,
        "batch_worker_kill": batch_worker_kill,
        "batch_abort": batch_abort,
    },
    {"worker_kill": worker_kill},
    {"key_leaks": key_leaks_with_s3},
]


@pytest.fixture(scope="module")
def celery_scenarios(
    celery_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Future[None]]]:
    """Start the selected scenarios: the folder example, the triggerer kill and the batch scenarios, then the
    worker kill, then the scan."""
    folder = tmp_path_factory.mktemp("celery-scenarios")
    with run_in_phases(celery_deployment, folder, PHASES, selected_scenarios(request), "celery ") as futures:
        yield futures


def scenario_test(name: str, *dag_ids: str) -> Callable[[dict[str, Future[None]], Deployment], None]:
    """A test that waits for scenario ``name`` and fails with its error; its report shows ``dag_ids``' logs."""

    def test(celery_scenarios: dict[str, Future[None]], celery_deployment: Deployment) -> None:
        celery_scenarios[name].result()

    test.__name__ = f"test_{name}"
    test.__doc__ = next(phase[name] for phase in PHASES if name in phase).__doc__
    test.dag_ids = dag_ids  # type: ignore[attr-defined]
    return test


test_folder_example = scenario_test("folder_example", "videoinfer_folder")
test_triggerer_kill = scenario_test("triggerer_kill", "vs_three_waits")
test_worker_kill = scenario_test("worker_kill", "vs_worker_wait")
test_batch_example = scenario_test("batch_example", "videoinfer_batch")
test_batch_worker_kill = scenario_test("batch_worker_kill", "vs_batch_worker_wait")
test_batch_abort = scenario_test("batch_abort", "vs_batch_abort")
test_key_leaks = scenario_test("key_leaks")

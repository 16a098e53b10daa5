"""The Batch Processing run operator on the local server: created once, reconnected, aborted when stopped, capped."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest
import requests
from helpers import API_KEY, FakeTaskStateStore, clear_faults, connection_json, inject_fault

from airflow_provider_videoinfer.exceptions import (
    VideoInferBatchJobFailedFatalError,
    VideoInferBatchTimeoutError,
)
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchHook
from airflow_provider_videoinfer.operators.batch import VideoInferBatchJobOperator
from airflow_provider_videoinfer.triggers.batch import VideoInferBatchJobTrigger
from videoinfer_contract import batch as wire

#: The local server's Workflow of its motion models.
WORKFLOW = "detect-motion"
#: The fault-injection name of ``POST /jobs/{job_id}`` on the local server.
CREATE_ENDPOINT = "batch_create_job"


def _printed(capfd) -> str:
    """What the test printed so far (task and hook logs go to stdout through Airflow's structlog)."""
    out, err = capfd.readouterr()
    _PRINTED.append(out + err)
    return " ".join("".join(_PRINTED).split())


_PRINTED: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_output():
    _PRINTED.clear()


class TaskInstance:
    """The part of a running task instance the operator reads: its identity, its try group, its XCom pushes."""

    def __init__(self, run_id: str, max_tries: int = 1, try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "batch_dag", run_id, "run", -1
        self.max_tries, self.try_number = max_tries, try_number
        self.pushed: dict[str, object] = {}
        self.job_pushed = threading.Event()

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value
        if key == "job_id":
            self.job_pushed.set()


def _context(ti: TaskInstance, store: FakeTaskStateStore | None = None) -> dict:
    return {"ti": ti, "task_state_store": store if store is not None else FakeTaskStateStore()}


def _server(tmp_path_factory, name: str, **options):
    from videoinfer_server.launch import run_server

    return run_server(tmp_path_factory.mktemp(name), API_KEY, enable_faults=True, **options)


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory):
    """A local server whose batch jobs run at full speed."""
    with _server(tmp_path_factory, "batch") as running:
        yield running


@pytest.fixture(scope="module")
def slow_batch_server(tmp_path_factory):
    """A local server whose batch jobs take a while on each frame (so a job is seen running)."""
    with _server(tmp_path_factory, "slow-batch", batch_frame_delay_seconds=0.5) as running:
        yield running


def _connect(server, monkeypatch) -> VideoInferBatchHook:
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
    clear_faults(server)
    return VideoInferBatchHook()


def _stage(hook: VideoInferBatchHook, video, batch_id: str) -> str:
    if not hook.count(batch_id):
        hook.upload_video(batch_id, video, "sample.mp4")
    return batch_id


def _operator(batch_id: str, **options) -> VideoInferBatchJobOperator:
    settings = {"poll_interval": 0.2, "wait_timeout": 120, "deferrable": False, "max_runtime_seconds": 600, **options}
    return VideoInferBatchJobOperator(task_id="run", batch_id=batch_id, workflow_id=WORKFLOW, **settings)


def _requests(server, endpoint: str) -> int:
    """How many requests the local server received at one endpoint (a name of its fault injection)."""
    answer = requests.get(f"{server.base_url}/_requests", params={"api_key": API_KEY}, timeout=5)
    answer.raise_for_status()
    return int(answer.json()["requests"].get(endpoint, 0))


def _jobs(hook: VideoInferBatchHook) -> list[wire.BatchJob]:
    return list(hook.list_jobs())


def test_a_retry_reconnects_to_its_job_and_a_clear_runs_a_new_one(batch_server, monkeypatch, sample_video):
    hook = _connect(batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "reconnect-batch")
    store = FakeTaskStateStore()
    first = _operator(batch_id).execute(_context(TaskInstance("run-a"), store))
    assert hook.get_job(first).state is wire.BatchJobState.SUCCEEDED
    assert len(first) <= 20 and first.startswith("af-")
    before = len(_jobs(hook))

    retry = _operator(batch_id).execute(_context(TaskInstance("run-a", try_number=2), store))
    assert retry == first
    assert len(_jobs(hook)) == before  # read, not created again

    cleared = _operator(batch_id).execute(_context(TaskInstance("run-a", max_tries=3, try_number=2), store))
    assert cleared != first
    assert len(_jobs(hook)) == before + 1


def test_a_creation_whose_answer_is_lost_makes_one_job(batch_server, monkeypatch, sample_video, capfd):
    hook = _connect(batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "lost-answer-batch")
    before = {job.job_id for job in _jobs(hook)}
    inject_fault(batch_server, CREATE_ENDPOINT, action="lose_answer")
    posts = _requests(batch_server, CREATE_ENDPOINT)
    job_id = _operator(batch_id).execute(_context(TaskInstance("run-lost")))
    assert _requests(batch_server, CREATE_ENDPOINT) - posts == 1  # read back, never sent again
    created = [job for job in _jobs(hook) if job.job_id not in before]
    assert [job.job_id for job in created] == [job_id]
    assert hook.get_job(job_id).state is wire.BatchJobState.SUCCEEDED
    assert "creation's lost answer is resolved" in _printed(capfd)


def _run_until_running(
    operator: VideoInferBatchJobOperator, ti: TaskInstance, hook: VideoInferBatchHook, pool, store=None
):
    waiting = pool.submit(operator.execute, _context(ti, store))
    if not ti.job_pushed.wait(timeout=60):
        waiting.result(timeout=1)
        raise AssertionError("the operator never pushed its job id")
    job_id = str(ti.pushed["job_id"])
    while (job := hook.find_job(job_id)) is None or job.state is not wire.BatchJobState.RUNNING:
        assert not waiting.done(), waiting.result()
        threading.Event().wait(0.05)
    return job_id, waiting


def test_a_killed_task_aborts_its_job_at_the_server(slow_batch_server, monkeypatch, sample_video, capfd):
    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "kill-batch")
    operator = _operator(batch_id)
    ti, store = TaskInstance("run-kill"), FakeTaskStateStore()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        job_id, waiting = _run_until_running(operator, ti, hook, pool, store)
        operator.on_kill()  # what Airflow calls when the task is killed
        assert hook.get_job(job_id).state is wire.BatchJobState.ABORTED
        with pytest.raises(VideoInferBatchJobFailedFatalError, match="aborted"):
            waiting.result(timeout=60)
    assert f"Aborted batch job {job_id}: task run was killed" in _printed(capfd)

    # The killed try's retry restarts the same job (it was aborted by that kill): no second job.
    posts, restarts = _requests(slow_batch_server, CREATE_ENDPOINT), _requests(slow_batch_server, "batch_restart")
    assert _operator(batch_id).execute(_context(TaskInstance("run-kill", try_number=2), store)) == job_id
    assert _requests(slow_batch_server, CREATE_ENDPOINT) == posts
    assert _requests(slow_batch_server, "batch_restart") == restarts + 1
    assert hook.get_job(job_id).state is wire.BatchJobState.SUCCEEDED


def test_a_wait_that_times_out_aborts_its_job(slow_batch_server, monkeypatch, sample_video, capfd):
    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "timeout-batch")
    ti = TaskInstance("run-timeout")
    with pytest.raises(VideoInferBatchTimeoutError, match="so it was aborted") as raised:
        _operator(batch_id, wait_timeout=1.0).execute(_context(ti))
    job_id = str(ti.pushed["job_id"])
    assert job_id in str(raised.value)
    assert hook.get_job(job_id).state is wire.BatchJobState.ABORTED
    assert f"Aborted batch job {job_id}: its wait reached wait_timeout=1 s" in _printed(capfd)


def test_the_runtime_cap_ends_the_job_and_the_task_says_why(slow_batch_server, monkeypatch, sample_video):
    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "cap-batch")
    ti = TaskInstance("run-cap")
    with pytest.raises(VideoInferBatchJobFailedFatalError) as raised:
        _operator(batch_id, max_runtime_seconds=1).execute(_context(ti))
    job_id = str(ti.pushed["job_id"])
    assert hook.get_job(job_id).state is wire.BatchJobState.FAILED
    message = str(raised.value)
    assert f"Batch job {job_id} ended failed" in message
    assert "runtime cap, max_runtime_seconds=1" in message


def test_the_trigger_aborts_its_job_when_a_person_kills_the_deferred_task(slow_batch_server, monkeypatch, sample_video):
    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "trigger-kill-batch")
    ti = TaskInstance("run-trigger-kill")
    _operator(batch_id, wait_for_completion=False).execute(_context(ti))
    job_id = str(ti.pushed["job_id"])
    trigger = VideoInferBatchJobTrigger(job_id=job_id, poll_interval=0.2)
    classpath, kwargs = trigger.serialize()
    assert set(kwargs) == {"job_id", "videoinfer_conn_id", "poll_interval", "deadline", "abort_on_kill"}
    assert API_KEY not in repr(kwargs)
    asyncio.run(VideoInferBatchJobTrigger(**kwargs).on_kill())  # what Airflow 3.3's triggerer calls
    assert hook.get_job(job_id).state is wire.BatchJobState.ABORTED


def test_the_trigger_ends_with_one_event_for_a_finished_job(batch_server, monkeypatch, sample_video):
    hook = _connect(batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "trigger-batch")
    ti = TaskInstance("run-trigger")
    job_id = _operator(batch_id).execute(_context(ti))

    async def events() -> list:
        return [event async for event in VideoInferBatchJobTrigger(job_id=job_id, poll_interval=0.05).run()]

    (event,) = asyncio.run(events())
    assert event.payload["kind"] == "succeeded" and event.payload["job_id"] == job_id


def test_a_bad_workflow_parameter_fails_at_parse_time():
    from airflow_provider_videoinfer.exceptions import VideoInferValidationError

    with pytest.raises(VideoInferValidationError, match="max_runtime_seconds"):
        VideoInferBatchJobOperator(task_id="run", batch_id="b", workflow_id=WORKFLOW, max_runtime_seconds=0)
    with pytest.raises(VideoInferValidationError, match="machine_type"):
        VideoInferBatchJobOperator(task_id="run", batch_id="b", workflow_id=WORKFLOW, machine_type="tpu")


def test_the_workspace_is_read_once(batch_server, monkeypatch):
    hook = _connect(batch_server, monkeypatch)
    assert hook.workspace == hook.workspace
    answer = requests.get(batch_server.base_url + "/", params={"api_key": API_KEY}, timeout=5).json()
    assert hook.workspace == answer["workspace"]


def test_the_sensor_returns_a_finished_job_and_fails_on_a_capped_one(slow_batch_server, monkeypatch, sample_video):
    from airflow_provider_videoinfer.sensors.batch import VideoInferBatchJobSensor

    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "sensor-batch")
    ti = TaskInstance("run-sensor")
    with pytest.raises(VideoInferBatchJobFailedFatalError):
        _operator(batch_id, max_runtime_seconds=1).execute(_context(ti))
    capped = str(ti.pushed["job_id"])
    sensor = VideoInferBatchJobSensor(task_id="wait", job_id=capped, poll_interval=0.2, timeout=60, deferrable=False)
    with pytest.raises(VideoInferBatchJobFailedFatalError, match=f"Batch job {capped} ended failed"):
        sensor.execute(_context(TaskInstance("run-sensor-wait")))
    sensor.on_kill()  # does not own the job: nothing is aborted
    assert hook.get_job(capped).state is wire.BatchJobState.FAILED


def test_the_sensor_waits_for_a_running_job_and_returns_its_id(batch_server, monkeypatch, sample_video):
    from airflow_provider_videoinfer.sensors.batch import VideoInferBatchJobSensor

    hook = _connect(batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "sensor-ok-batch")
    ti = TaskInstance("run-sensor-ok")
    job_id = _operator(batch_id, wait_for_completion=False).execute(_context(ti))
    sensor = VideoInferBatchJobSensor(task_id="wait", job_id=job_id, poll_interval=0.2, timeout=120, deferrable=False)
    assert sensor.execute(_context(TaskInstance("run-sensor-ok-wait"))) == job_id
    assert hook.get_job(job_id).state is wire.BatchJobState.SUCCEEDED


def test_listings_follow_their_page_tokens_and_logs_are_read(batch_server, monkeypatch, sample_video):
    hook = _connect(batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "listing-batch")
    for run_id in ("run-list-1", "run-list-2"):
        _operator(batch_id).execute(_context(TaskInstance(run_id)))
    every = [job.job_id for job in hook.list_jobs()]
    assert len(every) >= 2
    before = _requests(batch_server, "batch_jobs")
    assert [job.job_id for job in hook.list_jobs(page_size=1)] == every  # one job a page, every page read
    assert _requests(batch_server, "batch_jobs") - before == len(every)
    assert batch_id in [batch.batch_id for batch in hook.list_batches(page_size=1)]
    assert [item.file_name for item in hook.list_files(batch_id)] == ["sample.mp4"]
    logs = list(hook.job_logs(every[-1]))
    assert logs and all(entry.severity in wire.LOG_SEVERITIES for entry in logs)


def test_a_retry_after_a_try_lost_mid_wait_reconnects_to_the_running_job(slow_batch_server, monkeypatch, sample_video):
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0 keeps it in airflow.exceptions only
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    hook = _connect(slow_batch_server, monkeypatch)
    batch_id = _stage(hook, sample_video, "lost-try-batch")
    store = FakeTaskStateStore()
    first = TaskInstance("run-lost-try")
    with pytest.raises(TaskDeferred):  # the wait went to a triggerer, which is then lost with the worker
        _operator(batch_id, deferrable=True).execute(_context(first, store))
    job_id = str(first.pushed["job_id"])
    assert hook.get_job(job_id).state in (wire.BatchJobState.QUEUED, wire.BatchJobState.RUNNING)
    posts = _requests(slow_batch_server, CREATE_ENDPOINT)
    retry = TaskInstance("run-lost-try", try_number=2)
    assert _operator(batch_id).execute(_context(retry, store)) == job_id
    assert _requests(slow_batch_server, CREATE_ENDPOINT) == posts  # reconnected: nothing created
    assert hook.get_job(job_id).state is wire.BatchJobState.SUCCEEDED

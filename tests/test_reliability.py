"""Faults injected by the local server on every endpoint: what is retryable is retried, the rest fails clearly.

A job submission is retried only when the answer proves no job was created (429, 503, no
connection), so no fault ever makes the server receive the same job twice. Waits (trigger,
in-worker, sensor) ride out a real outage: the server process stopped and started again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import re
import threading
import time

import pytest
from helpers import API_KEY, connection_json, inject_fault, server_jobs, stored_digests

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.compat import AIRFLOW_V_3_1_PLUS
from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferConnectionError,
    VideoInferError,
    VideoInferNotFoundError,
    VideoInferResponseError,
    VideoInferServerError,
)
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient, VideoInferHook
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor
from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger
from videoinfer_server.launch import free_port, run_server_process

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
ENDPOINTS = ["upload_url", "upload", "submit", "status", "result"]
# (fault options, retried on a job submission, the error a submission ends with when not retried)
FAULTS = {
    "429+retry-after": ({"action": "status", "status_code": 429, "retry_after": 0.1}, True, None),
    "503": ({"action": "status", "status_code": 503}, True, None),
    "500": ({"action": "status", "status_code": 500}, False, VideoInferServerError),
    "502": ({"action": "status", "status_code": 502}, False, VideoInferServerError),
    "drop": ({"action": "drop"}, False, VideoInferConnectionError),
    "slower-than-read-timeout": ({"action": "stall", "stall_seconds": 1.5}, False, VideoInferConnectionError),
    "malformed-json": ({"action": "malformed"}, False, VideoInferResponseError),
}


@pytest.fixture
def hook(videoinfer_conn, monkeypatch) -> VideoInferHook:
    """A hook with short timeouts and three attempts, so faults resolve quickly."""
    conn = connection_json(
        videoinfer_conn.base_url, read_timeout=0.5, transfer_timeout=0.5, retry_max_attempts=3, retry_max_wait=0.2
    )
    monkeypatch.setenv("AIRFLOW_CONN_FAST", conn)
    return VideoInferHook("fast")


@pytest.fixture(scope="module")
def finished_job(server, sample_video):
    """A done job, for the status and result endpoints."""
    import os

    os.environ["AIRFLOW_CONN_SETUP"] = connection_json(server.base_url)
    setup = VideoInferHook("setup")
    input_url = setup.upload_video(sample_video)
    job_id = setup.submit_job(input_url, 5, [MOTION])
    return input_url, job_id, setup.wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url


def _call(hook, endpoint, finished_job, sample_video, tmp_path):
    input_url, job_id, output_url = finished_job
    return {
        "upload_url": lambda: hook.request_upload_url("clip.mp4"),
        "upload": lambda: hook.upload_video(sample_video),
        "submit": lambda: hook.submit_job(input_url, 5, [MOTION]),
        "status": lambda: hook.get_job(job_id),
        "result": lambda: hook.download_result(output_url, tmp_path / "result.json"),
    }[endpoint]()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fault_is_retried_or_fails_clearly(
    hook, videoinfer_conn, finished_job, sample_video, tmp_path, endpoint, fault
):
    options, safe_to_resubmit, submit_error = FAULTS[fault]
    jobs_before = len(server_jobs(videoinfer_conn))
    inject_fault(videoinfer_conn, endpoint, count=2, **options)
    if endpoint == "submit" and not safe_to_resubmit:
        with pytest.raises(submit_error) as err:
            _call(hook, endpoint, finished_job, sample_video, tmp_path)
        assert "submission of a job" in str(err.value)
    else:
        assert _call(hook, endpoint, finished_job, sample_video, tmp_path)
    new_jobs = len(server_jobs(videoinfer_conn)) - jobs_before
    assert new_jobs <= (1 if endpoint == "submit" else 0), "a fault made the server receive a job twice"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_faults_outlasting_the_retry_bound_end_in_a_clear_error(
    hook, videoinfer_conn, finished_job, sample_video, tmp_path, endpoint
):
    inject_fault(videoinfer_conn, endpoint, count=10, action="status", status_code=503)
    with pytest.raises(VideoInferServerError, match="HTTP 503"):
        _call(hook, endpoint, finished_job, sample_video, tmp_path)


def test_upload_broken_mid_stream_is_retried_from_the_start(hook, videoinfer_conn, sample_video, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(sample_video.read_bytes() * 40)  # a few MB, so the drop happens mid-body
    inject_fault(videoinfer_conn, "upload", "drop", count=1)
    hook.upload_video(big)
    assert hashlib.sha256(big.read_bytes()).hexdigest() in stored_digests(videoinfer_conn)


def test_unreachable_service_is_a_connection_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", connection_json("http://127.0.0.1:9", retry_max_attempts=2))
    with pytest.raises(VideoInferConnectionError, match="status of job j1") as err:
        VideoInferHook("down").get_job("j1")
    assert isinstance(err.value, VideoInferError)


# --- Waits ride out a real outage: the local server process is stopped, then started again ---
#
# No timers: the service is stopped before the wait starts, and started again once the wait has
# seen a given number of polls fail (counted where the polls are made), so every test sees the
# same story however slow the machine is.


class FailedPolls:
    """Counts the job-status reads that failed, in any thread or event loop, and lets a test wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 120) -> None:
        """Return once ``count`` reads have failed; fail the test after ``timeout`` seconds."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.count >= count, timeout), f"only {self.count} failed polls"


@pytest.fixture
def failed_polls(monkeypatch) -> FailedPolls:
    """Watch every ``get_job`` of the sync hook and the async client (a spy: each call still goes out)."""
    watch = FailedPolls()
    sync_get, async_get = VideoInferHook.get_job, VideoInferAsyncClient.get_job

    def get_job(self, *args, **kwargs):
        try:
            return sync_get(self, *args, **kwargs)
        except VideoInferError:
            watch.add()
            raise

    async def aget_job(self, *args, **kwargs):
        try:
            return await async_get(self, *args, **kwargs)
        except VideoInferError:
            watch.add()
            raise

    monkeypatch.setattr(VideoInferHook, "get_job", get_job)
    monkeypatch.setattr(VideoInferAsyncClient, "get_job", aget_job)
    return watch


@contextlib.contextmanager
def _outage_server(tmp_path, monkeypatch, *args: str):
    """A server process on a fixed port, and a connection to it with the default settings.

    Yields ``(stop, start)``: ``stop()`` stops the process (terminate, then wait), ``start()``
    starts it again on the same port and data dir; every process started is stopped on exit.
    """
    port, data = free_port(), tmp_path / "outage-data"
    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(contextlib.ExitStack())]
        running[0].enter_context(run_server_process(data, API_KEY, *args, port=port))
        # Default settings (no fast retries): the ride-out must hold with what users get.
        conn = {"conn_type": "videoinfer", "host": f"http://127.0.0.1:{port}", "password": API_KEY}
        monkeypatch.setenv("AIRFLOW_CONN_OUTAGE", json.dumps(conn))

        def stop() -> None:
            running[0].close()

        def start() -> None:
            running[0] = stack.enter_context(contextlib.ExitStack())
            running[0].enter_context(run_server_process(data, API_KEY, *args, port=port))

        yield stop, start


def _outage_log(text: str) -> tuple[list[str], list[str]]:
    """The failed-poll warnings and the recovery lines that the wait printed (Airflow logs through structlog)."""
    assert API_KEY not in text
    # Airflow 3.0's dag.test prints each task log line twice (two handlers): keep one of each.
    lines = list({line[line.find("Job ") :]: line for line in text.splitlines()}.values())
    failed = [line for line in lines if "poll failed; the service has been unreachable for" in line]
    assert all("warning" in line.lower() for line in failed), failed
    return failed, [line for line in lines if "the service answers again after" in line]


async def test_deferred_wait_rides_out_a_stopped_service(tmp_path, sample_video, monkeypatch, capfd, failed_polls):
    with _outage_server(tmp_path, monkeypatch) as (stop, start):
        hook = VideoInferHook("outage")
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
        stop()
        trigger = VideoInferJobTrigger(job_id, "outage", poll_interval=0.5, deadline=time.time() + 300)
        waiting = asyncio.ensure_future(_trigger_events(trigger))
        await asyncio.to_thread(failed_polls.wait_for, 2)
        await asyncio.to_thread(start)
        events = await asyncio.wait_for(waiting, timeout=120)
    assert [(e["kind"], e["job_id"]) for e in events] == [("succeeded", job_id)]
    failed, recovered = _outage_log("".join(capfd.readouterr()))
    assert len(failed) >= 2 and len(recovered) == 1, failed
    assert f"nothing answers at {hook.settings.base_url} (connection refused)" in failed[0]


def test_in_worker_wait_rides_out_a_stopped_service(tmp_path, sample_video, monkeypatch, capfd, failed_polls):
    with _outage_server(tmp_path, monkeypatch, "--min-job-seconds", "1") as (stop, start):
        hook = VideoInferHook("outage")
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
        stop()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(hook.wait_for_job, job_id, 0.5, 300)
            failed_polls.wait_for(2)
            start()
            state = waiting.result(timeout=120)
    assert state.status is contract.JobStatus.SUCCEEDED
    out, err = capfd.readouterr()
    failed, recovered = _outage_log(out + err)
    assert len(failed) >= 2 and len(recovered) == 1, failed


def test_poking_sensor_rides_out_a_stopped_service(tmp_path, sample_video, monkeypatch, capfd):
    with _outage_server(tmp_path, monkeypatch) as (stop, start):
        hook = VideoInferHook("outage")
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
        sensor = VideoInferJobSensor(task_id="wait", job_id=job_id, videoinfer_conn_id="outage", deferrable=False)
        monkeypatch.setenv(
            "AIRFLOW_CONN_OUTAGE",
            connection_json(hook.settings.base_url, retry_max_attempts=2, retry_max_wait=0.2),
        )
        sensor.hook.__dict__.pop("settings", None)
        stop()
        assert sensor.poke({}) is False  # unreachable: state unknown, keep waiting
        start()
        done = _poke_until_done(sensor)
    assert done.is_done and done.xcom_value.startswith(hook.settings.base_url)
    failed, recovered = _outage_log("".join(capfd.readouterr()))
    assert len(failed) == 1 and len(recovered) == 1, failed


def _poke_until_done(sensor: VideoInferJobSensor, timeout: float = 120):
    """Poke until the job is done (each poke is one poll, as the sensor's own loop would make)."""
    deadline = time.monotonic() + timeout
    while not (done := sensor.poke({})):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    return done


async def _trigger_events(trigger: VideoInferJobTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def test_definite_answers_end_a_wait_at_once(videoinfer_conn, finished_job, monkeypatch):
    """401 and 404 are not outages: no warning loop, the error at once, without Airflow retries."""
    from airflow_provider_videoinfer.compat import AirflowFailException

    with pytest.raises(VideoInferNotFoundError) as err:
        VideoInferHook().wait_for_job("no-such-job", poll_interval=0.1, timeout=30)
    assert isinstance(err.value, AirflowFailException)
    monkeypatch.setenv("AIRFLOW_CONN_BADKEY", connection_json(videoinfer_conn.base_url, api_key="wrong-key-99"))
    with pytest.raises(VideoInferAuthError) as err:
        VideoInferHook("badkey").wait_for_job(finished_job[1], poll_interval=0.1, timeout=30)
    assert isinstance(err.value, AirflowFailException) and "wrong-key-99" not in str(err.value)


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS,
    reason="Airflow 3.0's dag.test() hands a rescheduled sensor its first reschedule date as text: "
    "BaseSensorOperator.execute fails with a TypeError at the second poke, whatever the sensor",
)
def test_rescheduled_sensor_remembers_the_outage_across_pokes(tmp_path, sample_video, monkeypatch, capfd, failed_polls):
    """Each poke is a new run of the task: the outage's start and its failed polls live in its task store."""
    from airflow.utils.state import DagRunState
    from helpers import run_dag

    with _outage_server(tmp_path, monkeypatch) as (stop, start):
        hook = VideoInferHook("outage")
        job_id = hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])
        fast = connection_json(hook.settings.base_url, retry_max_attempts=2, retry_max_wait=0.2)
        monkeypatch.setenv("AIRFLOW_CONN_OUTAGE", fast)
        stop()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # The service comes back once two pokes (two runs of the task) have failed.
            back = pool.submit(lambda: (failed_polls.wait_for(2), start()))
            run = run_dag("vi_test_reschedule_outage", job_id=job_id)
            back.result(timeout=120)
    assert run.state == DagRunState.SUCCESS
    failed, recovered = _outage_log("".join(capfd.readouterr()))
    polls = [int(re.search(r"\((\d+) failed polls? in a row\)", line).group(1)) for line in failed]
    assert polls == list(range(1, len(polls) + 1)) and len(polls) >= 2, failed
    assert len(recovered) == 1 and f"({polls[-1]} failed polls)" in recovered[0], recovered

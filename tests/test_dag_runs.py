"""Whole DAG runs under ``dag.test()`` against the local server: operators, sensor modes, retries."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
import requests
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from helpers import (
    API_KEY,
    CORRUPT_MP4,
    clear_faults,
    console,
    inject_fault,
    on_task_failure,
    run_dag,
    server_jobs,
    states,
    xcom,
)

from airflow_provider_videoinfer.exceptions import VideoInferTimeoutError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_pipeline_upload_submit_deferred_sensor(videoinfer_conn, sample_video):
    run = run_dag("vi_test_pipeline", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    job_id = xcom(run, "submit")
    assert xcom(run, "submit", "job_id") == job_id
    output_url = xcom(run, "wait")
    # The output URL is signed afresh at each poll (its date and signature change): compare where it points.
    assert output_url and urlsplit(output_url).path == urlsplit(VideoInferHook().get_job(job_id).output_url).path


def test_failed_job_fails_the_dag_run_with_the_status(videoinfer_conn, sample_video, capfd):
    run = run_dag("vi_test_pipeline", video=str(sample_video), model_id="no-such-model")
    assert run.state == DagRunState.FAILED
    assert states(run)["wait"] == TaskInstanceState.FAILED
    job_id = xcom(run, "submit")
    printed = console(*capfd.readouterr())
    assert (
        f"VideoInferJobFailedFatalError: Video inference job {job_id} failed with status 4: model 'no-such-model'"
        in printed
    )
    assert "A retry of this sensor would only read the same failed job" in printed


def test_sensor_poke_and_reschedule_modes(slow_conn, sample_video):
    run = run_dag("vi_test_sensor_modes", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    poke, reschedule = xcom(run, "wait_poke"), xcom(run, "wait_reschedule")
    assert poke and reschedule and urlsplit(poke).path == urlsplit(reschedule).path  # signed afresh per poll


def test_operator_submit_and_wait_deferred(videoinfer_conn, sample_video):
    run = run_dag("vi_test_submit_and_wait_deferred", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert xcom(run, "submit").startswith(videoinfer_conn.base_url)


def test_retried_submit_task_reconnects_instead_of_submitting_again(slow_conn, sample_video, capfd):
    before = len(server_jobs(slow_conn))
    # Server errors on every status read until the first try has failed: its wait rides them out and
    # gives up at its 1 s wait_timeout, whatever the job does. The service recovers on that failure
    # (an event, not a timer), and the retry reconnects.
    inject_fault(slow_conn, "status", "status", count=100_000, status_code=500)
    failures: list = []

    def recover(task_instance, error) -> None:
        if task_instance.task_id == "submit":
            failures.append(error)
            clear_faults(slow_conn)

    with on_task_failure(recover):
        run = run_dag("vi_test_retry", video=str(sample_video))
    clear_faults(slow_conn)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(server_jobs(slow_conn)) == before + 1, "the retry submitted a second job"
    # The first try gave up at its wait_timeout, the job's state unknown (older Airflow passes the error as text).
    assert failures and "HTTP 500" in str(failures[0]), failures
    assert isinstance(failures[0], (str, VideoInferTimeoutError)), failures
    with create_session() as session:
        assert run.get_task_instance("submit", session=session).try_number >= 2
    assert xcom(run, "submit").startswith(slow_conn.base_url)
    assert "Reconnecting to job" in console(*capfd.readouterr())


def test_retry_that_cannot_read_its_job_waits_from_the_unknown_state_without_submitting_a_second(
    slow_conn, sample_video, capfd
):
    """503s on every status read: a retry reads its job once, submits nothing, and its wait starts from the
    unknown state (riding out the 503s to its wait_timeout); a later retry, the service back, reconnects.

    The service recovers on the second failed try, not on a timer: the order holds however slow the
    machine is.
    """
    before = len(server_jobs(slow_conn))
    inject_fault(slow_conn, "status", "status", count=100_000, status_code=503)
    unknown: list[int] = []

    def recover(task_instance, error) -> None:
        if task_instance.task_id == "submit" and "its state was unknown" in str(error):
            unknown.append(task_instance.try_number)
            if len(unknown) == 2:
                clear_faults(slow_conn)

    with on_task_failure(recover):
        run = run_dag("vi_test_retry", video=str(sample_video))
    clear_faults(slow_conn)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(server_jobs(slow_conn)) == before + 1, "a retry submitted a second job"
    assert len(unknown) >= 2 and unknown[1] >= 2, unknown
    printed = console(*capfd.readouterr())
    assert "could not be read" in printed and "no new job is submitted while its state is unknown" in printed
    assert "submitting a new job" not in printed
    with create_session() as session:
        assert run.get_task_instance("submit", session=session).try_number >= 3


def test_errors_no_retry_can_fix_fail_the_task_without_retries(videoinfer_conn, capfd):
    jobs_before = len(server_jobs(videoinfer_conn))
    run = run_dag("vi_test_fail_fast")
    assert run.state == DagRunState.FAILED
    assert states(run) == {"bad_input": TaskInstanceState.FAILED, "unknown_job": TaskInstanceState.FAILED}
    with create_session() as session:
        for task_id in ("bad_input", "unknown_job"):
            assert run.get_task_instance(task_id, session=session).try_number == 1, f"{task_id} was retried"
    printed = console(*capfd.readouterr())
    assert "input_url must be an http:// or https:// URL, got '/data/local-video.mp4'" in printed
    assert "upload local files with VideoInferUploadOperator first" in printed
    assert "status of job no-such-job: not found (HTTP 404" in printed
    assert len(server_jobs(videoinfer_conn)) == jobs_before


def test_deferral_is_logged_in_one_line(videoinfer_conn, sample_video, capfd):
    run = run_dag("vi_test_submit_and_wait_deferred", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    out, err = capfd.readouterr()
    job_id = xcom(run, "submit", "job_id")
    # One message (Airflow 3.0's dag.test prints each task log line twice, through two handlers).
    deferrals = set(re.findall(r"Job \S+ is running: the wait continues in the triggerer.*?at the latest\.", out + err))
    (deferral,) = deferrals
    assert deferral.startswith(f"Job {job_id} is running") and "polling every 0.3 s" in deferral


# ----- a failed job is paid for again only when resubmit_failed_jobs says so -----


@pytest.fixture
def corrupt_video(tmp_path):
    """An MP4's first bytes, then garbage: its job fails with status 3 (not a readable video)."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(CORRUPT_MP4)
    return path


def submit_tries(run) -> int:
    with create_session() as session:
        return run.get_task_instance("submit", session=session).try_number


def test_a_failed_job_is_not_paid_for_again_by_default(slow_conn, corrupt_video, capfd):
    before = len(server_jobs(slow_conn))
    run = run_dag("vi_test_failed_job", video=str(corrupt_video))
    jobs = server_jobs(slow_conn)[before:]
    assert run.state == DagRunState.FAILED
    assert [job["status"] for job in jobs] == [3], f"one job, failed with status 3: {jobs}"
    assert submit_tries(run) == 1, "the task used its retries on a job no retry pays for again"
    printed = console(*capfd.readouterr())
    assert f"VideoInferJobFailedFatalError: Video inference job {jobs[0]['job_id']} failed with status 3" in printed
    assert "No retry of this task pays for a new job after it (resubmit_failed_jobs=False)" in printed


def test_resubmit_failed_jobs_true_pays_for_a_new_job_at_every_retry(slow_conn, corrupt_video, capfd):
    before = len(server_jobs(slow_conn))
    run = run_dag("vi_test_failed_job_always", video=str(corrupt_video))
    jobs = server_jobs(slow_conn)[before:]
    assert run.state == DagRunState.FAILED
    assert [job["status"] for job in jobs] == [3, 3, 3, 3], f"a job per try (1 + 3 retries): {jobs}"
    assert submit_tries(run) == 4
    out, err = capfd.readouterr()
    assert console(out, err).count("submitting a new job (resubmit_failed_jobs=True)") == 3


def test_resubmit_failed_jobs_with_statuses_pays_again_only_for_those(slow_conn, corrupt_video, sample_video, capfd):
    """{2}: a corrupt video (status 3) is paid for once; a job that fails with status 2 is submitted again."""
    before = len(server_jobs(slow_conn))
    run = run_dag("vi_test_failed_job_status_2", video=str(corrupt_video))
    jobs = server_jobs(slow_conn)[before:]
    assert run.state == DagRunState.FAILED and [job["status"] for job in jobs] == [3], jobs
    assert submit_tries(run) == 1
    out, err = capfd.readouterr()
    assert "No retry of this task pays for a new job after it (resubmit_failed_jobs={2})" in console(out, err)

    # The first job of the next run is made to fail with status 2 when it ends (it runs 4 s).
    before = len(server_jobs(slow_conn))
    stop = threading.Event()

    def fail_first_job() -> None:
        while not stop.is_set():
            jobs = server_jobs(slow_conn)[before:]
            if jobs:
                body = {"status": 2, "error": "injected internal error"}
                url = f"{slow_conn.base_url}/_faults/jobs/{jobs[0]['job_id']}"
                requests.post(url, params={"api_key": API_KEY}, json=body, timeout=5).raise_for_status()
                return
            stop.wait(0.05)

    saboteur = threading.Thread(target=fail_first_job)
    saboteur.start()
    try:
        run = run_dag("vi_test_failed_job_status_2", video=str(sample_video))
    finally:
        stop.set()
        saboteur.join()
    jobs = server_jobs(slow_conn)[before:]
    assert [job["status"] for job in jobs] == [2, 0], f"the failed job, then the one its retry paid for: {jobs}"
    assert run.state == DagRunState.SUCCESS, states(run)
    assert submit_tries(run) == 2
    printed = console(*capfd.readouterr())
    first = jobs[0]["job_id"]
    assert (
        f"Job {first} from a previous try failed with status 2 (injected internal error): submitting a new job"
        in printed
    )

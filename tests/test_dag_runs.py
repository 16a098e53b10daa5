"""Whole DAG runs under ``dag.test()`` against the local server: operators, sensor modes, retries."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
import requests
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from helpers import API_KEY, clear_faults, console, inject_fault, run_dag, server_jobs, states, xcom

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


def test_retried_submit_task_reconnects_instead_of_submitting_again(slow_conn, sample_video):
    before = len(server_jobs(slow_conn))
    # Server errors on the status endpoint are ridden out; the first try gives up at its 1 s wait_timeout.
    inject_fault(slow_conn, "status", "status", count=5, status_code=500)
    run = run_dag("vi_test_retry", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(server_jobs(slow_conn)) == before + 1, "the retry submitted a second job"
    with create_session() as session:
        submit = run.get_task_instance("submit", session=session)
        assert submit.try_number >= 2, "the first try should have given up at its wait_timeout"
    assert xcom(run, "submit").startswith(slow_conn.base_url)


def test_retry_that_cannot_read_its_job_fails_without_submitting_a_second(slow_conn, sample_video, capfd):
    """503s on the retry's status reads: the retry fails rather than pay twice; a later one reconnects."""
    before = len(server_jobs(slow_conn))
    inject_fault(slow_conn, "status", "status", count=100_000, status_code=503)
    # The service recovers 5 s into the run: after the first try's 1 s wait and several retries' reads.
    recovery = threading.Timer(5.0, clear_faults, args=(slow_conn,))
    recovery.start()
    try:
        run = run_dag("vi_test_retry", video=str(sample_video))
    finally:
        recovery.cancel()
        clear_faults(slow_conn)
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(server_jobs(slow_conn)) == before + 1, "a retry submitted a second job"
    printed = console(*capfd.readouterr())
    assert "No new job is submitted while its state is unknown" in printed
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
    deferrals = [line for line in (out + err).splitlines() if "the wait continues in the triggerer" in line]
    assert len(deferrals) == 1 and f"Job {job_id} is running" in deferrals[0] and "polling every 0.3 s" in deferrals[0]


# ----- a failed job is paid for again only when resubmit_failed_jobs says so -----


@pytest.fixture
def corrupt_video(tmp_path):
    """A file named .mp4 that is not a video: its job fails with status 3 (not a readable video)."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"this is not a video\n" * 2000)
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
    out, err = capfd.readouterr()
    assert f"VideoInferJobFailedFatalError: Video inference job {jobs[0]['job_id']} failed with status 3" in out + err
    assert "No retry of this task pays for a new job after it (resubmit_failed_jobs=False)" in out + err


def test_resubmit_failed_jobs_true_pays_for_a_new_job_at_every_retry(slow_conn, corrupt_video, capfd):
    before = len(server_jobs(slow_conn))
    run = run_dag("vi_test_failed_job_always", video=str(corrupt_video))
    jobs = server_jobs(slow_conn)[before:]
    assert run.state == DagRunState.FAILED
    assert [job["status"] for job in jobs] == [3, 3, 3, 3], f"a job per try (1 + 3 retries): {jobs}"
    assert submit_tries(run) == 4
    out, err = capfd.readouterr()
    assert (out + err).count("submitting a new job (resubmit_failed_jobs=True)") == 3


def test_resubmit_failed_jobs_with_statuses_pays_again_only_for_those(slow_conn, corrupt_video, sample_video, capfd):
    """{2}: a corrupt video (status 3) is paid for once; a job that fails with status 2 is submitted again."""
    before = len(server_jobs(slow_conn))
    run = run_dag("vi_test_failed_job_status_2", video=str(corrupt_video))
    jobs = server_jobs(slow_conn)[before:]
    assert run.state == DagRunState.FAILED and [job["status"] for job in jobs] == [3], jobs
    assert submit_tries(run) == 1
    out, err = capfd.readouterr()
    assert "No retry of this task pays for a new job after it (resubmit_failed_jobs={2})" in out + err

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
    out, err = capfd.readouterr()
    first = jobs[0]["job_id"]
    assert f"Job {first} from a previous try failed with status 2 (injected internal error): submitting a new job" in (
        out + err
    )

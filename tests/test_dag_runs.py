"""Whole DAG runs under ``dag.test()`` against the local server: operators, sensor modes, retries."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from helpers import clear_faults, console, inject_fault, run_dag, server_jobs, states, xcom

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
    assert (
        f"VideoInferJobFailedError: Video inference job {job_id} failed with status 4: model 'no-such-model'"
        in console(*capfd.readouterr())
    )


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
    # 30 status reads fail: the first try's 1 s wait polls a few times, each retry's read tries up to
    # 5 times (the connection's retry policy), so some retries find the service down, a later one not.
    inject_fault(slow_conn, "status", "status", count=30, status_code=503)
    try:
        run = run_dag("vi_test_retry", video=str(sample_video))
    finally:
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
    assert "Upload local files with VideoInferUploadOperator first" in printed
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

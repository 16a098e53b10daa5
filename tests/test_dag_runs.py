"""Whole DAG runs under ``dag.test()`` against the local server: operators, sensor modes, retries."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from helpers import inject_fault, run_dag, server_jobs, states, xcom

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_pipeline_upload_submit_deferred_sensor(videoinfer_conn, sample_video):
    run = run_dag("vi_test_pipeline", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    job_id = xcom(run, "submit")
    assert xcom(run, "submit", "job_id") == job_id
    output_url = xcom(run, "wait")
    assert output_url and output_url == VideoInferHook().get_job(job_id).output_url


def test_failed_job_fails_the_dag_run_with_the_status(videoinfer_conn, sample_video, capfd):
    run = run_dag("vi_test_pipeline", video=str(sample_video), model_id="no-such-model")
    assert run.state == DagRunState.FAILED
    assert states(run)["wait"] == TaskInstanceState.FAILED
    job_id = xcom(run, "submit")
    out, err = capfd.readouterr()
    assert (
        f"VideoInferJobFailedError: Video inference job {job_id} failed with status 4: model 'no-such-model'"
        in out + err
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
    # Enough 500s on the status endpoint to spend the first try's retries while the job runs (4 s).
    inject_fault(slow_conn, "status", "status", count=5, status_code=500)
    run = run_dag("vi_test_retry", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert len(server_jobs(slow_conn)) == before + 1, "the retry submitted a second job"
    with create_session() as session:
        submit = run.get_task_instance("submit", session=session)
        assert submit.try_number == 2, "the first try should have failed on the injected errors"
    assert xcom(run, "submit").startswith(slow_conn.base_url)

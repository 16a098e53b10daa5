"""Batch Processing DAGs of the Celery system scenarios (tests/system/test_celery.py).

Each stages the videos under ``params.source`` (a bucket prefix: staged by reference) and runs one
Workflow job that waits in the worker (not deferrable), so that a scenario can kill the task's
process, or have Airflow kill it, while it waits. The job runs the local server's ``slow-test``
model as its Workflow (a model id is a Workflow of its own there), which sleeps
``params.delay`` seconds per sampled frame: the scenario decides how long the job stays running.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videoinfer.operators.batch import VideoInferBatchJobOperator
from airflow_provider_videoinfer.operators.batch_staging import VideoInferBatchStageOperator

START = datetime.datetime(2024, 1, 1)
POLL_INTERVAL = 3.0
PARAMS = {
    "source": Param("", type="string", description="Bucket prefix of the videos, e.g. s3://moto_s3@videos/x/."),
    "delay": Param(1.0, type="number", description="Seconds the slow-test model spends per sampled frame."),
}


def batch_wait(dag_id: str, conn_id: str) -> None:
    """stage -> run (one slow-test job, waited for in the worker, with retries that reconnect to it)."""
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]):
        stage = VideoInferBatchStageOperator(
            task_id="stage", sources="{{ params.source }}", videoinfer_conn_id=conn_id, poll_interval=POLL_INTERVAL
        )
        VideoInferBatchJobOperator(
            task_id="run",
            batch_id=stage.output,
            workflow_id="slow-test",
            workflow_parameters={"delay": "{{ params.delay }}"},
            max_video_fps=5,
            max_runtime_seconds=1800,
            videoinfer_conn_id=conn_id,
            deferrable=False,
            poll_interval=POLL_INTERVAL,
            retries=3,
            retry_delay=datetime.timedelta(seconds=5),
        )


# The task's process killed with kill -9 while it waits: the retry reconnects to the job.
batch_wait("vs_batch_worker_wait", "videoinfer_faults")
# The task marked failed through the REST API while it waits: Airflow kills it, and it aborts the job.
batch_wait("vs_batch_abort", "videoinfer_default")

"""DAGs of the system test scenarios (tests/system), parsed by the deployment's dag-processor.

Each job runs the local server's ``slow-test`` model, which sleeps ``params.delay`` seconds per
sampled frame, so a scenario decides how long its jobs stay "running" (and thus when it can
kill a process mid-wait). Each DAG uses its own connection, hence its own local server, so that
faults, kills and outages of one scenario never reach another running at the same time.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, AssetAlias, Param

from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

START = datetime.datetime(2024, 1, 1)
POLL_INTERVAL = 3.0
PARAMS = {
    "video": Param("", type="string", description="Path of the video to upload."),
    "delay": Param(1.0, type="number", description="Seconds the slow-test model spends per sampled frame."),
    "results_dir": Param("", type="string", description="Folder where results are kept."),
}
SLOW_MODEL = [
    {
        "model_id": "slow-test",
        "model_version": "1",
        "inference_type": "object-detection",
        "inference_params": {"delay": "{{ params.delay }}"},
    }
]
RESULTS_ALIAS = "videoinfer-system-results"


def pipeline(dag_id: str, conn_id: str) -> None:
    """upload -> submit -> deferrable sensor (6 h timeout, as in production) -> results kept as an Asset."""
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]):
        upload = VideoInferUploadOperator(task_id="upload", video="{{ params.video }}", videoinfer_conn_id=conn_id)
        submit = VideoInferSubmitJobOperator(
            task_id="submit", input_url=upload.output, infer_fps=5, models=SLOW_MODEL, videoinfer_conn_id=conn_id
        )
        wait = VideoInferJobSensor(
            task_id="wait",
            job_id=submit.output,
            videoinfer_conn_id=conn_id,
            deferrable=True,
            poll_interval=POLL_INTERVAL,
            timeout=6 * 3600,
        )
        VideoInferResultsOperator(
            task_id="results",
            output_url=wait.output,
            destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/result.json",
            outlets=[AssetAlias(RESULTS_ALIAS)],
        )


# The happy path, the restart of the local server, and the three-minute outage.
pipeline("vs_pipeline", "videoinfer_default")
pipeline("vs_server_restart", "videoinfer_restart")
pipeline("vs_outage", "videoinfer_outage")

# Three jobs waited for at once in the triggerer (killed and restarted by the scenario).
with DAG("vs_three_waits", schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]):
    upload = VideoInferUploadOperator(task_id="upload", video="{{ params.video }}")
    for index in range(3):
        submit = VideoInferSubmitJobOperator(
            task_id=f"submit_{index}", input_url=upload.output, infer_fps=5, models=SLOW_MODEL
        )
        VideoInferJobSensor(
            task_id=f"wait_{index}", job_id=submit.output, deferrable=True, poll_interval=POLL_INTERVAL, timeout=3600
        )

# One task that submits and waits in the worker; the scenario kills its process while it waits.
with DAG("vs_worker_wait", schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]):
    upload = VideoInferUploadOperator(
        task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_faults"
    )
    VideoInferSubmitJobOperator(
        task_id="submit_and_wait",
        input_url=upload.output,
        infer_fps=5,
        models=SLOW_MODEL,
        videoinfer_conn_id="videoinfer_faults",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        # Enough tries for a retry that gives up on each unreadable status read, whether it retries
        # the read within the try (5 attempts by default) or not.
        retries=10,
        retry_delay=datetime.timedelta(seconds=5),
    )

# Issue 24's promises. A transient status on every status read of a deferred wait, and 429s: one local
# server each, disturbed by its scenario alone.
pipeline("vs_transient_statuses", "videoinfer_transient")
pipeline("vs_pacing", "videoinfer_pacing")

# A submission whose answer the server loses after creating the job: the task fails at once, without
# using its retries, and no try submits again.
with DAG("vs_lost_answer", schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]):
    upload = VideoInferUploadOperator(
        task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_faults"
    )
    VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=upload.output,
        infer_fps=5,
        models=SLOW_MODEL,
        videoinfer_conn_id="videoinfer_faults",
        retries=2,
        retry_delay=datetime.timedelta(seconds=2),
    )

# A job that fails ends the task without its retries; a clear of the task then pays for one new job.
with DAG(
    "vs_clear_after_failure", schedule=None, start_date=START, catchup=False, params=PARAMS, tags=["videoinfer-system"]
):
    upload = VideoInferUploadOperator(
        task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_restart"
    )
    VideoInferSubmitJobOperator(
        task_id="submit_and_wait",
        input_url=upload.output,
        infer_fps=5,
        models=SLOW_MODEL,
        videoinfer_conn_id="videoinfer_restart",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        retries=2,
        retry_delay=datetime.timedelta(seconds=2),
    )

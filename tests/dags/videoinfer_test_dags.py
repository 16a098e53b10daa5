"""DAGs used by the test suite (kept in files so that ``dag.test()`` can sync them to the database)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videoinfer.operators.batch_staging import VideoInferBatchStageOperator
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

START = datetime.datetime(2024, 1, 1)
MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
PARAMS = {"video": Param("", type="string"), "model_id": Param("motion-detection", type="string")}
MODELS = [{**MOTION, "model_id": "{{ params.model_id }}"}]

with DAG("vi_test_pipeline", schedule=None, start_date=START, catchup=False, params=PARAMS):
    upload = VideoInferUploadOperator(task_id="upload", video="{{ params.video }}")
    submit = VideoInferSubmitJobOperator(task_id="submit", input_url=upload.output, infer_fps=5, models=MODELS)
    wait = VideoInferJobSensor(task_id="wait", job_id=submit.output, deferrable=True, poll_interval=0.3, timeout=120)
    upload >> submit >> wait

with DAG("vi_test_sensor_modes", schedule=None, start_date=START, catchup=False, params=PARAMS):
    upload = VideoInferUploadOperator(
        task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_slow"
    )
    submit = VideoInferSubmitJobOperator(
        task_id="submit", input_url=upload.output, infer_fps=5, models=MODELS, videoinfer_conn_id="videoinfer_slow"
    )
    for mode in ("poke", "reschedule"):
        VideoInferJobSensor(
            task_id=f"wait_{mode}",
            job_id=submit.output,
            videoinfer_conn_id="videoinfer_slow",
            deferrable=False,
            mode=mode,
            poll_interval=0.5,
            timeout=120,
        )
    upload >> submit

# The first try of "submit" gives up waiting after 1 s while the job runs (4 s on the slow
# server), as when a worker dies mid-wait; every retry must reconnect to the same job, never
# submit another.
with DAG("vi_test_retry", schedule=None, start_date=START, catchup=False, params=PARAMS):
    upload = VideoInferUploadOperator(
        task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_slow"
    )
    VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=upload.output,
        infer_fps=5,
        models=MODELS,
        videoinfer_conn_id="videoinfer_slow",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.3,
        wait_timeout=1,
        retries=30,
        retry_delay=datetime.timedelta(seconds=0),
    )

with DAG("vi_test_submit_and_wait_deferred", schedule=None, start_date=START, catchup=False, params=PARAMS):
    upload = VideoInferUploadOperator(task_id="upload", video="{{ params.video }}")
    VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=upload.output,
        infer_fps=5,
        models=MODELS,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=0.3,
    )

# Errors no retry can fix end each task at its first try, although both allow three retries.
with DAG(
    "vi_test_fail_fast",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"input_url": Param("/data/local-video.mp4", type="string")},
):
    VideoInferSubmitJobOperator(
        task_id="bad_input",
        input_url="{{ params.input_url }}",
        infer_fps=5,
        models=[MOTION],
        retries=3,
        retry_delay=datetime.timedelta(seconds=0),
    )
    VideoInferJobSensor(
        task_id="unknown_job",
        job_id="no-such-job",
        deferrable=True,
        poll_interval=0.3,
        timeout=60,
        retries=3,
        retry_delay=datetime.timedelta(seconds=0),
    )

# A sensor in reschedule mode on the "outage" connection, whose service the test stops for a while.
with DAG(
    "vi_test_reschedule_outage",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"job_id": Param("", type="string")},
):
    VideoInferJobSensor(
        task_id="wait",
        job_id="{{ params.job_id }}",
        videoinfer_conn_id="outage",
        deferrable=False,
        mode="reschedule",
        poll_interval=0.5,
        timeout=300,
    )

# A storage URI as the input: no upload, the service reads the video from the bucket through a
# presigned URL. "videoinfer_remote" is a local server that fetches remote URLs.
PRESIGNED_PARAMS = {"video": Param("", type="string"), "results": Param("", type="string")}
with DAG("vi_test_presigned", schedule=None, start_date=START, catchup=False, params=PRESIGNED_PARAMS):
    submit = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url="{{ params.video }}",
        infer_fps=5,
        models=[MOTION],
        videoinfer_conn_id="videoinfer_remote",
    )
    wait = VideoInferJobSensor(
        task_id="wait", job_id=submit.output, videoinfer_conn_id="videoinfer_remote", poll_interval=0.3, timeout=120
    )
    VideoInferResultsOperator(
        task_id="results",
        output_url=wait.output,
        destination="{{ params.results }}",
        videoinfer_conn_id="videoinfer_remote",
    )

# As vi_test_retry, with a storage URI: each try would sign a new URL, yet every retry must
# reconnect to the one job ("videoinfer_remote_slow": jobs run at least 4 s).
with DAG("vi_test_presigned_retry", schedule=None, start_date=START, catchup=False, params=PRESIGNED_PARAMS):
    VideoInferSubmitJobOperator(
        task_id="submit",
        input_url="{{ params.video }}",
        infer_fps=5,
        models=[MOTION],
        videoinfer_conn_id="videoinfer_remote_slow",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.3,
        wait_timeout=1,
        retries=30,
        retry_delay=datetime.timedelta(seconds=0),
    )

# One task submits a job and waits for it, with three retries and no delay between them: how many
# jobs the retries pay for after the job failed is up to resubmit_failed_jobs (default: never).
for dag_id, options in (
    ("vi_test_failed_job", {"deferrable": True}),  # the default policy, waiting in the triggerer
    ("vi_test_failed_job_always", {"resubmit_failed_jobs": True, "deferrable": False}),
    ("vi_test_failed_job_status_2", {"resubmit_failed_jobs": {2}, "deferrable": False}),
):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, params=PARAMS):
        upload = VideoInferUploadOperator(
            task_id="upload", video="{{ params.video }}", videoinfer_conn_id="videoinfer_slow"
        )
        VideoInferSubmitJobOperator(
            task_id="submit",
            input_url=upload.output,
            infer_fps=5,
            models=MODELS,
            videoinfer_conn_id="videoinfer_slow",
            wait_for_completion=True,
            poll_interval=0.3,
            retries=3,
            retry_delay=datetime.timedelta(seconds=0),
            **options,
        )

# A submit task with retries over an uploaded video (params.input_url), for the task store's tests:
# its store's writes fail in the database (tests/test_task_store.py).
with DAG(
    "vi_test_store_writes",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"input_url": Param("", type="string")},
):
    VideoInferSubmitJobOperator(
        task_id="submit",
        input_url="{{ params.input_url }}",
        infer_fps=5,
        models=[MOTION],
        retries=2,
        retry_delay=datetime.timedelta(seconds=0),
    )

# A deferred staging: the wait for the batch's count goes to the triggerer (tests/test_batch_staging_defer.py).
with DAG(
    "vi_test_batch_stage_deferred",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"source": Param("", type="string"), "batch_id": Param("", type="string")},
):
    VideoInferBatchStageOperator(
        task_id="stage",
        sources="{{ params.source }}",
        batch_id="{{ params.batch_id }}",
        poll_interval=0.2,
        deferrable=True,
    )

"""Quick start: upload a video, run inference on it, wait without holding a worker, summarise the results.

Run it against the local server with ``make demo``, or against the hosted API by pointing the
``videoinfer_default`` connection at it. Trigger it with a config such as::

    {"video": "/data/clip.mp4", "infer_fps": 5, "results_dir": "/data/results"}
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG, Param

from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

# The hosted API allows one poll a minute per job; the local server (``make demo``) allows more.
POLL_INTERVAL = float(os.environ.get("VIDEOINFER_POLL_INTERVAL", "60"))
DEFAULT_MODELS = [
    {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"},
    {"model_id": "motion-classification", "model_version": "1", "inference_type": "classification"},
]

with DAG(
    dag_id="videoinfer_quickstart",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    params={
        "video": Param("/tmp/videoinfer-sample.mp4", type="string", description="Path or storage URI of the video."),
        "infer_fps": Param(5, type="integer", minimum=1, maximum=120, description="Frames per second to sample."),
        "models": Param(DEFAULT_MODELS, type="array", description="Models to run on the video."),
        "results_dir": Param("/tmp/videoinfer-results", type="string", description="Where to keep the results."),
    },
    render_template_as_native_obj=True,
):
    upload = VideoInferUploadOperator(task_id="upload", video="{{ params.video }}")
    submit = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=upload.output,
        infer_fps="{{ params.infer_fps }}",
        models="{{ params.models }}",
    )
    wait = VideoInferJobSensor(
        task_id="wait",
        job_id=submit.output,
        poll_interval=POLL_INTERVAL,
        timeout=6 * 3600,
    )
    summarise = VideoInferResultsOperator(
        task_id="results",
        output_url=wait.output,
        destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/result.json",
        rows_destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/predictions.jsonl",
    )

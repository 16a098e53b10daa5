"""One task: submit a job on a video that is already online and wait for it in the triggerer.

``VideoInferSubmitJobOperator(wait_for_completion=True)`` returns the result's URL; a retry of the
task reconnects to the job it submitted instead of paying for a second one.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG, Param

from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator

with DAG(
    dag_id="videoinfer_submit_and_wait",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    params={"input_url": Param("https://example.com/video.mp4", type="string", description="Public video URL.")},
):
    VideoInferSubmitJobOperator(
        task_id="submit_and_wait",
        input_url="{{ params.input_url }}",
        infer_fps=5,
        models=[
            {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"},
            {"model_id": "sharpness-classification", "model_version": 1, "inference_type": "classification"},
        ],
        wait_for_completion=True,
        poll_interval=float(os.environ.get("VIDEOINFER_POLL_INTERVAL", "60")),
        retries=2,
        retry_delay=datetime.timedelta(minutes=1),
    )

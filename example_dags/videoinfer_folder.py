"""Process every video under a folder or bucket prefix: one upload/submit/wait/results chain per video.

Dynamic task mapping fans out over the videos found when the run starts; each chain runs on its
own, so one bad video fails only its own chain. Trigger with e.g.::

    {"source": "s3://my-bucket/incoming/", "results_dir": "s3://my-bucket/results"}
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_videoinfer.api import VIDEO_EXTENSIONS
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

POLL_INTERVAL = float(os.environ.get("VIDEOINFER_POLL_INTERVAL", "60"))
MODELS = [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}]

with DAG(
    dag_id="videoinfer_folder",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    params={
        "source": Param("file:///tmp/videoinfer-videos/", type="string", description="Folder or bucket prefix."),
        "results_dir": Param("file:///tmp/videoinfer-results/folder", type="string"),
        "infer_fps": Param(5, type="integer", minimum=1, maximum=120),
    },
    render_template_as_native_obj=True,
):

    @task
    def list_videos(source: str) -> list[str]:
        """Every video file directly under ``source`` (any supported extension, any case)."""
        root = ObjectStoragePath(source)
        videos = sorted(
            str(path)
            for path in root.iterdir()
            if path.is_file() and path.suffix.lstrip(".").lower() in VIDEO_EXTENSIONS
        )
        if not videos:
            raise ValueError(f"No video ({', '.join(VIDEO_EXTENSIONS)}) found under {source}.")
        return videos

    videos = list_videos("{{ params.source }}")
    upload = VideoInferUploadOperator.partial(task_id="upload").expand(video=videos)
    submit = VideoInferSubmitJobOperator.partial(
        task_id="submit", infer_fps="{{ params.infer_fps }}", models=MODELS
    ).expand(input_url=upload.output)
    wait = VideoInferJobSensor.partial(task_id="wait", poll_interval=POLL_INTERVAL, timeout=6 * 3600).expand(
        job_id=submit.output
    )
    VideoInferResultsOperator.partial(
        task_id="results",
        destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/{{ ti.map_index }}.json",
    ).expand(output_url=wait.output)

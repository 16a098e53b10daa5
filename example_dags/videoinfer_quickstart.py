"""Quick start: upload a video, run inference on it, wait without holding a worker, summarise the results.

Run it against the local server with ``make demo``, or against the hosted API by pointing the
``videoinfer_default`` connection at it. Trigger it with the defaults, or with a config such as::

    {"video": "/data/clip.mp4", "infer_fps": 5, "results_dir": "/data/results"}
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

# None: the connection's extra poll_interval (60 s unless it says: the hosted API allows one poll a minute
# per job; 1 s suits the local server). VIDEOINFER_POLL_INTERVAL overrides it for every task of the DAG.
POLL_INTERVAL = float(os.environ["VIDEOINFER_POLL_INTERVAL"]) if os.environ.get("VIDEOINFER_POLL_INTERVAL") else None
SAMPLE_VIDEO = os.environ.get("VIDEOINFER_SAMPLE_VIDEO", "/tmp/videoinfer-sample.mp4")
DEFAULT_MODELS = [
    {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"},
    {"model_id": "motion-classification", "model_version": "1", "inference_type": "classification"},
]
#: Downstream DAGs can be scheduled on this alias: each run adds an event of the file it kept.
RESULTS = AssetAlias("videoinfer-quickstart-results")
#: Every task gets two retries a minute apart: after a lost worker, a broker blip or an outage, the
#: retry of a submit reconnects to the job it paid for rather than submitting another.
DEFAULT_ARGS = {"retries": 2, "retry_delay": datetime.timedelta(minutes=1)}

DOC_MD = f"""
### Video inference quick start

**upload** the video → **submit** a job of the models → **wait** for it in the triggerer →
**results**: keep the result file, a contact sheet of the busiest frames and one row per
prediction, and return a summary per model.

- Triggered with the defaults, the first task writes a 6-second sample video of moving
  rectangles to `{SAMPLE_VIDEO}` (on the worker that runs it; needs the provider's `server`
  extra), so the DAG runs as is against the local server (`videoinfer-server`).
- The connection `videoinfer_default` says where the API is (hosted or local) and holds the key.
- The results of each run are kept under `results_dir/<run id>/` and announced through the
  asset alias `{RESULTS.name}`. Open the task instance of **results** and its *Video inference*
  tab for a chart of what was found when, and the contact sheet.
"""


@task
def sample_video(video: str) -> str:
    """Return ``video``; when it is the default sample and missing, generate it first."""
    if video == SAMPLE_VIDEO and not Path(video).exists():
        try:
            from videoinfer_server.sample import make_sample_video
        except ImportError as err:  # the local server distribution (videoinfer-server) is not installed
            raise VideoInferValidationError(
                f"The sample video {video} is missing and cannot be generated without the local server: "
                "install videoinfer-server (pip install airflow-provider-videoinfer[server]), or trigger "
                "with your own 'video'."
            ) from err
        make_sample_video(video, seconds=6.0, fps=24.0, size=(480, 270), objects=3)
    return video


with DAG(
    dag_id="videoinfer_quickstart",
    description="Upload a video, run video inference on it, wait in the triggerer, keep and summarise the results.",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    default_args=DEFAULT_ARGS,
    params={
        "video": Param(
            SAMPLE_VIDEO,
            type="string",
            minLength=1,
            title="Video",
            description=(
                "Path or storage URI (s3://..., gs://...) of an mp4, avi, mkv or webm video. "
                "The default sample is generated when missing."
            ),
        ),
        "infer_fps": Param(
            5,
            type="integer",
            minimum=1,
            maximum=120,
            title="Frames per second",
            description="Frames per second of video to run the models on (at most the video's frame rate).",
        ),
        "models": Param(
            DEFAULT_MODELS,
            type="array",
            items={"type": "object"},
            minItems=1,
            title="Models",
            description=(
                "One object per model: model_id, model_version, inference_type and optional "
                'inference_params, e.g. {"confidence": 0.4}.'
            ),
        ),
        "results_dir": Param(
            "/tmp/videoinfer-results",
            type="string",
            minLength=1,
            title="Results folder",
            description="Local folder or storage URI under which each run keeps its results.",
        ),
    },
    render_template_as_native_obj=True,
):
    video = sample_video("{{ params.video }}")
    upload = VideoInferUploadOperator(task_id="upload", video=video)
    submit = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=upload.output,
        infer_fps="{{ params.infer_fps }}",
        models="{{ params.models }}",
        video=video,  # the facts and the estimate are read from it: an upload's URL cannot be read back
    )
    wait = VideoInferJobSensor(
        task_id="wait",
        job_id=submit.output,
        deferrable=True,  # wait in the triggerer, freeing the worker slot
        poll_interval=POLL_INTERVAL,
        timeout=6 * 3600,
    )
    summarise = VideoInferResultsOperator(
        task_id="results",
        output_url=wait.output,
        destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/result.json",
        rows_destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/predictions.jsonl",
        video=video,
        outlets=[RESULTS],
    )

"""Map each task over a list of videos with ``.expand``: one upload, job, wait and results per video.

The operators are mapped one by one (``partial(...).expand(...)``); each task instance's label in
the UI (``map_index_template``) is its video's file name, and the results operator draws each
video's contact sheet from ``video=`` of the same item. Trigger with e.g.::

    {"videos": ["/data/north.mp4", "/data/south.mp4"], "results_dir": "/data/results"}
"""

from __future__ import annotations

import datetime
from pathlib import Path

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

SAMPLES = ["/tmp/videoinfer-mapped/north.mp4", "/tmp/videoinfer-mapped/south.mp4"]
MODELS = [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}]
RESULTS = AssetAlias("videoinfer-mapped-results")
#: Every task gets two retries a minute apart: after a lost worker, a broker blip or an outage, the
#: retry of a submit reconnects to the job it paid for rather than submitting another.
DEFAULT_ARGS = {"retries": 2, "retry_delay": datetime.timedelta(minutes=1)}
#: The video of this task instance's item: the mapped tasks all follow the order of ``params.videos``.
VIDEO = "{{ params.videos[ti.map_index] }}"
#: Each mapped task instance is labelled in the UI and the results view by its video's file name.
VIDEO_NAME = "{{ params.videos[ti.map_index].rsplit('/', 1)[-1] }}"

DOC_MD = f"""
### One mapped task per step, over a list of videos

**videos** → **upload** → **submit** → **wait** → **results**, each mapped with `.expand` over the
videos of the `videos` param, in their order. Each task instance is labelled by its video's file
name, and **results** draws the contact sheet of its own video (`video=` per item).

- Triggered with the defaults, **videos** writes two sample videos (needs the provider's
  `server` extra), so the DAG runs as is against the local server.
- The waits are paced by the connection's extra `poll_interval` (60 s unless it says; 1 for the
  local server).
- Results go to `results_dir/<run id>/<video name>/result.json`, announced through the asset alias
  `{RESULTS.name}`.
"""


with DAG(
    dag_id="videoinfer_mapped",
    description="Upload, submit, wait and keep results for each video of a list, every task mapped with .expand.",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    default_args=DEFAULT_ARGS,
    params={
        "videos": Param(
            SAMPLES,
            type="array",
            items={"type": "string"},
            minItems=1,
            title="Videos",
            description="Paths or storage URIs of the videos, one chain of tasks each.",
        ),
        "results_dir": Param(
            "/tmp/videoinfer-results/mapped",
            type="string",
            minLength=1,
            title="Results folder",
            description="Local folder or storage URI under which each run keeps one folder of results per video.",
        ),
    },
    render_template_as_native_obj=True,  # "{{ params.videos }}" renders as the list itself
):

    @task
    def videos(paths: list[str]) -> list[str]:
        """The videos to map over; the default samples are generated when missing."""
        for path in paths:
            if path in SAMPLES and not Path(path).exists():
                try:
                    from videoinfer_server.sample import make_sample_video
                except ImportError as err:  # the local server distribution (videoinfer-server) is not installed
                    raise VideoInferValidationError(
                        f"The sample video {path} is missing and cannot be generated without the local server: "
                        "install videoinfer-server, or trigger with your own videos."
                    ) from err
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                make_sample_video(Path(path), seconds=3.0, fps=10.0, objects=2)
        return paths

    upload = VideoInferUploadOperator.partial(task_id="upload", map_index_template=VIDEO_NAME).expand(
        video=videos("{{ params.videos }}")
    )
    submit = VideoInferSubmitJobOperator.partial(
        task_id="submit", infer_fps=5, models=MODELS, map_index_template=VIDEO_NAME
    ).expand(input_url=upload.output)
    wait = VideoInferJobSensor.partial(
        task_id="wait", deferrable=True, timeout=6 * 3600, map_index_template=VIDEO_NAME
    ).expand(job_id=submit.output)
    VideoInferResultsOperator.partial(
        task_id="results",
        video=VIDEO,  # this item's video, for its contact sheet
        destination=(
            "{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/"
            "{{ params.videos[ti.map_index].rsplit('/', 1)[-1] }}/result.json"
        ),
        outlets=[RESULTS],
        map_index_template=VIDEO_NAME,
    ).expand(output_url=wait.output)

"""Process every video under a folder or bucket prefix: one input/submit/wait/results chain per video.

A mapped task group fans out over the videos found when the run starts. Each video's chain
depends only on itself, so a corrupt video fails its own chain while the others finish and keep
their results. Videos in object storage are not uploaded: the service reads them from the
bucket through a presigned URL. Trigger with e.g.::

    {"source": "s3://my-bucket/incoming/", "results_dir": "s3://my-bucket/results"}
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, Param, task, task_group

from airflow_provider_videoinfer import storage
from airflow_provider_videoinfer.contract import VIDEO_EXTENSIONS
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.cost import folder_estimate
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

# None: the connection's extra poll_interval (60 s unless it says: the hosted API allows one poll a minute
# per job; 1 s suits the local server). VIDEOINFER_POLL_INTERVAL overrides it for every task of the DAG.
POLL_INTERVAL = float(os.environ["VIDEOINFER_POLL_INTERVAL"]) if os.environ.get("VIDEOINFER_POLL_INTERVAL") else None
SOURCE = "file:///tmp/videoinfer-videos/"
MODELS = [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}]
RESULTS = AssetAlias("videoinfer-folder-results")
#: Every task gets two retries a minute apart: after a lost worker, a broker blip or an outage, the
#: retry of a submit reconnects to the job it paid for rather than submitting another.
DEFAULT_ARGS = {"retries": 2, "retry_delay": datetime.timedelta(minutes=1)}
#: Every task of a chain is labelled in the UI by its video's file name rather than a map index.
VIDEO_NAME = "{{ ti.xcom_pull(task_ids='list_videos')[ti.map_index] | basename }}"

DOC_MD = f"""
### One chain per video of a folder

**list_videos** lists the videos directly under `source` (mp4, avi, mkv, webm, any case);
**estimate** reads each one's facts from its container (a few ranged reads, never the video) and
logs what the whole folder will bill before any job is submitted; then, for each video, the group
**video** runs **input** → **submit** → **wait** → **results**. Mapped tasks are labelled by the
video's file name.

- **input** uploads a local video to the service. A video in object storage (`s3://`, `gs://`,
  `abfs://`...) is not uploaded: **submit** gives the service a presigned URL and the service reads
  the video from the bucket, so no byte of it goes through the worker. For the same reason only
  uploaded videos get a contact sheet (drawing one reads the video). The local server reads
  presigned URLs when started with `--allow-remote-urls`.

- A video the service cannot read fails its own chain only: the other chains go on, keep their
  results under `results_dir/<run id>/<video name>/` and announce them through the asset alias
  `{RESULTS.name}`. The run ends *failed* so that the bad video is noticed.
- With the defaults, the DAG writes two sample videos to `{SOURCE}` when that folder is missing
  or empty (on the worker that runs **list_videos**; needs the provider's `server` extra).
"""


def basename(path: str) -> str:
    """The last part of a path or URI, e.g. ``clip.mp4`` of ``s3://bucket/in/clip.mp4``."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _write_samples(folder: ObjectStoragePath) -> None:
    try:
        from videoinfer_server.sample import make_sample_video
    except ImportError as err:  # the local server distribution (videoinfer-server) is not installed
        raise VideoInferValidationError(
            f"No video under {folder}, and sample videos cannot be generated without the local server: "
            "install videoinfer-server (pip install airflow-provider-videoinfer[server]), or trigger with a "
            "'source' that holds videos."
        ) from err
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(("sample-a.mp4", "sample-b.mp4")):
        make_sample_video(str(folder / name), seconds=4.0, fps=24.0, objects=2 + seed, seed=seed)


with DAG(
    dag_id="videoinfer_folder",
    description="Video inference on every video of a folder or bucket prefix, one chain per video.",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    default_args=DEFAULT_ARGS,
    user_defined_filters={"basename": basename},
    params={
        "source": Param(
            SOURCE,
            type="string",
            minLength=1,
            title="Source folder",
            description=(
                "Folder or bucket prefix (file:///..., s3://bucket/prefix/, ...) whose videos are processed. "
                "The default folder gets two sample videos when it is missing or empty."
            ),
        ),
        "results_dir": Param(
            "file:///tmp/videoinfer-results/folder",
            type="string",
            minLength=1,
            title="Results folder",
            description="Local folder or storage URI under which each run keeps one folder of results per video.",
        ),
        "infer_fps": Param(
            5,
            type="integer",
            minimum=1,
            maximum=120,
            title="Frames per second",
            description="Frames per second of video to run the model on (at most the videos' frame rate).",
        ),
    },
    render_template_as_native_obj=True,
):

    @task
    def list_videos(source: str) -> list[str]:
        """Every video file directly under ``source`` (any supported extension, any case)."""
        root = ObjectStoragePath(source)

        def found() -> list[str]:
            if not root.exists():
                return []
            return sorted(
                str(path)
                for path in root.iterdir()
                if path.is_file() and path.suffix.lstrip(".").lower() in VIDEO_EXTENSIONS
            )

        videos = found()
        if not videos and source == SOURCE:
            _write_samples(root)
            videos = found()
        if not videos:
            raise VideoInferValidationError(
                f"No video ({', '.join(VIDEO_EXTENSIONS)}) found directly under {source}: "
                "put videos there or trigger with another 'source'."
            )
        return videos

    # The upload URL it returns is a credential for the uploaded video: kept out of the task log.
    @task(task_id="input", multiple_outputs=True, show_return_value_in_logs=False, map_index_template=VIDEO_NAME)
    def video_input(video: str) -> dict[str, str]:
        """The job's ``input_url``, and the video to draw a contact sheet from ("": no sheet; Airflow 3.0
        keeps no None in XCom).

        A storage URI whose file system can sign URLs goes to the submit task as it is (it
        presigns it): nothing is uploaded. Anything else is uploaded to the service.
        """
        if storage.is_storage_uri(video) and storage.can_presign(video):
            logging.getLogger("airflow.task").info(
                "%s stays in its bucket: the service reads it through a presigned URL, no upload.", video
            )
            return {"input_url": video, "sheet_video": ""}
        return {"input_url": VideoInferHook().upload_video(video), "sheet_video": video}

    @task_group(group_id="video")
    def process(video: str) -> None:
        """One video's chain; each task instance depends only on the same video's upstream."""
        source = video_input(video)
        submit = VideoInferSubmitJobOperator(
            task_id="submit",
            input_url=source["input_url"],
            infer_fps="{{ params.infer_fps }}",
            models=MODELS,
            map_index_template=VIDEO_NAME,
        )
        wait = VideoInferJobSensor(
            task_id="wait",
            job_id=submit.output,
            deferrable=True,  # wait in the triggerer, not in a worker slot per video
            poll_interval=POLL_INTERVAL,
            timeout=6 * 3600,
            map_index_template=VIDEO_NAME,
        )
        VideoInferResultsOperator(
            task_id="results",
            output_url=wait.output,
            destination=(
                "{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/"
                "{{ ti.xcom_pull(task_ids='list_videos')[ti.map_index] | basename }}/result.json"
            ),
            video=source["sheet_video"],
            outlets=[RESULTS],
            map_index_template=VIDEO_NAME,
        )

    @task(task_id="estimate")
    def estimate_folder(videos: list[str], infer_fps: int) -> dict[str, Any]:
        """What the whole folder will bill, before any job: each video's facts and estimate, and the total."""
        return folder_estimate(videos, infer_fps, len(MODELS), logging.getLogger("airflow.task"))

    videos = list_videos("{{ params.source }}")
    estimate_folder(videos, "{{ params.infer_fps }}") >> process.expand(video=videos)

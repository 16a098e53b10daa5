"""One task submits a job on a video that is already online and waits for it in the triggerer.

``VideoInferSubmitJobOperator(wait_for_completion=True)`` returns the result's URL; a retry of the
task reconnects to the job it submitted instead of paying for a second one. Trigger with e.g.::

    {"input_url": "https://example.com/clip.mp4"}
"""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator

RESULTS = AssetAlias("videoinfer-submit-and-wait-results")
# None: the connection's extra poll_interval (60 s unless it says; 1 s suits the local server).
# VIDEOINFER_POLL_INTERVAL overrides it.
POLL_INTERVAL = float(os.environ["VIDEOINFER_POLL_INTERVAL"]) if os.environ.get("VIDEOINFER_POLL_INTERVAL") else None
#: Every task gets two retries a minute apart: after a lost worker, a broker blip or an outage, the
#: retry of a submit reconnects to the job it paid for rather than submitting another.
DEFAULT_ARGS = {"retries": 2, "retry_delay": datetime.timedelta(minutes=1)}

DOC_MD = f"""
### Submit a job and wait for it, in one task

**input_url** → **submit_and_wait** (submits, then waits in the triggerer without holding a
worker slot) → **results** (keeps the result file and summarises it).

- `input_url` is any public http(s) URL of a video, or an upload's signed URL. Left empty (the
  default), **input_url** uploads a generated 4-second sample video first (needs the provider's
  `server` extra), so the DAG runs as is against the local server.
- A retry of **submit_and_wait** reconnects to the job it submitted: no second paid job.
- The results go to `results_dir/<run id>/result.json`, announced through the asset alias
  `{RESULTS.name}`.
"""


@task(show_return_value_in_logs=False)  # an uploaded sample's URL is a credential: kept out of the task log
def input_url(params: dict | None = None) -> str:
    """Return the ``input_url`` param; when it is empty, upload a generated sample video and return its URL."""
    url = ((params or {}).get("input_url") or "").strip()
    if url:
        return url
    try:
        from videoinfer_server.sample import make_sample_video
    except ImportError as err:  # the local server distribution (videoinfer-server) is not installed
        raise VideoInferValidationError(
            "input_url is empty and no sample video can be generated without the local server: install "
            "videoinfer-server (pip install airflow-provider-videoinfer[server]), or trigger with the URL "
            "of a video."
        ) from err
    with tempfile.TemporaryDirectory(prefix="videoinfer-sample-") as folder:
        sample = Path(folder) / "sample.mp4"
        make_sample_video(sample, seconds=4.0, fps=24.0, objects=2)
        return VideoInferHook().upload_video(sample)


with DAG(
    dag_id="videoinfer_submit_and_wait",
    description="Submit a video inference job and wait for it in the triggerer, in one task; keep its results.",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example"],
    default_args=DEFAULT_ARGS,
    params={
        "input_url": Param(
            None,
            type=["null", "string"],
            title="Video URL",
            description="Public http(s) URL of a video. Leave empty to upload a generated sample video first.",
        ),
        "results_dir": Param(
            "/tmp/videoinfer-results/submit_and_wait",
            type="string",
            minLength=1,
            title="Results folder",
            description="Local folder or storage URI under which each run keeps its result file.",
        ),
    },
):
    submit = VideoInferSubmitJobOperator(
        task_id="submit_and_wait",
        input_url=input_url(),
        infer_fps=5,
        models=[
            {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"},
            {"model_id": "sharpness-classification", "model_version": 1, "inference_type": "classification"},
        ],
        wait_for_completion=True,
        deferrable=True,  # the wait runs in the triggerer, freeing the worker slot
        poll_interval=POLL_INTERVAL,
    )
    VideoInferResultsOperator(
        task_id="results",
        output_url=submit.output,
        destination="{{ params.results_dir }}/{{ run_id | replace(':', '_') }}/result.json",
        outlets=[RESULTS],
    )

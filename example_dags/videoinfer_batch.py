"""Roboflow Batch Processing: a folder or bucket of videos, one capped Workflow job, results kept and summarised.

**stage** fills a staging batch with the videos under ``source``: videos in a bucket (``s3://``,
``abfs://``...) are staged by reference (presigned on the worker; the service reads them from the
bucket), local ones are uploaded; it then waits in the triggerer until the batch holds them all.
**run** runs one Workflow job on the batch, capped at ``max_runtime_seconds`` of machine time,
waiting in the triggerer; a retry reconnects to its job,
a kill or timeout aborts it. **results** keeps the job's output batch under ``results_dir`` (complete
or not at all) and **report** logs its summary. Trigger with e.g.::

    {"source": "s3://aws_default@my-bucket/incoming/", "workflow_id": "my-workflow"}
"""

from __future__ import annotations

import datetime
import logging
import os

from airflow.sdk import DAG, Asset, ObjectStoragePath, Param, task

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.operators.batch import VideoInferBatchJobOperator
from airflow_provider_videoinfer.operators.batch_results import VideoInferBatchResultsOperator
from airflow_provider_videoinfer.operators.batch_staging import VideoInferBatchStageOperator, is_video_name

POLL_INTERVAL = float(os.environ.get("VIDEOINFER_POLL_INTERVAL", "60"))
#: Videos in a bucket when the deployment names one, else a local folder (sample videos written there).
SOURCE = os.environ.get("VIDEOINFER_BATCH_SOURCE", "file:///tmp/videoinfer-batch-videos/")
RESULTS_DIR = os.environ.get("VIDEOINFER_BATCH_RESULTS", "file:///tmp/videoinfer-results/batch")
RESULTS = Asset("videoinfer-batch-results")
DEFAULT_ARGS = {"retries": 2, "retry_delay": datetime.timedelta(minutes=1)}

DOC_MD = """
### One capped Batch Processing job on a folder or bucket of videos

**prepare** checks `source` (and writes two sample videos to the default local folder when it is
empty) → **stage** (by reference for a bucket: nothing goes through the worker) → **run** (one
Workflow job, capped at `max_runtime_seconds` of cumulative machine time: 1 credit per CPU hour,
4 per GPU hour; aborted if the task is killed or its wait times out) → **results** (the job's
output batch, kept under `results_dir/<job id>/`) → **report** (videos, rows, detections per class).

On the local server, `workflow_id` is one of its Workflows (`detect-motion`, `detect-people`,
`detect-faces`, `video-overview`) or a model id.
"""


def _write_samples(folder: ObjectStoragePath) -> None:
    try:
        from videoinfer_server.sample import make_sample_video
    except ImportError as err:
        raise VideoInferValidationError(
            f"No video under {folder}, and sample videos cannot be generated without the local server: install "
            "videoinfer-server, or trigger with a 'source' that holds videos."
        ) from err
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(("sample-a.mp4", "sample-b.mp4")):
        make_sample_video(str(folder / name), seconds=3.0, fps=10.0, objects=2 + seed, seed=seed)


with DAG(
    dag_id="videoinfer_batch",
    description="Roboflow Batch Processing: stage videos, one capped Workflow job, results kept and summarised.",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["videoinfer", "example", "batch-processing"],
    default_args=DEFAULT_ARGS,
    params={
        "source": Param(
            SOURCE, type="string", minLength=1, title="Videos", description="Folder, bucket prefix or glob."
        ),
        "workflow_id": Param(
            "detect-motion",
            type="string",
            minLength=1,
            title="Workflow id",
            description="A Workflow of the workspace (on the local server: one of its Workflows or a model id).",
        ),
        "max_runtime_seconds": Param(
            1800,
            type="integer",
            minimum=60,
            title="Runtime cap (s)",
            description="Cumulative machine time across all machines; the job stops at the cap.",
        ),
        "results_dir": Param(
            RESULTS_DIR,
            type="string",
            minLength=1,
            title="Results folder",
            description="Local folder or storage URI under which the job's results are kept (one folder per job).",
        ),
    },
    render_template_as_native_obj=True,
):

    @task
    def prepare(source: str) -> str:
        """Check that ``source`` holds videos; the default local folder gets two samples when empty."""
        root = ObjectStoragePath(source)
        if root.exists() and root.is_dir():
            videos = [path for path in root.iterdir() if path.is_file() and is_video_name(path.name)]
        else:
            videos = [root] if root.exists() else []
        if not videos and source == SOURCE and root.protocol in ("", "file", "local"):
            _write_samples(root)
            videos = list(root.iterdir())
        if not videos:
            raise VideoInferValidationError(f"No video found in {source}: put videos there or trigger with another.")
        logging.getLogger("airflow.task").info("%d video(s) under %s.", len(videos), source)
        return source

    stage = VideoInferBatchStageOperator(
        task_id="stage", sources=prepare("{{ params.source }}"), poll_interval=POLL_INTERVAL, deferrable=True
    )
    run = VideoInferBatchJobOperator(
        task_id="run",
        batch_id=stage.output,
        workflow_id="{{ params.workflow_id }}",
        max_runtime_seconds="{{ params.max_runtime_seconds }}",  # type: ignore[arg-type]
        machine_type="cpu",
        max_video_fps=5,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        wait_timeout=6 * 3600,
    )
    results = VideoInferBatchResultsOperator(
        task_id="results",
        job_id=run.output,
        destination="{{ params.results_dir }}",
        outlets=[RESULTS],
    )

    @task
    def report(summary: dict) -> dict:
        """Log what the job found."""
        logging.getLogger("airflow.task").info(
            "Batch job %s: %s video(s), %s row(s), detections per class %s; kept in %s.",
            summary["job_id"],
            summary["videos"],
            summary["rows"],
            summary["detections"],
            summary["destination"],
        )
        return summary

    report(results.output)

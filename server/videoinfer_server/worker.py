"""The job workers: a bounded pool of threads taking job ids from a queue.

A job runs in one pass over the video: the sampled frames go to every model of the job in turn.
When the server stops, a running job is interrupted between frames and left ``running`` in the
database, so the next start runs it again from the beginning.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videoinfer_contract.facts import local_facts
from videoinfer_contract.redaction import redact
from videoinfer_contract.results import encode_frame_result
from videoinfer_server.config import ServerConfig
from videoinfer_server.frames import Interrupted, VideoReader
from videoinfer_server.inputs import RemoteInput, UploadInput, classify_input, fetch_remote
from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.models.base import VideoContext, VideoFrame
from videoinfer_server.models.registry import ModelRegistry
from videoinfer_server.paths import Paths
from videoinfer_server.queue_workers import QueueWorkers
from videoinfer_server.result_file import ResultWriter
from videoinfer_server.signing import Signer
from videoinfer_server.store import Job, Store

log = logging.getLogger(__name__)


class JobRunner:
    """Run jobs on ``config.workers`` threads.

    :param config: the server settings.
    :param store: the job database.
    :param registry: the models.
    :param signer: checks upload URLs given as ``input_url``.
    :param paths: the data dir layout.
    """

    def __init__(self, config: ServerConfig, store: Store, registry: ModelRegistry, signer: Signer, paths: Paths):
        self._config = config
        self._store = store
        self._registry = registry
        self._signer = signer
        self._paths = paths
        self._workers = QueueWorkers("videoinfer-worker", config.workers, self.run)
        self._stop = self._workers.stopping

    def start(self) -> None:
        """Start the workers and queue again the jobs a previous run left unfinished."""
        self._store.requeue_interrupted()
        for job in self._store.unfinished_jobs():
            log.info("resuming job %s", job.job_id)
            self._workers.submit(job.job_id)
        self._workers.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the workers; a running job is interrupted and stays queued for the next start."""
        self._workers.stop(timeout)

    def submit(self, job_id: str) -> None:
        """Queue a job recorded in the store."""
        self._workers.submit(job_id)

    def run(self, job_id: str) -> None:
        """Run one job to its end (or until the server stops)."""
        if not self._store.start_job(job_id):
            return
        job = self._store.get_job(job_id)
        if job is None:
            return
        work_dir = self._paths.job_work(job_id)
        shutil.rmtree(work_dir, ignore_errors=True)
        try:
            frames = self._process(job, work_dir)
        except Interrupted:
            log.info("job %s interrupted by shutdown; it will run again at the next start", job_id)
            return
        except JobFailure as failure:
            # A failure may quote the input_url: redacted, as a presigned URL's signature is a credential.
            message = redact(failure.message)
            log.info("job %s failed with code %d: %s", job_id, failure.code, message)
            self._store.finish_job(job_id, int(failure.code), message)
        except Exception as err:
            log.exception("job %s failed with an internal error", job_id)
            self._store.finish_job(
                job_id,
                int(FailureCode.INTERNAL),
                redact(f"internal error of the local server: {type(err).__name__}: {err}"),
            )
        else:
            log.info("job %s succeeded with %d sampled frames", job_id, frames)
            self._store.finish_job(job_id, 0, None, frames)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    def _input_path(self, job: Job, work_dir: Path) -> Path:
        try:
            source = classify_input(job.input_url, self._signer)
        except ValueError as err:
            raise JobFailure(FailureCode.INPUT_NOT_FETCHABLE, str(err)) from None
        if isinstance(source, UploadInput):
            upload = self._store.get_upload(source.upload_id)
            path = self._paths.upload(source.upload_id, upload.ext) if upload else None
            if upload is None or path is None or not path.exists():
                raise JobFailure(
                    FailureCode.INPUT_NOT_FETCHABLE,
                    "nothing was uploaded to this signed URL, or the upload was deleted after the "
                    f"retention period ({self._config.retention_days:g} days): upload the video again.",
                )
            return path
        assert isinstance(source, RemoteInput)
        if not self._config.allow_remote_urls:
            raise JobFailure(FailureCode.INPUT_NOT_FETCHABLE, "remote input URLs are disabled on this server.")
        return fetch_remote(source.url, work_dir, self._config.max_upload_bytes, self._config.remote_timeout_seconds)

    def _process(self, job: Job, work_dir: Path) -> int:
        models = [
            (spec, self._registry.resolve(spec["model_id"], spec["model_version"], spec["inference_type"]))
            for spec in job.models
        ]
        path = self._input_path(job, work_dir)
        reader = VideoReader(path, local_facts(path).frame_rate)
        try:
            reader.check_infer_fps(job.infer_fps)
            context = VideoContext(fps=reader.fps, infer_fps=job.infer_fps, width=reader.width, height=reader.height)
            sessions: list[tuple[str, Callable[[VideoFrame], Any]]] = []
            for spec, model in models:
                opened: Any = model.open(spec.get("inference_params") or {}, context)
                sessions.append((spec["model_id"], getattr(opened, "infer", opened)))
            writer = ResultWriter(work_dir / "spool", [model_id for model_id, _ in sessions])
            try:
                for frame in reader.frames(job.infer_fps, self._stop):
                    results: list[bytes] = []
                    for model_id, infer in sessions:
                        try:
                            results.append(encode_frame_result(infer(frame)))
                        except Exception:
                            log.warning(
                                "model %s failed on frame %d of job %s",
                                model_id,
                                frame.index,
                                job.job_id,
                                exc_info=True,
                            )
                            results.append(b"null")
                    writer.add(frame, results)
                writer.finish(self._paths.result(job.job_id))
            finally:
                writer.close()
            return len(writer.frame_offsets)
        finally:
            reader.close()

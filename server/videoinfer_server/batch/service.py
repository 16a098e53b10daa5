"""What the Batch Processing routes call: batches, uploads, reference ingests, jobs; owning store and threads.

Every refusal is a :class:`BatchRequestError` with the HTTP status and a message naming the value
and the fix; the routes answer it as ``{"error": message}``, the contract's error body.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from videoinfer_contract import batch as contract
from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.redaction import redact
from videoinfer_contract.validation import _validate_http_url, validate_video_file_name
from videoinfer_server.batch.ingest import IngestFetcher
from videoinfer_server.batch.runner import BatchRunner
from videoinfer_server.batch.store import ABORTED, FAILED, QUEUED, BatchRow, BatchStore, JobRow
from videoinfer_server.batch.workflows import IMAGE_INPUT_NAME, resolve_workflow
from videoinfer_server.config import ServerConfig
from videoinfer_server.models.registry import ModelRegistry

log = logging.getLogger(__name__)

#: Webhook deliveries: attempts and the pause between them (Choice: the service's policy is undocumented).
WEBHOOK_ATTEMPTS = 3
WEBHOOK_PAUSE_SECONDS = 1.0


class BatchRequestError(Exception):
    """A request the server refuses.

    :param status: the HTTP status.
    :param message: what is wrong and what to do.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BatchPaths:
    """Where Batch Processing keeps its files: ``<data_dir>/batch/``.

    :param data_dir: the server's data dir.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "batch"
        self.files = self.root / "files"
        self.work = self.root / "work"
        self.database = self.root / "batch.sqlite3"
        for folder in (self.root, self.files, self.work):
            folder.mkdir(parents=True, exist_ok=True)

    def file(self, file_id: str, ext: str) -> Path:
        """A stored file's bytes, by its generated id, never its user-given name."""
        return self.files / f"{file_id}.{ext}"


class Notifier:
    """Posts webhooks in the background: JSON, ``Authorization: Bearer rf_<workspace>`` [RF-APIREF].

    :param workspace: the server's workspace.
    """

    def __init__(self, workspace: str) -> None:
        self._workspace = workspace

    def __call__(self, url: str, payload: dict[str, Any]) -> None:
        """Send ``payload`` to ``url`` from a daemon thread, up to :data:`WEBHOOK_ATTEMPTS` times."""
        threading.Thread(target=self._deliver, args=(url, payload), name="videoinfer-webhook", daemon=True).start()

    def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        import httpx

        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            body = {**payload, "delivery_attempt": attempt}
            try:
                answer = httpx.post(
                    url, json=body, headers={"Authorization": f"Bearer rf_{self._workspace}"}, timeout=10
                )
                if answer.status_code < 300:
                    return
                log.info("webhook %s answered %d (attempt %d)", redact(url), answer.status_code, attempt)
            except httpx.HTTPError as err:
                log.info("webhook %s failed: %s (attempt %d)", redact(url), type(err).__name__, attempt)
            time.sleep(WEBHOOK_PAUSE_SECONDS)


class BatchService:
    """Batch Processing of one server.

    :param config: the settings.
    :param registry: the models.
    """

    def __init__(self, config: ServerConfig, registry: ModelRegistry) -> None:
        self.config = config
        self.registry = registry
        self.paths = BatchPaths(config.data_dir)
        self.store = BatchStore(self.paths.database)
        notifier = Notifier(config.workspace)
        self.runner = BatchRunner(config, self.store, registry, self.paths.file, self.paths.work, notifier)
        self.ingest = IngestFetcher(config, self.store, self.paths.file, self.paths.work, notifier)

    def start(self) -> None:
        """Resume unfinished jobs and ingests."""
        self.runner.start()
        self.ingest.start()

    def stop(self) -> None:
        """Stop the threads (unfinished work resumes at the next start) and close the database."""
        self.runner.stop()
        self.ingest.stop()
        self.store.close()

    def sweep(self, cutoff: float) -> int:
        """Delete batches created before ``cutoff`` (and their files) and ended jobs; return how many files."""
        removed = 0
        for batch in self.store.list_batches(0, -1):
            if batch.created_at < cutoff:
                for item in self.store.delete_batch(batch.batch_id):
                    self.paths.file(item.file_id, item.ext).unlink(missing_ok=True)
                    removed += 1
        for job in self.store.list_jobs(0, -1):
            if job.is_terminal and job.updated_at < cutoff:
                self.store.delete_job(job.job_id)
        return removed

    # -- checks -----------------------------------------------------------------------------------

    def check_workspace(self, workspace: str) -> None:
        """403 unless ``workspace`` is this server's."""
        if workspace != self.config.workspace:
            raise BatchRequestError(
                403,
                f"workspace {workspace!r} is not this server's: its API key belongs to workspace "
                f"{self.config.workspace!r} (the 'workspace' that GET / answers)",
            )

    @staticmethod
    def valid(check: Any, *args: Any) -> Any:
        """Run a contract check; 400 with its message when it refuses."""
        try:
            return check(*args)
        except InvalidInputError as err:
            raise BatchRequestError(400, str(err)) from None

    def batch(self, batch_id: str) -> BatchRow:
        """A batch, or 404."""
        self.valid(contract.validate_staging_batch_id, batch_id)
        batch = self.store.get_batch(batch_id)
        if batch is None:
            raise BatchRequestError(
                404, f"batch {batch_id!r} not found: it was never created, or expired after the retention period"
            )
        return batch

    def job(self, job_id: str) -> JobRow:
        """A job, or 404."""
        self.valid(contract.validate_batch_job_id, job_id)
        job = self.store.get_job(job_id)
        if job is None:
            raise BatchRequestError(404, f"job {job_id!r} not found on this server")
        return job

    # -- data staging -----------------------------------------------------------------------------

    def _input_batch(self, batch_id: str, display_name: str | None, batch_type: str) -> None:
        self.valid(contract.validate_staging_batch_id, batch_id)
        batch = self.store.add_batch(batch_id, display_name or batch_id, batch_type, "videos")
        if batch.batch_type != batch_type or batch.content_type != "videos":
            raise BatchRequestError(
                409,
                f"batch {batch_id!r} is a {batch.batch_type} of {batch.content_type}; a {batch_type} of videos "
                "cannot be added to it (single uploads and bulk ingests do not mix): use another batch id",
            )

    def new_upload(self, batch_id: str, file_name: Any, display_name: str | None) -> tuple[str, str]:
        """Register a video of a simple batch whose bytes come by ``PUT``; return its file id and name."""
        name = self.valid(validate_video_file_name, file_name)
        self._input_batch(batch_id, display_name, "simple-batch")
        file_id = uuid.uuid4().hex
        ext = PurePosixPath(name).suffix.lstrip(".").lower()
        for old in self.store.add_file(file_id, batch_id, name, "videos", ext):
            self.paths.file(old.file_id, old.ext).unlink(missing_ok=True)
        return file_id, name

    def ingest_references(self, batch_id: str, display_name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Register video references fetched in the background; an ingest seen before is ``duplicated``."""
        if not self.config.allow_remote_urls:
            raise BatchRequestError(
                400,
                "this local server does not fetch remote URLs, so it cannot ingest video references: start it "
                "with --allow-remote-urls, or upload the videos (upload/video)",
            )
        references = body.get("videoReferences")
        if body.get("videoReferencesURL") is not None:
            references = self._references_file(body["videoReferencesURL"])
        if not isinstance(references, list) or not references:
            raise BatchRequestError(
                400, 'give videoReferences, a non-empty list of {"name": ..., "url": ...}, or videoReferencesURL'
            )
        checked = []
        for index, reference in enumerate(references):
            if not isinstance(reference, dict):
                raise BatchRequestError(400, f"videoReferences[{index}] must be an object with 'name' and 'url'")
            name = self.valid(validate_video_file_name, reference.get("name"))
            url = self.valid(_validate_http_url, reference.get("url"), f"videoReferences[{index}].url", "a video URL")
            checked.append((name, url))
        ingest_id = body.get("ingestId")
        if ingest_id is not None and (not isinstance(ingest_id, str) or not ingest_id.strip()):
            raise BatchRequestError(400, f"ingestId must be a non-empty string, got {ingest_id!r}")
        notifications_url = body.get("notificationsURL")
        if notifications_url is not None:
            notifications_url = self.valid(_validate_http_url, notifications_url, "notificationsURL", "your webhook")
        fingerprint = contract.definition_fingerprint(sorted(checked))
        self._input_batch(batch_id, display_name, "sharded-batch")
        earlier = self.store.find_ingest(batch_id, ingest_id, fingerprint)
        if earlier is not None:
            return {"ingestId": earlier.ingest_id, "duplicated": True}
        ingest_id = ingest_id or uuid.uuid4().hex
        shard_id = uuid.uuid4().hex
        self.store.add_shard(shard_id, batch_id, ingest_id, fingerprint, len(checked), notifications_url)
        for name, url in checked:
            ext = PurePosixPath(name).suffix.lstrip(".").lower()
            self.store.add_file(uuid.uuid4().hex, batch_id, name, "videos", ext, source_url=url, shard_id=shard_id)
        self.ingest.submit(shard_id)
        return {"ingestId": ingest_id, "duplicated": False}

    def _references_file(self, url: Any) -> list[Any]:
        import json

        import httpx

        text_url = self.valid(_validate_http_url, url, "videoReferencesURL", "the https URL of a JSONL references file")
        try:
            answer = httpx.get(text_url, timeout=self.config.remote_timeout_seconds, follow_redirects=True)
            answer.raise_for_status()
            return [json.loads(line) for line in answer.text.splitlines() if line.strip()]
        except (httpx.HTTPError, ValueError) as err:
            raise BatchRequestError(
                400, f"videoReferencesURL {redact(text_url)!r} could not be read as JSONL: {type(err).__name__}"
            ) from None

    # -- jobs -------------------------------------------------------------------------------------

    def create_job(self, job_id: str, name: str | None, body: Any) -> bool:
        """Create and queue a job; False when the same job exists already (idempotent), 409 when it differs."""
        self.valid(contract.validate_batch_job_id, job_id)
        definition = self.valid(contract.VideoJobDefinition.from_payload, body)
        fingerprint = definition.fingerprint
        existing = self.store.get_job(job_id)
        if existing is None:
            self.check_workspace(definition.workspace)
            if definition.image_input_name not in (None, IMAGE_INPUT_NAME):
                raise BatchRequestError(
                    400,
                    f"processingSpecification.imageInputName {definition.image_input_name!r} is not an input of the "
                    f"local Workflows: their one image input is {IMAGE_INPUT_NAME!r} (or leave it out)",
                )
            try:
                resolve_workflow(definition.workflow_id, self.registry)
            except LookupError as err:
                raise BatchRequestError(400, str(err)) from None
            self.batch(definition.batch_id)
            created = self.store.add_job(job_id, name or job_id, body, fingerprint)
            if created is not None:
                self.store.add_log(job_id, "info", "job-created", {"workflowId": definition.workflow_id})
                self.runner.submit(job_id)
                return True
            existing = self.store.get_job(job_id)
            assert existing is not None
        if existing.fingerprint != fingerprint:
            raise BatchRequestError(
                409,
                f"job {job_id!r} exists with a different definition: a job id names one job for good. Read it with "
                f"GET /jobs/{job_id}, or choose another job id for the new definition",
            )
        return False

    def abort(self, job_id: str) -> dict[str, Any]:
        """Abort a job; idempotent on an ended job."""
        self.job(job_id)
        if self.runner.abort(job_id):
            return {"status": "ok", "message": f"job {job_id} aborted"}
        return {"status": "ok", "message": f"job {job_id} had already ended; nothing to abort"}

    def restart(self, job_id: str, body: Any) -> dict[str, Any]:
        """Run an aborted or failed job again, with the body's overrides; 409 for any other job."""
        job = self.job(job_id)
        override = self.valid(contract.RestartOverride.from_payload, body)
        if job.state not in (FAILED, ABORTED):
            raise BatchRequestError(
                409,
                f"job {job_id!r} is {job.state}: only an aborted or failed job restarts. Wait for it to end, or "
                "create a new job",
            )
        overrides = job.overrides
        payload = override.to_payload()
        if payload is not None:
            overrides = [*overrides, payload]
        restarted = self.store.update_job(
            job_id,
            state=QUEUED,
            error=False,
            current_stage=None,
            stages=[],
            overrides=overrides,
            notification={"type": "job-restarted", "message": f"job {job_id} restarted"},
            only_if=(FAILED, ABORTED),
        )
        if not restarted:
            raise BatchRequestError(409, f"job {job_id!r} changed state meanwhile: read it and try again")
        self.store.add_log(job_id, "info", "job-restarted", {"overrides": payload or {}})
        self.runner.submit(job_id)
        return {"status": "ok", "message": f"job {job_id} restarted"}

"""Reference ingests (``bulk-upload/video-references``): the server fetches each video, in the background.

Remote fetching is the server's existing allowance (``allow_remote_urls``), done by the same
:func:`videoinfer_server.inputs.fetch_remote` that reads a video job's remote ``input_url``. A
reference's signed URL is kept only until its video is fetched, and never logged unredacted.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videoinfer_contract.redaction import redact
from videoinfer_server.batch.store import BROKEN, PENDING, READY, BatchStore
from videoinfer_server.config import ServerConfig
from videoinfer_server.inputs import fetch_remote
from videoinfer_server.job_failures import JobFailure
from videoinfer_server.queue_workers import QueueWorkers

log = logging.getLogger(__name__)


class IngestFetcher:
    """One thread fetching the videos of reference ingests, shard by shard.

    :param config: the settings (size limit, timeout).
    :param store: the batch store.
    :param file_path: where a stored file's bytes go, from its id and extension.
    :param work_dir: scratch folder for downloads.
    :param notify: posts an ingest's webhook: ``notify(url, payload)``.
    """

    def __init__(
        self,
        config: ServerConfig,
        store: BatchStore,
        file_path: Callable[[str, str], Path],
        work_dir: Path,
        notify: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._config = config
        self._store = store
        self._file_path = file_path
        self._work = work_dir
        self._notify = notify
        self._workers = QueueWorkers("videoinfer-batch-ingest", 1, self.fetch)
        self._stop = self._workers.stopping

    def start(self) -> None:
        """Queue the shards a stopped server left pending and start the thread."""
        for shard in self._store.shards(None, 0, -1):
            if shard.status_type == "info":
                self._workers.submit(shard.shard_id)
        self._workers.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread (a shard being fetched is fetched again at the next start)."""
        self._workers.stop(timeout)

    def submit(self, shard_id: str) -> None:
        """Fetch a shard's videos."""
        self._workers.submit(shard_id)

    def fetch(self, shard_id: str) -> None:
        """Fetch every pending video of a shard, then record its status and send its webhook."""
        shards = [shard for shard in self._store.shards(None, 0, -1) if shard.shard_id == shard_id]
        if not shards:
            return
        shard = shards[0]
        files = [item for item in self._store.files(shard.batch_id, "", None, 0, -1) if item.shard_id == shard_id]
        failed: list[dict[str, str]] = []
        for item in files:
            if self._stop.is_set():
                return
            if item.state != PENDING or not item.source_url:
                if item.state == BROKEN:
                    failed.append({"file_name": item.file_name, "reason": item.error or "failed"})
                continue
            work = self._work / f"ingest-{item.file_id}"
            try:
                fetched = fetch_remote(
                    item.source_url, work, self._config.max_upload_bytes, self._config.remote_timeout_seconds
                )
                final = self._file_path(item.file_id, item.ext)
                os.replace(fetched, final)
                self._store.set_file_state(item.file_id, READY, size=final.stat().st_size)
            except JobFailure as err:
                reason = redact(err.message)
                log.info("ingest of %s into batch %s failed: %s", item.file_name, shard.batch_id, reason)
                self._store.set_file_state(item.file_id, BROKEN, error=reason)
                failed.append({"file_name": item.file_name, "reason": reason})
            finally:
                shutil.rmtree(work, ignore_errors=True)
        ok = len(files) - len(failed)
        name, status = ("ingested", "success") if not failed else ("ingest-failed", "error")
        if failed and ok:
            name = "partially-ingested"
        self._store.finish_shard(shard_id, name, status, {"ingestedFiles": ok, "failedFiles": failed})
        log.info("ingest %s of batch %s: %d of %d videos fetched", shard.ingest_id, shard.batch_id, ok, len(files))
        if shard.notifications_url:
            self._notify(
                shard.notifications_url,
                {
                    "type": "roboflow-data-staging-notification-v1",
                    "event_id": shard_id,
                    "ingest_id": shard.ingest_id,
                    "batch_id": shard.batch_id,
                    "shard_id": shard_id,
                    "notification": {
                        "type": "ingest-status-notification-v1",
                        "success": not failed,
                        "error_details": None
                        if not failed
                        else {"type": "files-failed", "reason": f"{len(failed)} of {len(files)} videos failed"},
                    },
                    "delivery_attempt": 1,
                },
            )

"""Everything one server instance owns besides HTTP: store, signer, models, workers, batch, retention sweep."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time

from videoinfer_server.batch.service import BatchService
from videoinfer_server.config import ServerConfig
from videoinfer_server.fault_injection import FaultRegistry
from videoinfer_server.models.registry import ModelRegistry, build_registry
from videoinfer_server.paths import Paths
from videoinfer_server.signing import Signer, load_or_create_secret
from videoinfer_server.store import Job, Store
from videoinfer_server.worker import JobRunner

log = logging.getLogger(__name__)


class PollLimiter:
    """Remembers when each job was last polled, to emulate the hosted rate limit."""

    def __init__(self, min_interval: float) -> None:
        self._min_interval = min_interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, job_id: str) -> float:
        """Record a poll; return 0 when allowed, else the seconds to wait."""
        if self._min_interval <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            last = self._last.get(job_id)
            if last is not None and now - last < self._min_interval:
                return self._min_interval - (now - last)
            self._last[job_id] = now
            return 0.0


class ServerRuntime:
    """The non-HTTP parts of a server, started and stopped by the app's lifespan.

    :param config: the settings.
    :param registry: the models; built from ``config`` when None.
    """

    def __init__(self, config: ServerConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.paths = Paths(config.data_dir)
        self.paths.create()
        self.signer = Signer(load_or_create_secret(config.data_dir))
        self.registry = registry or build_registry(config.models, load_entry_points=config.load_entry_points)
        self.store = Store(self.paths.database)
        self.runner = JobRunner(config, self.store, self.registry, self.signer, self.paths)
        self.batch = BatchService(config, self.registry)
        self.faults = FaultRegistry()
        self.polls = PollLimiter(config.poll_min_interval)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def start(self) -> None:
        """Clean leftovers, sweep expired data, resume unfinished jobs, start the workers and the sweeper."""
        shutil.rmtree(self.paths.work, ignore_errors=True)
        self.paths.work.mkdir(parents=True, exist_ok=True)
        self.sweep()
        self.runner.start()
        self.batch.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="videoinfer-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        """Stop the workers (running jobs resume at the next start) and close the database."""
        self._stop.set()
        self.runner.stop()
        self.batch.stop()
        if self._sweeper is not None:
            self._sweeper.join(5)
        self.store.close()

    def reported_status(self, job: Job) -> int:
        """The contract's ``status`` of a job: 1 until it ends, and during ``min_job_seconds`` in any case."""
        if self.config.min_job_seconds > 0 and time.time() < job.created_at + self.config.min_job_seconds:
            return 1
        return job.code if job.state.is_terminal else 1

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.config.sweep_interval_seconds):
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed")

    def sweep(self, now: float | None = None) -> int:
        """Delete uploads, results and finished jobs older than the retention period; return how many files."""
        cutoff = (now if now is not None else time.time()) - self.config.retention_seconds
        removed = 0
        for upload in self.store.expired_uploads(cutoff):
            for path in self.paths.uploads.glob(f"{upload.upload_id}.*"):
                path.unlink(missing_ok=True)
                removed += 1
            self.store.delete_upload(upload.upload_id)
        for job in self.store.expired_jobs(cutoff):
            result = self.paths.result(job.job_id)
            if result.exists():
                result.unlink(missing_ok=True)
                removed += 1
            self.store.delete_job(job.job_id)
        removed += self.batch.sweep(cutoff)
        # Files no row points to any more (e.g. a crash between the file and the database).
        for folder in (self.paths.uploads, self.paths.results):
            for entry in os.scandir(folder):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        if removed:
            log.info("retention sweep deleted %d files", removed)
        return removed

"""The server's state in SQLite (``<data_dir>/jobs.sqlite3``): uploads and jobs.

One connection shared by the threads behind a lock; every write commits at once, so a server
killed at any point restarts with what it had acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoinfer_contract.jobs import JobStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    ext TEXT NOT NULL,
    created_at REAL NOT NULL,
    uploaded_at REAL,
    size INTEGER
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    code INTEGER NOT NULL,
    input_url TEXT NOT NULL,
    infer_fps INTEGER NOT NULL,
    models TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    forced_code INTEGER,
    forced_error TEXT,
    frames INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
"""


@dataclass(frozen=True)
class Job:
    """One row of the ``jobs`` table."""

    job_id: str
    state: JobStatus
    code: int
    input_url: str
    infer_fps: int
    models: list[dict[str, Any]]
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    forced_code: int | None
    forced_error: str | None
    frames: int | None
    attempts: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["state"] = JobStatus(data["state"])
        data["models"] = json.loads(data["models"])
        return cls(**data)


@dataclass(frozen=True)
class Upload:
    """One row of the ``uploads`` table."""

    upload_id: str
    file_name: str
    ext: str
    created_at: float
    uploaded_at: float | None
    size: int | None


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """One connection shared by threads (behind the caller's lock), autocommit, WAL, with ``schema`` applied."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(schema)
    return conn


class Store:
    """Uploads and jobs, persisted in SQLite.

    :param path: the database file; created with its tables if missing.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self._conn = open_database(path, _SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    # -- uploads -------------------------------------------------------------------------------

    def add_upload(self, upload_id: str, file_name: str, ext: str) -> None:
        """Record a signed upload URL handed out (the file itself comes with the PUT)."""
        with self._cursor() as db:
            db.execute(
                "INSERT INTO uploads (upload_id, file_name, ext, created_at) VALUES (?, ?, ?, ?)",
                (upload_id, file_name, ext, time.time()),
            )

    def get_upload(self, upload_id: str) -> Upload | None:
        """Return an upload by id, or None."""
        with self._cursor() as db:
            row = db.execute("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
        return Upload(**dict(row)) if row else None

    def mark_uploaded(self, upload_id: str, size: int) -> None:
        """Record that the upload's bytes arrived in full."""
        with self._cursor() as db:
            db.execute(
                "UPDATE uploads SET uploaded_at = ?, size = ? WHERE upload_id = ?",
                (time.time(), size, upload_id),
            )

    def expired_uploads(self, before: float) -> list[Upload]:
        """Uploads created before ``before`` (a POSIX time)."""
        with self._cursor() as db:
            rows = db.execute("SELECT * FROM uploads WHERE created_at < ?", (before,)).fetchall()
        return [Upload(**dict(row)) for row in rows]

    def delete_upload(self, upload_id: str) -> None:
        """Forget an upload."""
        with self._cursor() as db:
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, job_id: str, input_url: str, infer_fps: int, models: list[dict[str, Any]]) -> None:
        """Record a new queued job."""
        with self._cursor() as db:
            db.execute(
                "INSERT INTO jobs (job_id, state, code, input_url, infer_fps, models, created_at) "
                "VALUES (?, ?, 1, ?, ?, ?, ?)",
                (job_id, JobStatus.QUEUED.value, input_url, infer_fps, json.dumps(models), time.time()),
            )

    def get_job(self, job_id: str) -> Job | None:
        """Return a job by id, or None."""
        with self._cursor() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list_jobs(self) -> list[Job]:
        """All jobs, oldest first."""
        with self._cursor() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created_at, rowid").fetchall()
        return [Job.from_row(row) for row in rows]

    def unfinished_jobs(self) -> list[Job]:
        """Queued and running jobs, oldest first: what a restarted server must run again."""
        with self._cursor() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE state IN (?, ?) ORDER BY created_at, rowid",
                (JobStatus.QUEUED.value, JobStatus.RUNNING.value),
            ).fetchall()
        return [Job.from_row(row) for row in rows]

    def requeue_interrupted(self) -> int:
        """Put back in the queue the jobs a stopped server left running; return how many."""
        with self._cursor() as db:
            cur = db.execute(
                "UPDATE jobs SET state = ? WHERE state = ?", (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
            )
            return cur.rowcount

    def start_job(self, job_id: str) -> bool:
        """Mark a queued job as running; False when it is not queued (so no job runs twice at once)."""
        with self._cursor() as db:
            cur = db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, attempts = attempts + 1 WHERE job_id = ? AND state = ?",
                (JobStatus.RUNNING.value, time.time(), job_id, JobStatus.QUEUED.value),
            )
            return cur.rowcount == 1

    def finish_job(self, job_id: str, code: int, error: str | None = None, frames: int | None = None) -> None:
        """End a job with ``code`` (0 success, above 1 failure); a forced failure set by the fault
        API takes precedence over the outcome of processing."""
        with self._cursor() as db:
            row = db.execute("SELECT forced_code, forced_error FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                return
            if row["forced_code"] is not None:
                code, error = row["forced_code"], row["forced_error"]
            state = JobStatus.SUCCEEDED if code == 0 else JobStatus.FAILED
            db.execute(
                "UPDATE jobs SET state = ?, code = ?, error = ?, frames = ?, finished_at = ? WHERE job_id = ?",
                (state.value, code, error, frames, time.time(), job_id),
            )

    def force_failure(self, job_id: str, code: int, error: str) -> bool:
        """Make a job fail with ``code``: now when it has ended, else when processing ends."""
        with self._cursor() as db:
            job = self.get_job(job_id)
            if job is None:
                return False
            db.execute("UPDATE jobs SET forced_code = ?, forced_error = ? WHERE job_id = ?", (code, error, job_id))
            if job.state.is_terminal:
                db.execute(
                    "UPDATE jobs SET state = ?, code = ?, error = ? WHERE job_id = ?",
                    (JobStatus.FAILED.value, code, error, job_id),
                )
            return True

    def expired_jobs(self, before: float) -> list[Job]:
        """Finished jobs created before ``before``."""
        with self._cursor() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE created_at < ? AND state IN (?, ?)",
                (before, JobStatus.SUCCEEDED.value, JobStatus.FAILED.value),
            ).fetchall()
        return [Job.from_row(row) for row in rows]

    def delete_job(self, job_id: str) -> None:
        """Forget a job."""
        with self._cursor() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

"""Batch Processing state in SQLite (``<data_dir>/batch/batch.sqlite3``): batches, files, ingests, jobs, logs.

One connection behind a lock, every write committed at once (as :mod:`videoinfer_server.store`).
A job's stages and tasks are one JSON document (:class:`StageDoc` list), written whole by the runner.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from videoinfer_server.store import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    batch_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    job_id TEXT
);
CREATE TABLE IF NOT EXISTS batch_parts (
    batch_id TEXT NOT NULL,
    part_name TEXT NOT NULL,
    part_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    nested_content_type TEXT,
    description TEXT,
    PRIMARY KEY (batch_id, part_name)
);
CREATE TABLE IF NOT EXISTS batch_files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id TEXT NOT NULL UNIQUE,
    batch_id TEXT NOT NULL,
    part_name TEXT NOT NULL DEFAULT '',
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    ext TEXT NOT NULL,
    state TEXT NOT NULL,
    source_url TEXT,
    shard_id TEXT,
    size INTEGER,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_files_batch ON batch_files(batch_id, part_name, state, seq);
CREATE TABLE IF NOT EXISTS shards (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    shard_id TEXT NOT NULL UNIQUE,
    batch_id TEXT NOT NULL,
    ingest_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_name TEXT NOT NULL,
    status_type TEXT NOT NULL,
    objects INTEGER NOT NULL,
    metadata TEXT,
    notifications_url TEXT,
    event_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    current_stage TEXT,
    error INTEGER NOT NULL DEFAULT 0,
    notification TEXT,
    overrides TEXT NOT NULL DEFAULT '[]',
    stages TEXT NOT NULL DEFAULT '[]',
    runs INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS job_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    stage_id TEXT,
    task_id TEXT,
    severity TEXT NOT NULL,
    module TEXT NOT NULL,
    log_type TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs(job_id, seq);
"""

#: A job's states in the store; the wire shows them as ``isTerminal`` and ``error``.
QUEUED, RUNNING, SUCCEEDED, FAILED, ABORTED = "queued", "running", "succeeded", "failed", "aborted"
TERMINAL_STATES = (SUCCEEDED, FAILED, ABORTED)
#: A file's states: handed an upload URL or registered by reference; bytes stored; fetch failed.
PENDING, READY, BROKEN = "pending", "ready", "failed"


@dataclass
class TaskDoc:
    """One task of a stage (one video, or the export)."""

    task_id: str
    status_type: str
    notification: dict[str, Any]
    event_at: float
    progress: float | None = None


@dataclass
class StageDoc:
    """One stage of a job, with its tasks."""

    name: str
    status_type: str
    notification: dict[str, Any]
    started_at: float
    last_event_at: float
    output_batches: list[str]
    tasks: list[TaskDoc] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageDoc:
        tasks = [TaskDoc(**task) for task in data.pop("tasks", [])]
        return cls(**data, tasks=tasks)


@dataclass(frozen=True)
class BatchRow:
    """One staging batch."""

    batch_id: str
    display_name: str
    batch_type: str
    content_type: str
    created_at: float
    job_id: str | None


@dataclass(frozen=True)
class FileRow:
    """One file of a batch (an input video, a result file or an archive)."""

    seq: int
    file_id: str
    batch_id: str
    part_name: str
    file_name: str
    content_type: str
    ext: str
    state: str
    source_url: str | None
    shard_id: str | None
    size: int | None
    error: str | None
    created_at: float


@dataclass(frozen=True)
class ShardRow:
    """One reference ingest (one shard)."""

    seq: int
    shard_id: str
    batch_id: str
    ingest_id: str
    fingerprint: str
    status_name: str
    status_type: str
    objects: int
    metadata: dict[str, Any] | None
    notifications_url: str | None
    event_at: float


@dataclass(frozen=True)
class JobRow:
    """One job."""

    seq: int
    job_id: str
    name: str
    definition: dict[str, Any]
    fingerprint: str
    state: str
    current_stage: str | None
    error: bool
    notification: dict[str, Any] | None
    overrides: list[dict[str, Any]]
    stages: list[StageDoc]
    runs: int
    created_at: float
    updated_at: float

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (succeeded, failed or aborted)."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class LogRow:
    """One log entry of a job."""

    seq: int
    job_id: str
    created_at: float
    stage_id: str | None
    task_id: str | None
    severity: str
    module: str
    log_type: str
    payload: dict[str, Any]


class BatchStore:
    """Batch Processing state, persisted in SQLite.

    :param path: the database file; created with its tables if missing.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = open_database(path, _SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    # -- batches and parts ------------------------------------------------------------------------

    def add_batch(
        self, batch_id: str, display_name: str, batch_type: str, content_type: str, job_id: str | None = None
    ) -> BatchRow:
        """Create a batch unless it exists; return it as it is now."""
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO batches (batch_id, display_name, batch_type, content_type, created_at, job_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, display_name, batch_type, content_type, time.time(), job_id),
            )
            batch = self.get_batch(batch_id)
        assert batch is not None
        return batch

    def get_batch(self, batch_id: str) -> BatchRow | None:
        """A batch by id, or None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return BatchRow(**dict(row)) if row else None

    def list_batches(self, offset: int, limit: int) -> list[BatchRow]:
        """Batches, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM batches ORDER BY created_at, batch_id LIMIT ? OFFSET ?", (limit, offset)
            ).fetchall()
        return [BatchRow(**dict(row)) for row in rows]

    def delete_batch(self, batch_id: str) -> list[FileRow]:
        """Forget a batch, its parts, files and shards; return the files (to delete their bytes)."""
        with self._db() as db:
            files = self.files(batch_id, None, None, 0, -1)
            for table in ("batch_files", "batch_parts", "shards", "batches"):
                db.execute(f"DELETE FROM {table} WHERE batch_id = ?", (batch_id,))  # noqa: S608 -- fixed names
        return files

    def add_part(
        self, batch_id: str, part_name: str, part_type: str, content_type: str, nested: str | None, description: str
    ) -> None:
        """Declare a part of a multipart batch."""
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO batch_parts VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, part_name, part_type, content_type, nested, description),
            )

    def parts(self, batch_id: str) -> list[dict[str, Any]]:
        """The parts of a batch, by name."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM batch_parts WHERE batch_id = ? ORDER BY part_name", (batch_id,)).fetchall()
        return [dict(row) for row in rows]

    # -- files ------------------------------------------------------------------------------------

    def add_file(
        self,
        file_id: str,
        batch_id: str,
        file_name: str,
        content_type: str,
        ext: str,
        *,
        part_name: str = "",
        state: str = PENDING,
        source_url: str | None = None,
        shard_id: str | None = None,
        size: int | None = None,
    ) -> list[FileRow]:
        """Record a file; one of the same name in the same batch part is replaced. Return the replaced."""
        with self._db() as db:
            replaced = [
                FileRow(**dict(row))
                for row in db.execute(
                    "SELECT * FROM batch_files WHERE batch_id = ? AND part_name = ? AND file_name = ?",
                    (batch_id, part_name, file_name),
                ).fetchall()
            ]
            db.execute(
                "DELETE FROM batch_files WHERE batch_id = ? AND part_name = ? AND file_name = ?",
                (batch_id, part_name, file_name),
            )
            db.execute(
                "INSERT INTO batch_files (file_id, batch_id, part_name, file_name, content_type, ext, state, "
                "source_url, shard_id, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file_id,
                    batch_id,
                    part_name,
                    file_name,
                    content_type,
                    ext,
                    state,
                    source_url,
                    shard_id,
                    size,
                    time.time(),
                ),
            )
        return replaced

    def get_file(self, file_id: str) -> FileRow | None:
        """A file by id, or None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM batch_files WHERE file_id = ?", (file_id,)).fetchone()
        return FileRow(**dict(row)) if row else None

    def set_file_state(self, file_id: str, state: str, size: int | None = None, error: str | None = None) -> None:
        """Mark a file stored (with its size) or failed (with why); a fetched file forgets its source URL."""
        with self._db() as db:
            db.execute(
                "UPDATE batch_files SET state = ?, size = ?, error = ?, source_url = NULL WHERE file_id = ?",
                (state, size, error, file_id),
            )

    def files(self, batch_id: str, part_name: str | None, state: str | None, offset: int, limit: int) -> list[FileRow]:
        """A batch's files in the order they came, of one part (None: every part) and state (None: any)."""
        query = "SELECT * FROM batch_files WHERE batch_id = ?"
        args: list[Any] = [batch_id]
        if part_name is not None:
            query += " AND part_name = ?"
            args.append(part_name)
        if state is not None:
            query += " AND state = ?"
            args.append(state)
        query += " ORDER BY seq LIMIT ? OFFSET ?"
        with self._db() as db:
            rows = db.execute(query, (*args, limit, offset)).fetchall()
        return [FileRow(**dict(row)) for row in rows]

    def count(self, batch_id: str, part_name: str | None) -> int:
        """How many stored files a batch (or one part of it) holds."""
        return len(self.files(batch_id, part_name, READY, 0, -1))

    # -- shards (reference ingests) ---------------------------------------------------------------

    def add_shard(
        self,
        shard_id: str,
        batch_id: str,
        ingest_id: str,
        fingerprint: str,
        objects: int,
        notifications_url: str | None,
    ) -> None:
        """Record a reference ingest, pending."""
        with self._db() as db:
            db.execute(
                "INSERT INTO shards (shard_id, batch_id, ingest_id, fingerprint, status_name, status_type, objects, "
                "notifications_url, event_at) VALUES (?, ?, ?, ?, 'ingest-pending', 'info', ?, ?, ?)",
                (shard_id, batch_id, ingest_id, fingerprint, objects, notifications_url, time.time()),
            )

    def find_ingest(self, batch_id: str, ingest_id: str | None, fingerprint: str) -> ShardRow | None:
        """An earlier ingest of the same batch with this ingest id, or (without one) the same references."""
        with self._db() as db:
            if ingest_id is not None:
                row = db.execute(
                    "SELECT * FROM shards WHERE batch_id = ? AND ingest_id = ?", (batch_id, ingest_id)
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT * FROM shards WHERE batch_id = ? AND fingerprint = ?", (batch_id, fingerprint)
                ).fetchone()
        return _shard(row) if row else None

    def finish_shard(self, shard_id: str, status_name: str, status_type: str, metadata: dict[str, Any]) -> None:
        """Record an ingest's end."""
        with self._db() as db:
            db.execute(
                "UPDATE shards SET status_name = ?, status_type = ?, metadata = ?, event_at = ? WHERE shard_id = ?",
                (status_name, status_type, json.dumps(metadata), time.time(), shard_id),
            )

    def shards(self, batch_id: str | None, offset: int, limit: int) -> list[ShardRow]:
        """Ingests of a batch (None: every batch), oldest first."""
        with self._db() as db:
            if batch_id is None:
                rows = db.execute("SELECT * FROM shards ORDER BY seq LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM shards WHERE batch_id = ? ORDER BY seq LIMIT ? OFFSET ?", (batch_id, limit, offset)
                ).fetchall()
        return [_shard(row) for row in rows]

    # -- jobs -------------------------------------------------------------------------------------

    def add_job(self, job_id: str, name: str, definition: dict[str, Any], fingerprint: str) -> JobRow | None:
        """Record a new queued job; None when the id is taken (the caller then compares fingerprints)."""
        now = time.time()
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, name, definition, fingerprint, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, name, json.dumps(definition), fingerprint, QUEUED, now, now),
            )
            return self.get_job(job_id) if cursor.rowcount == 1 else None

    def get_job(self, job_id: str) -> JobRow | None:
        """A job by id, or None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list_jobs(self, offset: int, limit: int) -> list[JobRow]:
        """Jobs, oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY seq LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [_job(row) for row in rows]

    def jobs_in(self, *states: str) -> list[JobRow]:
        """Jobs in any of ``states``, oldest first."""
        marks = ", ".join("?" for _ in states)
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY seq", states).fetchall()  # noqa: S608
        return [_job(row) for row in rows]

    def update_job(self, job_id: str, *, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        """Set columns of a job (``stages`` as :class:`StageDoc` list, ``notification`` and ``overrides``
        as JSON values), only while its state is one of ``only_if`` when given; return whether it was."""
        encoded = dict(values)
        if "stages" in encoded:
            encoded["stages"] = json.dumps([asdict(stage) for stage in encoded["stages"]])
        for key in ("notification", "overrides"):
            if key in encoded:
                encoded[key] = json.dumps(encoded[key])
        if "error" in encoded:
            encoded["error"] = int(bool(encoded["error"]))
        encoded["updated_at"] = time.time()
        assignments = ", ".join(f"{key} = ?" for key in encoded)
        query = f"UPDATE jobs SET {assignments} WHERE job_id = ?"  # noqa: S608 -- keys are column names
        args: list[Any] = [*encoded.values(), job_id]
        if only_if:
            query += f" AND state IN ({', '.join('?' for _ in only_if)})"
            args.extend(only_if)
        with self._db() as db:
            return db.execute(query, args).rowcount == 1

    def delete_job(self, job_id: str) -> None:
        """Forget a job and its logs."""
        with self._db() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM job_logs WHERE job_id = ?", (job_id,))

    # -- logs -------------------------------------------------------------------------------------

    def add_log(
        self,
        job_id: str,
        severity: str,
        log_type: str,
        payload: dict[str, Any],
        *,
        stage_id: str | None = None,
        task_id: str | None = None,
        module: str = "local-batch-runner",
    ) -> None:
        """Append a log entry to a job."""
        with self._db() as db:
            db.execute(
                "INSERT INTO job_logs (job_id, created_at, stage_id, task_id, severity, module, log_type, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, time.time(), stage_id, task_id, severity, module, log_type, json.dumps(payload)),
            )

    def logs(self, job_id: str, severity: str | None, offset: int, limit: int) -> list[LogRow]:
        """A job's log entries, oldest first, of one severity (None: all)."""
        query = "SELECT * FROM job_logs WHERE job_id = ?"
        args: list[Any] = [job_id]
        if severity is not None:
            query += " AND severity = ?"
            args.append(severity)
        with self._db() as db:
            rows = db.execute(query + " ORDER BY seq LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [LogRow(**{**dict(row), "payload": json.loads(row["payload"])}) for row in rows]


def _shard(row: sqlite3.Row) -> ShardRow:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"]) if data["metadata"] else None
    return ShardRow(**data)


def _job(row: sqlite3.Row) -> JobRow:
    data = dict(row)
    data["definition"] = json.loads(data["definition"])
    data["notification"] = json.loads(data["notification"]) if data["notification"] else None
    data["overrides"] = json.loads(data["overrides"])
    data["stages"] = [StageDoc.from_json(stage) for stage in json.loads(data["stages"])]
    data["error"] = bool(data["error"])
    return JobRow(**data)

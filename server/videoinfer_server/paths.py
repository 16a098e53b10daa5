"""The data dir's layout: where the database, uploads, results and job work folders live."""

from __future__ import annotations

from pathlib import Path


class Paths:
    """The folders and files of one data dir.

    :param data_dir: the server's data dir; :meth:`create` makes the folders.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.uploads = data_dir / "uploads"
        self.results = data_dir / "results"
        self.work = data_dir / "work"
        self.database = data_dir / "jobs.sqlite3"

    def create(self) -> None:
        """Create the folders."""
        for folder in (self.root, self.uploads, self.results, self.work):
            folder.mkdir(parents=True, exist_ok=True)

    def upload(self, upload_id: str, ext: str) -> Path:
        """Where an upload's bytes are stored: under its generated id, never its user-given name."""
        return self.uploads / f"{upload_id}.{ext}"

    def result(self, job_id: str) -> Path:
        """A job's result file."""
        return self.results / f"{job_id}.json"

    def job_work(self, job_id: str) -> Path:
        """A job's private scratch folder (spool files, a fetched remote input), deleted when it ends."""
        return self.work / job_id

"""The local server's settings, one dataclass shared by the CLI, the app factory and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3


@dataclass
class ServerConfig:
    """Settings of one local server.

    :param data_dir: folder holding the SQLite database, the signing secret, uploads and results;
        created if missing. A server restarted on the same folder resumes its jobs.
    :param api_key: the key every API call must carry as ``api_key``.
    :param workspace: the name answered by ``GET /``.
    :param workers: number of job worker threads (jobs run in parallel up to this many).
    :param max_upload_bytes: largest accepted upload or remote download; bigger is refused with 413.
    :param upload_url_seconds: validity of a signed upload URL (its ``X-Goog-Expires``).
    :param result_url_seconds: validity of a signed result URL.
    :param retention_days: uploads, results and finished jobs older than this are deleted.
    :param sweep_interval_seconds: how often the retention sweep runs (it also runs at startup).
    :param allow_remote_urls: whether ``input_url`` may be any http(s) URL, fetched by the server;
        off by default, so such jobs are refused with 400.
    :param remote_timeout_seconds: timeout of each network operation of a remote fetch.
    :param poll_min_interval: when above 0, polling one job more often than this many seconds is
        answered 429 with ``Retry-After`` (emulates the hosted rate limit); 0 disables it.
    :param enable_faults: serve the fault injection endpoints ``/_faults``; 404 otherwise.
    :param min_job_seconds: a job reports status 1 for at least this many seconds after submission.
    :param models: extra model providers as ``"module:callable"`` strings.
    :param load_entry_points: also load models from the ``videoinfer.models`` entry point group.
    :param public_url: base URL put in signed URLs; by default the URL the request came to.
    :param batch_frame_delay_seconds: for tests: a Batch Processing task waits this long before each
        sampled frame (an abort ends the wait at once), so that a test can abort, kill or reach the
        runtime cap mid-run without guessing at timings; 0 (default) adds no delay.
    """

    data_dir: Path
    api_key: str
    workspace: str = "local"
    workers: int = 2
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_url_seconds: int = 3600
    result_url_seconds: int = 24 * 3600
    retention_days: float = 7.0
    sweep_interval_seconds: float = 3600.0
    allow_remote_urls: bool = False
    remote_timeout_seconds: float = 30.0
    poll_min_interval: float = 0.0
    enable_faults: bool = False
    min_job_seconds: float = 0.0
    models: list[str] = field(default_factory=list)
    load_entry_points: bool = True
    public_url: str | None = None
    batch_frame_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_upload_bytes < 1:
            raise ValueError(f"max_upload_bytes must be positive, got {self.max_upload_bytes}")
        if self.batch_frame_delay_seconds < 0:
            raise ValueError(f"batch_frame_delay_seconds must be 0 or more, got {self.batch_frame_delay_seconds}")
        if self.public_url:
            self.public_url = self.public_url.rstrip("/")

    @property
    def retention_seconds(self) -> float:
        """The retention period in seconds."""
        return self.retention_days * 86400.0

    @classmethod
    def field_names(cls) -> set[str]:
        """Names accepted as options by :func:`~videoinfer_server.launch.run_server`."""
        return {f.name for f in fields(cls)}

    def describe(self) -> dict[str, Any]:
        """Return the settings without the API key, for logs."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}

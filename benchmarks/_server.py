"""Start the project's local server as a separate process for a benchmark (so it does not share our CPU time)."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from videoinfer_server.launch import run_server_process


@contextmanager
def local_server(*args: str) -> Iterator[tuple[str, str]]:
    """Run ``videoinfer-server`` on a free loopback port with a fresh data dir; yield (base_url, api_key)."""
    api_key = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory(prefix="videoinfer-bench-") as data_dir,
        run_server_process(data_dir, api_key, "--log-level", "warning", *args) as base_url,
    ):
        yield base_url, api_key


def use_connection(base_url: str, api_key: str, **extra: object) -> None:
    """Point ``videoinfer_default`` at the server, through the environment."""
    os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"] = json.dumps(
        {"conn_type": "videoinfer", "host": base_url, "password": api_key, "extra": extra}
    )

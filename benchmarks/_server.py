"""Start the project's local server as a separate process for a benchmark (so it does not share our CPU time)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


@contextmanager
def local_server(*args: str) -> Iterator[tuple[str, str]]:
    """Run ``videoinfer-server`` on a free loopback port; yield (base_url, api_key)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = Path(tempfile.mkdtemp(prefix="videoinfer-bench-"))
    api_key = secrets.token_urlsafe(16)
    command = [sys.executable, "-m", "airflow_provider_videoinfer.server.cli", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--log-level", "warning", *args]
    process = subprocess.Popen(command, env={**os.environ, "VIDEOINFER_API_KEY": api_key})
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(base_url + "/", params={"api_key": api_key}, timeout=1).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("the local server did not start")
        yield base_url, api_key
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def use_connection(base_url: str, api_key: str, **extra: object) -> None:
    """Point ``videoinfer_default`` at the server, through the environment."""
    import json

    os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"] = json.dumps(
        {"conn_type": "videoinfer", "host": base_url, "password": api_key, "extra": extra}
    )

"""Start and stop local servers for tests, the demo and the benchmarks.

:func:`run_server` runs one in a background thread of the caller (``with run_server(tmp_path) as
server: server.base_url``); :func:`run_server_process` runs the ``videoinfer-server`` command in its
own process. The models made for tests are in :mod:`videoinfer_server.models.testing`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from videoinfer_contract.redaction import install_log_redaction
from videoinfer_server.config import ServerConfig


@dataclass
class RunningServer:
    """A server started by :func:`run_server`.

    :param base_url: e.g. ``"http://127.0.0.1:54321"``, without trailing slash.
    :param api_key: the key it accepts.
    :param data_dir: its data dir.
    :param config: its settings.
    """

    base_url: str
    api_key: str = field(repr=False)
    data_dir: Path
    config: ServerConfig
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (idempotent); running jobs are left to resume at the next start."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the local server at {self.base_url} did not stop within {timeout} s")


@contextmanager
def run_server(
    data_dir: str | Path,
    api_key: str = "test-key",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> Iterator[RunningServer]:
    """Start a server in a background thread, wait until it answers, stop it on exit.

    :param data_dir: its data dir; reuse it to restart a server with its jobs and uploads.
    :param api_key: the key it accepts.
    :param host: interface to listen on.
    :param port: port to listen on; 0 picks a free one (see ``base_url``).
    :param options: any other :class:`ServerConfig` field, e.g. ``enable_faults=True``.
    """
    import httpx
    import uvicorn

    from videoinfer_server.app import create_app

    unknown = set(options) - ServerConfig.field_names()
    if unknown:
        raise TypeError(f"unknown server options {sorted(unknown)}; valid: {sorted(ServerConfig.field_names())}")
    config = ServerConfig(data_dir=Path(data_dir), api_key=api_key, **options)
    app = create_app(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    uv_config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=3, access_log=False)
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="videoinfer-server", daemon=True)
    thread.start()
    host_part = f"[{host}]" if ":" in host else host
    running = RunningServer(f"http://{host_part}:{bound_port}", api_key, config.data_dir, config, server, thread)
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local videoinfer server failed to start; see the log")
            time.sleep(0.02)
        install_log_redaction()  # httpx logs the probe's URL, api_key included, where INFO is shown
        httpx.get(running.base_url + "/", params={"api_key": api_key}, timeout=10).raise_for_status()
        yield running
    finally:
        running.stop()
        sock.close()


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Stop a process this test run started: SIGTERM, then SIGKILL if it outlives ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def run_server_process(
    data_dir: str | Path,
    api_key: str,
    *args: str,
    output: IO[Any] | int | None = None,
    start_timeout: float = 30.0,
    port: int | None = None,
    python: str | Path | None = None,
) -> Iterator[str]:
    """Run the ``videoinfer-server`` command in its own process on a free loopback port; yield its base URL.

    For the demo and benchmarks (the server then takes no CPU time from the caller) and for tests of
    the command itself. The process is stopped on exit.

    :param data_dir: its data dir.
    :param api_key: the key it accepts, passed through ``VIDEOINFER_API_KEY``.
    :param args: more command-line options, e.g. ``"--min-job-seconds", "30"``.
    :param output: where its stdout and stderr go (a file, ``subprocess.PIPE``...); default inherited.
    :param start_timeout: seconds to wait for it to answer.
    :param port: the loopback port to listen on; default a free one. Pass the port of a stopped
        server (and its data dir) to restart it at the same address.
    :param python: the interpreter to run it with, e.g. another virtualenv's; default this one's.
    """
    import httpx

    port = port or free_port()
    module = "videoinfer_server.cli"
    options = ["--port", str(port), "--data-dir", str(data_dir), *args]
    command = [str(python or sys.executable), "-m", module, *options]
    env = {**os.environ, "VIDEOINFER_API_KEY": api_key}
    install_log_redaction()  # httpx logs each probe's URL, api_key included, where INFO is shown
    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                httpx.get(base_url + "/", params={"api_key": api_key}, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    shown = " ".join(["python -m", module, *options[:4]])
                    raise RuntimeError(f"the local server did not start: {shown} ...") from None
                time.sleep(0.1)
        yield base_url
    finally:
        stop_process(process)

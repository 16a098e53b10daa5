"""Bring the system tests' Airflow deployment up with its UI, for a person to look at, and down again.

``up`` starts the deployment of ``tests/system/deployment.py`` (the same code the system tests
run): Postgres, Airflow's api-server (the UI), scheduler, dag-processor and triggerer(s), a local
videoinfer server and moto's S3 server, plus Redis and two Celery workers with ``--executor
celery``. It puts two sample videos on S3, prints the UI's address, the login and a folder
example to trigger, and runs until Ctrl-C or SIGTERM, then stops every process by its pid.
``down`` sends SIGTERM to a running ``up`` (from another terminal).

Usage: ``python scripts/deployment.py up [--executor local|celery] [--port 8080]``,
``python scripts/deployment.py down`` (``make demo EXECUTOR=celery``, ``make demo-down``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "system"))

from deployment import ADMIN, Deployment  # noqa: E402
from object_store import CONN_ID  # noqa: E402

PID_FILE = ROOT / ".demo" / "deployment.pid"
SAMPLES = ("demo-a.mp4", "demo-b.mp4")


def port_or_free(port: int) -> int:
    """``port`` when nothing listens on it, else a free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def put_samples(d: Deployment) -> None:
    """Two generated sample videos under ``s3://moto_s3@videos/demo/``."""
    from videoinfer_server.sample import make_sample_video

    assert d.s3 is not None
    with tempfile.TemporaryDirectory(prefix="videoinfer-demo-") as folder:
        for seed, name in enumerate(SAMPLES):
            path = Path(folder) / name
            make_sample_video(path, seconds=6.0, fps=24.0, objects=2 + seed, seed=seed)
            d.s3.client().upload_file(str(path), "videos", f"demo/{name}")


def up(executor: str, port: int) -> None:
    """Start the deployment, say how to use it, wait for Ctrl-C or SIGTERM, stop it."""
    if PID_FILE.exists() and psutil.pid_exists(int(PID_FILE.read_text().split()[0])):
        sys.exit(f"A deployment already runs (pid {PID_FILE.read_text().split()[0]}): stop it with `make demo-down`.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    d = Deployment(
        ("default",),
        env={"VIDEOINFER_POLL_INTERVAL": "5"},
        executor=executor,
        triggerers=2 if executor == "celery" else 1,
        s3=True,
        api_port=port_or_free(port),
        system_dags=False,
    )
    PID_FILE.parent.mkdir(exist_ok=True)
    PID_FILE.write_text(f"{os.getpid()} {d.folder}\n")
    try:
        print(f"Starting the {executor} deployment in {d.folder} (about a minute)...", flush=True)
        d.start()
        put_samples(d)
        conf = {"source": f"s3://{CONN_ID}@videos/demo/", "results_dir": f"s3://{CONN_ID}@results/demo"}
        machines = ", ".join([*d.workers, *d.triggerers])
        print(
            f"\nAirflow's UI:  {d.api_url}\nLogin:         {ADMIN} / {d.admin_password}\n"
            f"Processes:     {', '.join(d.processes)} (workers and triggerers: {machines})\n"
            f"Logs:          {d.logs}\nS3 (moto):     {d.s3.url if d.s3 else '-'}\n\n"
            f"Trigger the DAG videoinfer_folder with this configuration to process the sample videos on S3:\n"
            f"  {json.dumps(conf)}\n\n"
            "Ctrl-C here, or `make demo-down` in another terminal, stops every process.",
            flush=True,
        )
        while not stop.wait(5):
            dead = [name for name, process in d.processes.items() if not process.alive()]
            if dead:
                print(f"Stopped running: {', '.join(dead)} (see {d.logs}); stopping the rest.", flush=True)
                break
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping every process of the deployment...", flush=True)
        left = d.stop()
        PID_FILE.unlink(missing_ok=True)
        print(f"Still running: {left}" if left else f"Stopped. Logs kept in {d.logs}", flush=True)


def down() -> None:
    """SIGTERM the running ``up`` (found by its pid file) and wait until it has stopped everything."""
    if not PID_FILE.exists():
        sys.exit("No deployment runs (no .demo/deployment.pid).")
    pid = int(PID_FILE.read_text().split()[0])
    try:
        process = psutil.Process(pid)
        ours = any(part.endswith("deployment.py") for part in process.cmdline())
    except psutil.NoSuchProcess:
        ours = False
    if not ours:
        PID_FILE.unlink(missing_ok=True)
        sys.exit(f"No deployment runs (pid {pid} is gone); removed the stale {PID_FILE}.")
    process.send_signal(signal.SIGTERM)
    print(f"Stopping the deployment (pid {pid})...", flush=True)
    begin = time.monotonic()
    process.wait(timeout=180)
    print(f"Stopped in {time.monotonic() - begin:.0f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the deployment and wait for Ctrl-C or `down`")
    start.add_argument("--executor", choices=["local", "celery"], default="celery")
    start.add_argument("--port", type=int, default=8080, help="the UI's port when free (default 8080)")
    commands.add_parser("down", help="stop the deployment started by `up`")
    args = parser.parse_args()
    if args.command == "up":
        up(args.executor, args.port)
    else:
        down()


if __name__ == "__main__":
    main()

"""A video in S3: presigned URL against streamed upload, from task start to job submitted, in one run.

moto's standalone S3 server holds one object (random bytes named ``bench.mp4``, generated in a
temporary folder); the local server runs in its own process with ``--allow-remote-urls``. Each
way runs in its own process, the "worker":

- ``presigned``: ``VideoInferSubmitJobOperator(input_url="s3://bench_s3@bench/bench.mp4")``: one
  metadata request to S3, a URL signed locally, the job submitted; the service fetches the object;
- ``upload``: ``VideoInferUploadOperator(video="s3://...")`` streams the object from S3 to the
  service's signed upload URL, then ``VideoInferSubmitJobOperator`` submits the job.

For each: the seconds from the task's start to the job submitted (the worker slot is then free),
the bytes the worker process received from its sockets (S3's and the service's answers: counted
by wrapping the ``recv`` methods of Python's sockets, which every client here reads through), and
the seconds until the service had read the whole video and the job ended (random bytes are no
video: the job fails as soon as it is decoded).

Usage: ``python benchmarks/bench_presigned.py [--size-mib 1024]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _server import local_server, use_connection  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

S3_URI = "s3://bench_s3@bench/bench.mp4"
MODELS = [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}]


_received = [0]


def _count_received_bytes() -> None:
    """Count every byte this process receives through Python's sockets (requests, httpx, aiohttp)."""
    import socket

    def counting(name: str, size_of: object) -> None:
        original = getattr(socket.socket, name)

        def wrapper(self: socket.socket, *args: object, **kwargs: object) -> object:
            answer = original(self, *args, **kwargs)
            _received[0] += size_of(answer)  # type: ignore[operator]
            return answer

        setattr(socket.socket, name, wrapper)

    counting("recv", len)
    counting("recv_into", lambda count: count)
    counting("recvfrom", lambda answer: len(answer[0]))
    counting("recvfrom_into", lambda answer: answer[0])


def child(method: str) -> dict:
    """Run one way in this process, as a task would; return its figures."""
    from airflow_provider_videoinfer import storage
    from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator, VideoInferUploadOperator

    _count_received_bytes()
    storage.filesystem(S3_URI)  # import the S3 libraries and read the connection before measuring
    from helpers import task_context

    context = task_context()
    before = _received[0]
    started = time.time()
    start = time.perf_counter()
    if method == "presigned":
        input_url = S3_URI
    else:
        input_url = VideoInferUploadOperator(task_id="upload", video=S3_URI).execute(context)  # type: ignore[arg-type]
    job_id = VideoInferSubmitJobOperator(task_id="submit", input_url=input_url, infer_fps=1, models=MODELS).execute(
        context  # type: ignore[arg-type]
    )
    seconds = time.perf_counter() - start
    return {"job_id": job_id, "seconds": seconds, "bytes_received": _received[0] - before, "started": started}


def _run(method: str) -> dict:
    answer = subprocess.run([sys.executable, __file__, "--child", method], check=True, capture_output=True, text=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _wait_for_end(base_url: str, api_key: str, job_id: str, timeout: float) -> float | None:
    """The epoch second a job of the local server ended, polling its job list; None after ``timeout``."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = requests.get(f"{base_url}/_jobs", params={"api_key": api_key}, timeout=30).json()["jobs"]
        job = next(job for job in jobs if job["job_id"] == job_id)
        if job["finished_at"]:
            return float(job["finished_at"])
        time.sleep(1)
    return None


def _mib(count: int) -> str:
    return f"{count / 1024**2:,.2f} MiB" if count >= 1024**2 else f"{count:,} bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each job to end")
    parser.add_argument("--child", metavar="METHOD", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return

    from helpers import run_moto_server

    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="bench-presigned-") as folder:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(folder) / "airflow"))
        video = Path(folder) / "bench.mp4"
        block = os.urandom(1024 * 1024)
        with video.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(block)
        with (
            run_moto_server() as endpoint,
            local_server("--allow-remote-urls", "--max-upload-bytes", str(size + 1)) as (base_url, api_key),
        ):
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench")
            client.create_bucket(Bucket="bench")
            start = time.perf_counter()
            client.upload_file(str(video), "bench", "bench.mp4")
            print(f"(setup: {args.size_mib} MiB put into moto in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
            video.unlink()
            os.environ["AIRFLOW_CONN_BENCH_S3"] = json.dumps(
                {"conn_type": "aws", "login": "bench", "password": "bench", "extra": {"endpoint_url": endpoint}}
            )
            use_connection(base_url, api_key, transfer_timeout=3600)
            rows = []
            for method in ("upload", "presigned"):  # one at a time: each job ends before the next way starts
                figures = _run(method)
                ended = _wait_for_end(base_url, api_key, figures["job_id"], args.timeout)
                figures["until_ended"] = None if ended is None else ended - figures["started"]
                rows.append((method, figures))
                print(method, json.dumps(figures), file=sys.stderr)

    print(f"\nA {args.size_mib} MiB object in S3 (moto on loopback) to a job of the local server\n")
    print("| way | task start to job submitted | bytes the worker received | task start to job ended (video read) |")
    print("| --- | ---: | ---: | ---: |")
    for method, figures in rows:
        until = figures["until_ended"]
        print(
            f"| {method} | {figures['seconds']:.2f} s | {_mib(figures['bytes_received'])} "
            f"| {'-' if until is None else f'{until:.0f} s'} |"
        )


if __name__ == "__main__":
    main()

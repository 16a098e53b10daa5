"""Upload a 1 GiB file to the local server, each way in its own process, side by side.

From a local file:

- ``provider``: ``VideoInferHook.upload_video`` (streams 1 MiB chunks with a Content-Length);
- ``sdk-style``: what the official SDK does: read the whole file, then PUT the bytes;
- ``curl``: ``curl -T`` to the same signed URL.

From S3 (moto's standalone server on loopback, reached through an Airflow ``aws`` connection):

- ``provider-s3``: ``VideoInferHook.upload_video("s3://bench_s3@bench/bench.mp4")``, S3 to the
  local server, streaming;
- ``boto3-download``: boto3's ``download_file`` of the same object to a local file (what a user
  would do first without the provider: only half the work, but the reference throughput).

Prints peak RSS increase of the uploading process over its RSS before the upload, and
throughput. Goals: provider RSS increase under 64 MiB, throughput at least 0.8x curl's (local)
and at least 0.8x boto3's download_file (S3).

Usage: ``python benchmarks/bench_upload.py [--size-mib 1024] [--only local|s3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _server import local_server, use_connection  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))


def moto_s3():  # type: ignore[no-untyped-def]
    """moto's S3 server as a process on a free port (the tests' helper); a context manager yielding its URL."""
    from helpers import run_moto_server

    return run_moto_server()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


S3_URI = "s3://bench_s3@bench/bench.mp4"


def child(method: str, file: str, url: str) -> dict:
    """Run one upload in this process; return its figures."""
    import requests

    from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

    if method == "boto3-download":
        import boto3

        client = boto3.client("s3", endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench")
        before = _rss_mib()
        start = time.perf_counter()
        client.download_file("bench", "bench.mp4", file + ".downloaded")
        seconds = time.perf_counter() - start
        os.unlink(file + ".downloaded")
        return {"seconds": seconds, "rss_increase_mib": _peak_mib() - before}
    hook = VideoInferHook()
    signed_url = hook.request_upload_url("bench.mp4")
    if method == "provider-s3":
        from airflow_provider_videoinfer import storage

        # Import the S3 file system (boto3, aiobotocore) before measuring, as boto3 is for its own row.
        fs, path = storage.filesystem(S3_URI)
        fs.info(path)
    before = _rss_mib()
    start = time.perf_counter()
    if method == "provider":
        hook.upload_video(file)
    elif method == "provider-s3":
        hook.upload_video(S3_URI)
    elif method == "sdk-style":
        with open(file, "rb") as handle:
            data = handle.read()
        requests.put(signed_url, data=data, headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    elif method == "curl":
        subprocess.run(
            ["curl", "-sS", "--fail", "-T", file, "-H", "Content-Type: application/octet-stream", signed_url],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    seconds = time.perf_counter() - start
    if method == "curl":  # curl's own peak RSS, whole process
        increase = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    else:
        increase = _peak_mib() - before
    return {"seconds": seconds, "rss_increase_mib": increase}


def _run(method: str, file: Path, url: str, size_mib: int) -> dict:
    answer = subprocess.run(
        [sys.executable, __file__, "--child", method, str(file), url], check=True, capture_output=True, text=True
    )
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    figures["mib_per_s"] = size_mib / figures["seconds"]
    return figures


def _table(title: str, rows: list[tuple[str, dict]], reference: str) -> None:
    speed = dict(rows)[reference]["mib_per_s"]
    print(f"\n{title}\n")
    print(f"| method | peak RSS increase (MiB) | throughput (MiB/s) | vs {reference} |")
    print("| --- | ---: | ---: | ---: |")
    for method, figures in rows:
        print(
            f"| {method} | {figures['rss_increase_mib']:.1f} | {figures['mib_per_s']:.0f} "
            f"| {figures['mib_per_s'] / speed:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--only", choices=("local", "s3"))
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "bench.mp4"
        block = os.urandom(1024 * 1024)
        with video.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(block)
        with local_server("--max-upload-bytes", str(size + 1)) as (base_url, api_key):
            use_connection(base_url, api_key, transfer_timeout=600)
            if args.only != "s3":
                rows = [(m, _run(m, video, base_url, args.size_mib)) for m in ("provider", "sdk-style", "curl")]
                _table(f"Upload of {args.size_mib} MiB from a local file to the local server on loopback", rows, "curl")
            if args.only != "local":
                with moto_s3() as endpoint:
                    import boto3

                    client = boto3.client(
                        "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"
                    )
                    client.create_bucket(Bucket="bench")
                    client.upload_file(str(video), "bench", "bench.mp4")
                    os.environ["AIRFLOW_CONN_BENCH_S3"] = json.dumps(
                        {"conn_type": "aws", "login": "bench", "password": "bench", "extra": {"endpoint_url": endpoint}}
                    )
                    rows = [
                        ("provider-s3", _run("provider-s3", video, base_url, args.size_mib)),
                        ("boto3-download", _run("boto3-download", video, endpoint, args.size_mib)),
                    ]
                title = f"Upload of {args.size_mib} MiB from S3 (moto on loopback) to the local server"
                _table(title, rows, "boto3-download")


if __name__ == "__main__":
    main()

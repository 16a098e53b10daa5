"""Upload a 1 GiB file to the local server three ways, each in its own process, side by side.

- ``provider``: ``VideoInferHook.upload_video`` (streams 1 MiB chunks with a Content-Length);
- ``sdk-style``: what the official SDK does: read the whole file, then PUT the bytes;
- ``curl``: ``curl -T`` to the same signed URL.

Prints peak RSS increase of the uploading process over its RSS before the upload, and
throughput. Goals: provider RSS increase under 64 MiB, throughput at least 0.8x curl's.

Usage: ``python benchmarks/bench_upload.py [--size-mib 1024]``
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


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, file: str, url: str) -> dict:
    """Run one upload in this process; return its figures."""
    import requests

    from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

    hook = VideoInferHook()
    signed_url = hook.request_upload_url("bench.mp4")
    before = _rss_mib()
    start = time.perf_counter()
    if method == "provider":
        hook.upload_video(file)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
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
        rows = []
        with local_server("--max-upload-bytes", str(size + 1)) as (base_url, api_key):
            use_connection(base_url, api_key, transfer_timeout=600)
            for method in ("provider", "sdk-style", "curl"):
                answer = subprocess.run(
                    [sys.executable, __file__, "--child", method, str(video), base_url],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                figures = json.loads(answer.stdout.strip().splitlines()[-1])
                figures["mib_per_s"] = args.size_mib / figures["seconds"]
                rows.append((method, figures))
    curl_speed = dict(rows)["curl"]["mib_per_s"]
    print(f"Upload of {args.size_mib} MiB to the local server on loopback\n")
    print("| method | peak RSS increase (MiB) | throughput (MiB/s) | vs curl |")
    print("| --- | ---: | ---: | ---: |")
    for method, figures in rows:
        print(
            f"| {method} | {figures['rss_increase_mib']:.1f} | {figures['mib_per_s']:.0f} "
            f"| {figures['mib_per_s'] / curl_speed:.2f}x |"
        )


if __name__ == "__main__":
    main()

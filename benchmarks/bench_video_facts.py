"""The facts of a 1 GiB MP4 whose ``moov`` box sits at its end: the contract's reader against ffprobe, in one run.

The file is a real 10-second MP4 (ffmpeg, H.264, 29.97 fps, ``moov`` after ``mdat``) grown to 1 GiB by a
larger ``mdat`` (a sparse file: ffprobe reads it as it reads the small one). It is read:

- locally: :func:`videoinfer_contract.facts.local_facts` (its reads counted by the reader) against
  ``ffprobe`` on the path (its ``read`` system calls and bytes counted by ``strace``, in a second run
  so that the time is ffprobe's own);
- on moto's S3 server (the object sent in one PUT): the provider's reader through the storage URI
  (s3fs, an Airflow aws connection), the contract's through a presigned URL, and ``ffprobe`` on the same
  presigned URL. Every byte moto sends goes through a counting TCP proxy; the requests are moto's own
  record of the GETs it answered.

Times are one run each, wall clock, process start included for ffprobe (a Python reader's import is
not: it runs in the worker that already imported it). moto answers each ranged GET of a 1 GiB object
slowly (it reads the object to slice it), so the S3 times say more about moto than about the readers.

Usage: ``python benchmarks/bench_video_facts.py [--size-mib 1024]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from helpers import aws_connection_json, moto_client, run_moto_server  # noqa: E402
from video_files import Made, MiB, make, write_padded_mp4  # noqa: E402

SMALL = Made("bench-moov-last.mp4", "30000/1001", seconds=10.0)
KEY = "bench/moov-last.mp4"


class CountingProxy:
    """A TCP proxy on loopback that counts the bytes its upstream sends to clients."""

    def __init__(self, upstream_port: int) -> None:
        self.sent = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._upstream = upstream_port
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.sent = 0

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    with self._lock:
                        self.sent += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def ffprobe_command(target: str) -> list[str]:
    return ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", target]


def ffprobe_answer(target: str) -> tuple[str, float]:
    """What ffprobe says of the video stream (one line), and the seconds it took."""
    started = time.perf_counter()
    answer = subprocess.run(ffprobe_command(target), check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    video = next(s for s in json.loads(answer.stdout)["streams"] if s["codec_type"] == "video")
    size = f"{video['width']}x{video['height']}"
    return f"{video['codec_name']} {size}, {video['avg_frame_rate']} fps, {video['nb_frames']} frames", seconds


def ffprobe_local_reads(path: Path) -> tuple[int, int]:
    """(read system calls on the file, bytes they returned) of ffprobe on a local file, by ``strace``."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        subprocess.run(
            ["strace", "-f", "-e", "trace=openat,read,pread64", "-o", trace.name, *ffprobe_command(str(path))],
            check=True,
            capture_output=True,
        )
        fds: set[str] = set()
        calls = total = 0
        for line in Path(trace.name).read_text().splitlines():
            opened = re.search(r'openat\(.*"' + re.escape(str(path)) + r'".*\) = (\d+)', line)
            if opened:
                fds.add(opened.group(1))
                continue
            read = re.search(r"(?:read|pread64)\((\d+),.*\) = (\d+)", line)
            if read and read.group(1) in fds:
                calls += 1
                total += int(read.group(2))
    return calls, total


def moto_gets(record: Path, path: str) -> list[str | None]:
    gets = []
    for line in record.read_text().splitlines() if record.exists() else []:
        entry = json.loads(line)
        if entry["method"] == "GET" and entry["url"].split("?")[0].endswith(path):
            gets.append({k.lower(): v for k, v in entry["headers"].items()}.get("range"))
    return gets


def row(name: str, seconds: float, requests: int | str, received: int, facts: str) -> dict[str, Any]:
    return {"reader": name, "ms": seconds * 1000, "requests": requests, "bytes": received, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the object's size (default 1024: 1 GiB)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        local = write_padded_mp4(make(SMALL, work, size="640x360"), work / "big.mp4", size)

        from videoinfer_contract.facts import http_source, local_facts, read_facts

        started = time.perf_counter()
        facts = local_facts(local)
        rows.append(
            row("facts (local file)", time.perf_counter() - started, facts.requests, facts.bytes_read, facts.describe())
        )
        probe, seconds = ffprobe_answer(str(local))
        if shutil.which("strace"):
            calls, total = ffprobe_local_reads(local)
            rows.append(row("ffprobe (local file)", seconds, f"{calls} reads", total, probe))
        else:
            rows.append(row("ffprobe (local file; no strace to count)", seconds, "?", 0, probe))

        record = work / "moto.jsonl"
        with run_moto_server(record_to=record) as url:
            import requests

            requests.post(f"{url}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
            client = moto_client(url)
            client.create_bucket(Bucket="bench")
            started = time.perf_counter()
            with open(local, "rb") as body:
                client.put_object(Bucket="bench", Key=KEY, Body=body)
            print(f"(setup: the {args.size_mib} MiB PUT to moto took {time.perf_counter() - started:.1f} s)")
            proxy = CountingProxy(int(url.rsplit(":", 1)[1]))
            proxied = f"http://127.0.0.1:{proxy.port}"
            os.environ["AIRFLOW_CONN_BENCH_FACTS"] = aws_connection_json(proxied)
            presigned = moto_client(proxied).generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": KEY}, ExpiresIn=3600
            )
            requests.post(f"{url}/moto-api/recorder/start-recording", timeout=10).raise_for_status()

            from airflow_provider_videoinfer.operators.cost import read_video_facts

            read_video_facts(f"s3://bench_facts@bench/{SMALL.name}")  # warm up: s3fs's client and its credentials
            runs = [
                ("facts (s3:// storage URI, s3fs)", lambda: read_video_facts(f"s3://bench_facts@bench/{KEY}")),
                ("facts (presigned URL)", lambda: read_facts(http_source(presigned, "presigned URL"))),
            ]
            for name, run in runs:
                requests.post(f"{url}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
                proxy.reset()
                started = time.perf_counter()
                found = run()
                seconds = time.perf_counter() - started
                gets = moto_gets(record, f"/bench/{KEY}")
                rows.append(row(name, seconds, len(gets), proxy.sent, found.describe()))
            requests.post(f"{url}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
            proxy.reset()
            probe, seconds = ffprobe_answer(presigned)
            gets = moto_gets(record, f"/bench/{KEY}")
            rows.append(row("ffprobe (presigned URL)", seconds, len(gets), proxy.sent, probe))
            print("ffprobe's ranges:", gets)

    width = max(len(r["reader"]) for r in rows)
    print(f"\n{'reader'.ljust(width)} | time (ms) | requests | bytes received | facts")
    for r in rows:
        cells = [r["reader"].ljust(width), f"{r['ms']:9.1f}", f"{r['requests']!s:8}", f"{r['bytes']:14,}", r["facts"]]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()

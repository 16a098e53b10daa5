"""Benchmark: summarising a 2-hour result file, streaming, against ``json.load``.

Generates the result file of a 2-hour video sampled at 10 fps (72,000 frames) with 20 detections
per frame from one object-detection model, then measures, each in a fresh subprocess so that peak
RSS is its own:

- ``streaming``: :func:`airflow_provider_videoinfer.results.summarize_result`;
- ``json.load``: ``json.load`` of the whole file, then a naive summary (counts per class).

Run it as a script, never as a test::

    python benchmarks/bench_results.py [--frames 72000] [--detections 20] [--keep FILE]

It prints a Markdown table of wall time (without the time to import the modules, shown apart:
the provider imports Airflow) and peak RSS (``ru_maxrss`` of the child, Airflow's import included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

MODEL_ID = "traffic-cars"
CLASSES = ("car", "truck", "bus", "person", "bicycle", "motorcycle")
GOAL_MIB = 200


def write_result_file(path: Path, frames: int, detections: int, fps: int = 10, video_fps: int = 30) -> None:
    """Write a result file of ``frames`` frames, streaming, with ``detections`` boxes per frame."""
    rng = random.Random(42)
    step = video_fps // fps
    with path.open("w", encoding="utf-8") as out:
        out.write('{"frame_offset": [')
        out.write(", ".join(str(i * step) for i in range(frames)))
        out.write('], "time_offset": [')
        out.write(", ".join(str(round(i / fps, 4)) for i in range(frames)))
        out.write(f'], "{MODEL_ID}": [')
        for frame in range(frames):
            if frame:
                out.write(", ")
            predictions = [
                {
                    "x": round(rng.uniform(0, 1920), 1),
                    "y": round(rng.uniform(0, 1080), 1),
                    "width": round(rng.uniform(20, 300), 1),
                    "height": round(rng.uniform(20, 300), 1),
                    "confidence": round(rng.random(), 3),
                    "class": CLASSES[(frame + i) % len(CLASSES)],
                    "class_id": (frame + i) % len(CLASSES),
                    "detection_id": f"{frame:08x}-{i:04x}-4e6f-a1b2-c3d4e5f6a7b8",
                }
                for i in range(detections)
            ]
            out.write(json.dumps({"time": 0.05, "image": {"width": 1920, "height": 1080}, "predictions": predictions}))
        out.write("]}")


def run_streaming(path: str) -> dict:
    from airflow_provider_videoinfer.results.reader import summarize_result  # imported (and timed) in child()

    summary = summarize_result(path)
    return {"predictions": summary["models"][MODEL_ID]["predictions"]}


def run_json_load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    counts: Counter[str] = Counter()
    most = 0
    for result in data[MODEL_ID]:
        if result is None:
            continue
        predictions = result.get("predictions") or []
        most = max(most, len(predictions))
        counts.update(p["class"] for p in predictions)
    return {"predictions": sum(counts.values())}


def child(mode: str, path: str) -> None:
    """Run one measurement and print it as JSON (called in a subprocess)."""
    start = time.perf_counter()
    if mode == "streaming":
        import airflow_provider_videoinfer.results  # noqa: F401 - Airflow's import, timed apart
    imported = time.perf_counter()
    outcome = (run_streaming if mode == "streaming" else run_json_load)(path)
    elapsed = time.perf_counter() - imported
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    print(json.dumps({"seconds": elapsed, "import_seconds": imported - start, "peak_rss": peak, **outcome}))


def measure(mode: str, path: Path) -> dict:
    answer = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=72_000, help="frames (default: 2 h at 10 fps)")
    parser.add_argument("--detections", type=int, default=20, help="detections per frame")
    parser.add_argument("--keep", type=Path, help="write the result file here and keep it")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory() as temp:
        path = args.keep or Path(temp) / "result.json"
        start = time.perf_counter()
        write_result_file(path, args.frames, args.detections)
        size = path.stat().st_size
        print(
            f"Result file: {args.frames:,} frames x {args.detections} detections, {size / 2**20:,.0f} MiB "
            f"(written in {time.perf_counter() - start:.0f} s). Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs.\n"
        )
        rows = [(mode, measure(mode, path)) for mode in ("streaming", "json.load")]

    print("| method | wall time (s) | import (s) | peak RSS (MiB) | predictions counted |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, result in rows:
        name = "summarize_result (streaming)" if mode == "streaming" else "json.load + naive summary"
        print(
            f"| {name} | {result['seconds']:.1f} | {result['import_seconds']:.1f} "
            f"| {result['peak_rss'] / 2**20:,.0f} | {result['predictions']:,} |"
        )
    streaming_mib = rows[0][1]["peak_rss"] / 2**20
    verdict = "met" if streaming_mib < GOAL_MIB else "MISSED"
    print(f"\nGoal: streaming summary under {GOAL_MIB} MiB peak RSS: {verdict} ({streaming_mib:.0f} MiB).")


if __name__ == "__main__":
    main()

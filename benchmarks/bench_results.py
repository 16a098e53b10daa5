"""Benchmark: summarising and exporting a 2-hour result file, streaming, against whole-file parsers.

Generates the result file of a 2-hour video sampled at 10 fps (72,000 frames): one object-detection
model with 20 detections per frame (239 MiB), and a second file with three models (the same
detections, a classification and a gaze model with two faces per frame). Then measures, each in a
fresh subprocess so that peak RSS is its own, side by side in one run:

- ``streaming``: :func:`airflow_provider_videoinfer.results.summarize_result` (msgspec in batches);
- ``check streaming``: opening a ``ResultReader`` (the index of the lists), which a download does
  before the file may replace a kept one;
- ``json.load``: ``json.load`` of the whole file, then a naive count (predictions per class);
- ``msgspec``: ``msgspec.json.decode`` of the whole file, then the same naive count;
- ``ijson``: ijson's C backend (yajl2_c) streaming each model's list, one pass per model, same count;
- ``rows streaming``: :func:`airflow_provider_videoinfer.results.rows.write_rows` to JSON Lines;
- ``rows json.load``: ``json.load``, then one ``json.dumps`` line per prediction.

Run it as a script, never as a test::

    python benchmarks/bench_results.py [--frames 72000] [--detections 20] [--repeat 1]

It prints Markdown tables of wall time (without the time to import the modules, shown apart: the
provider imports Airflow), peak RSS (``ru_maxrss`` of the child, imports included) and the ratio
of the baseline's time to each method's (above 1 is faster than ``json.load``).
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
from typing import Any

CARS = "traffic-cars"
SCENE = "scene-type"
GAZE = "gaze"
CLASSES = ("car", "truck", "bus", "person", "bicycle", "motorcycle")
GOAL_MIB = 150


def write_result_file(path: Path, frames: int, detections: int, models: int = 1, fps: int = 10) -> None:
    """Write a result file of ``frames`` frames, streaming: ``models`` is 1 (detections) or 3."""
    rng = random.Random(42)
    step = 30 // fps
    with path.open("w", encoding="utf-8") as out:
        out.write('{"frame_offset": [')
        out.write(", ".join(str(i * step) for i in range(frames)))
        out.write('], "time_offset": [')
        out.write(", ".join(str(round(i / fps, 4)) for i in range(frames)))
        out.write(f'], "{CARS}": [')
        for frame in range(frames):
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
            body = {"time": 0.05, "image": {"width": 1920, "height": 1080}, "predictions": predictions}
            out.write((", " if frame else "") + json.dumps(body))
        out.write("]")
        if models == 3:
            out.write(f', "{SCENE}": [')
            for frame in range(frames):
                top = ("street", "highway", "parking")[frame // 600 % 3]
                scores = [
                    {"class": top, "class_id": 0, "confidence": 0.8},
                    {"class": "other", "class_id": 1, "confidence": 0.2},
                ]
                body = {
                    "time": 0.01,
                    "image": {"width": 224, "height": 224},
                    "predictions": scores,
                    "top": top,
                    "confidence": 0.8,
                }
                out.write((", " if frame else "") + json.dumps(body))
            out.write(f'], "{GAZE}": [')
            for frame in range(frames):
                faces = [
                    {
                        "face": {
                            "x": 400.0 + i * 300, "y": 300.0, "width": 120.0, "height": 140.0, "confidence": 0.9,
                            "class": "face", "class_id": 0,
                            "landmarks": [{"x": 380.0 + i * 300, "y": 280.0}, {"x": 420.0 + i * 300, "y": 280.0}],
                        },
                        "yaw": round(rng.uniform(-0.6, 0.6), 4),
                        "pitch": round(rng.uniform(-0.3, 0.3), 4),
                    }
                    for i in range(2)
                ]  # fmt: skip
                out.write((", " if frame else "") + json.dumps({"time": 0.02, "predictions": faces}))
            out.write("]")
        out.write("}")


def _naive_count(model_id: str, results: Any, counts: Counter[str]) -> None:
    for result in results:
        if not isinstance(result, dict):
            continue
        if "top" in result:
            counts[f"{model_id}:{result['top']}"] += 1
            continue
        for p in result.get("predictions") or []:
            counts[f"{model_id}:{p.get('class') or p.get('face', {}).get('class')}"] += 1


def _total(counts: Counter[str]) -> int:
    return sum(counts.values())


def run_streaming(path: str) -> int:
    from airflow_provider_videoinfer.results import summarize_result

    summary = summarize_result(path)
    return sum(
        model.get("predictions", 0) if model["inference_type"] != "classification" else model["frames_with_predictions"]
        for model in summary["models"].values()
    )


def run_check_streaming(path: str) -> int:
    """What a download costs before it may replace a kept file: the reader's index of the lists."""
    from airflow_provider_videoinfer.results import ResultReader

    with ResultReader(path) as reader:
        return len(reader)


def run_json_load(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    counts: Counter[str] = Counter()
    for key, value in data.items():
        if key not in ("frame_offset", "time_offset"):
            _naive_count(key, value, counts)
    return _total(counts)


def run_msgspec(path: str) -> int:
    import msgspec

    with open(path, "rb") as fh:
        data = msgspec.json.decode(fh.read())
    counts: Counter[str] = Counter()
    for key, value in data.items():
        if key not in ("frame_offset", "time_offset"):
            _naive_count(key, value, counts)
    return _total(counts)


def run_ijson(path: str) -> int:
    import ijson

    assert ijson.backend == "yajl2_c", ijson.backend
    counts: Counter[str] = Counter()
    for model_id in (CARS, SCENE, GAZE):  # absent models yield nothing
        with open(path, "rb") as fh:
            _naive_count(model_id, ijson.items(fh, f"{model_id}.item", use_float=True), counts)
    return _total(counts)


def run_rows_streaming(path: str) -> int:
    from airflow_provider_videoinfer.results.rows import write_rows

    return write_rows(path, path + ".rows.jsonl")


def run_rows_json_load(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    rows = 0
    with open(path + ".naive.jsonl", "w", encoding="utf-8") as out:
        for model_id, results in data.items():
            if model_id in ("frame_offset", "time_offset"):
                continue
            for index, result in enumerate(results):
                if not isinstance(result, dict):
                    continue
                base = {"frame_index": index, "frame_offset": data["frame_offset"][index], "model_id": model_id}
                if "top" in result:
                    out.write(
                        json.dumps({**base, "class": result["top"], "confidence": result.get("confidence")}) + "\n"
                    )
                    rows += 1
                    continue
                for p in result.get("predictions") or []:
                    out.write(json.dumps({**base, **(p.get("face") or p), "yaw": p.get("yaw")}) + "\n")
                    rows += 1
    return rows


MODES = {
    "streaming": run_streaming,
    "check streaming": run_check_streaming,
    "json.load": run_json_load,
    "msgspec": run_msgspec,
    "ijson": run_ijson,
    "rows streaming": run_rows_streaming,
    "rows json.load": run_rows_json_load,
}
NAMES = {
    "streaming": "`summarize_result` (streaming, msgspec in batches)",
    "check streaming": "`ResultReader` opened: the download's check before it replaces a file (index only)",
    "json.load": "`json.load` + naive count",
    "msgspec": "`msgspec.json.decode` (whole file) + naive count",
    "ijson": "ijson `items` (yajl2_c, one pass per model) + naive count",
    "rows streaming": "`write_rows` to JSON Lines (streaming)",
    "rows json.load": "`json.load` + one `json.dumps` line per prediction",
}


def child(mode: str, path: str) -> None:
    """Run one measurement and print it as JSON (called in a subprocess)."""
    start = time.perf_counter()
    if "streaming" in mode:
        import airflow_provider_videoinfer.results.reader  # noqa: F401 - Airflow's import, timed apart
    imported = time.perf_counter()
    count = MODES[mode](path)
    elapsed = time.perf_counter() - imported
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    print(json.dumps({"seconds": elapsed, "import_seconds": imported - start, "peak_rss": peak, "count": count}))


def measure(mode: str, path: Path) -> dict[str, Any]:
    answer = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def table(title: str, path: Path, modes: list[str], baseline: str, repeat: int) -> None:
    # Round robin, so that a burst of load on the shared machine does not fall on one method only.
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(repeat):
        for mode in modes:
            results[mode].append(measure(mode, path))
    best = {mode: min(runs, key=lambda r: r["seconds"]) for mode, runs in results.items()}
    base = best[baseline]["seconds"]
    print(f"\n{title}\n")
    print("| method | wall time (s) | vs json.load | import (s) | peak RSS (MiB) | counted |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode in modes:
        r = best[mode]
        print(
            f"| {NAMES[mode]} | {r['seconds']:.2f} | {base / r['seconds']:.2f}x | {r['import_seconds']:.1f} "
            f"| {r['peak_rss'] / 2**20:,.0f} | {r['count']:,} |"
        )
    streaming = best[modes[0]]
    peak, base_peak = streaming["peak_rss"] / 2**20, best[baseline]["peak_rss"] / 2**20
    ratio = base / streaming["seconds"]
    print(
        f"\nGoals: ratio >= 1.0 ({'met' if ratio >= 1 else 'MISSED'}: {ratio:.2f}x); peak RSS under {GOAL_MIB} MiB "
        f"and a quarter of json.load's ({'met' if peak < GOAL_MIB and peak < base_peak / 4 else 'MISSED'}: "
        f"{peak:.0f} MiB vs {base_peak:.0f} MiB)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=72_000, help="frames (default: 2 h at 10 fps)")
    parser.add_argument("--detections", type=int, default=20, help="detections per frame")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method, in turn; the fastest is shown")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.")
    with tempfile.TemporaryDirectory() as temp:
        for models in (1, 3):
            path = Path(temp) / f"result-{models}.json"
            write_result_file(path, args.frames, args.detections, models)
            size = path.stat().st_size / 2**20
            title = f"**{models} model{'s' if models > 1 else ''}**: {args.frames:,} frames, {size:,.0f} MiB"
            modes = ["streaming", "check streaming", "json.load", "msgspec", "ijson"]
            table(title, path, modes, "json.load", args.repeat)
            table(f"{title}, rows export", path, ["rows streaming", "rows json.load"], "rows json.load", args.repeat)
            for leftover in Path(temp).glob("*.jsonl"):
                leftover.unlink()
            path.unlink()


if __name__ == "__main__":
    main()

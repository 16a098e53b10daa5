"""Benchmark: summarising and exporting a 2-hour result file, streaming, against whole-file parsers.

Generates the result file of a 2-hour video sampled at 10 fps (72,000 frames): one object-detection
model with 20 detections per frame (239 MiB), and a second file with three models (the same
detections, a classification and a gaze model with two faces per frame). Then measures, each in a
fresh subprocess so that peak RSS is its own, side by side in one run:

- ``streaming``: :func:`airflow_provider_videoinfer.results.summarize_result`;
- ``check streaming``: opening a ``ResultReader``, which a download does before the file may
  replace a kept one (the goal: at most 10% of the summary);
- ``view streaming``: the results view's first paint: the results operator's summary
  (``ResultReader.summarize``), then the page drawn from it;
- ``json.load``: ``json.load`` of the whole file, then a naive count (predictions per class);
- ``msgspec``: ``msgspec.json.decode`` of the whole file, untyped, then the same naive count;
- ``ijson``: ijson's C backend (yajl2_c) streaming each model's list, one pass per model, same count;
- ``typed``: the ceiling: msgspec decoding the whole file at once into structs of only the
  counted fields (all of it in memory);
- ``rows streaming`` (JSON Lines), ``rows csv streaming``, ``rows parquet streaming``:
  :func:`airflow_provider_videoinfer.results.rows.write_rows`;
- ``rows json.load``: ``json.load``, then one ``json.dumps`` line per prediction.

With ``--before DIR`` (a folder holding another copy of the ``airflow_provider_videoinfer`` package,
e.g. ``git archive main airflow_provider_videoinfer | tar -x -C DIR``), the view and the JSON Lines
export are also measured with that copy, side by side.

Run it as a script, never as a test::

    python benchmarks/bench_results.py [--frames 72000] [--detections 20] [--repeat 3] [--models 1 3]

It prints Markdown tables of wall time (fastest of the runs, and their spread; without the time to
import the modules, shown apart: the provider imports Airflow), CPU time of that run, peak RSS
(``ru_maxrss`` of the child, imports included) and the ratio of the baseline's time to each
method's (above 1 is faster than ``json.load``), then whether each goal is met: the summaries and
exports at least 4x their ``json.load`` baseline, in under 150 MiB and a quarter of its peak RSS.
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

    return _summary_count(summarize_result(path))


def _summary_count(summary: Any) -> int:
    return sum(
        model.get("predictions", 0) if model["inference_type"] != "classification" else model["frames_with_predictions"]
        for model in summary["models"].values()
    )


def run_check_streaming(path: str) -> int:
    """What a download costs before it may replace a kept file: opening a ``ResultReader``."""
    from airflow_provider_videoinfer.results import ResultReader

    with ResultReader(path) as reader:
        return len(reader)


def run_view(path: str) -> int:
    """The results view's first paint of a file: the results operator's summary, then the page drawn from it."""
    from airflow_provider_videoinfer.results import ResultReader
    from airflow_provider_videoinfer.ui.render import results_page

    with ResultReader(path) as reader:
        summary = reader.summarize()  # as VideoInferResultsOperator does
    summary["rows"] = None
    page = results_page("bench / run / results", summary, None)
    assert "<svg" in page
    return _summary_count(summary)


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


def run_typed(path: str) -> int:
    """The ceiling: the whole file decoded at once into structs of only the fields a count reads."""
    import msgspec
    from _typed_result import File  # type: ignore[import-not-found]

    with open(path, "rb") as fh:
        data = msgspec.json.decode(fh.read(), type=File)
    counts: Counter[str] = Counter()
    for model_id, frames in ((CARS, data.cars), (SCENE, data.scene)):  # type: ignore[has-type]
        for frame in frames:
            if frame is None:
                continue
            if frame.top is not None:
                counts[f"{model_id}:{frame.top}"] += 1
            else:
                counts.update(f"{model_id}:{p.name}" for p in frame.predictions)
    for gaze in data.gaze:
        if gaze is not None:
            counts.update(f"{GAZE}:{p.face.name}" for p in gaze.predictions)
    return _total(counts)


def run_ijson(path: str) -> int:
    import ijson

    assert ijson.backend == "yajl2_c", ijson.backend
    counts: Counter[str] = Counter()
    for model_id in (CARS, SCENE, GAZE):  # absent models yield nothing
        with open(path, "rb") as fh:
            _naive_count(model_id, ijson.items(fh, f"{model_id}.item", use_float=True), counts)
    return _total(counts)


def _rows(path: str, rows_format: str) -> int:
    from airflow_provider_videoinfer.results.rows import write_rows

    return write_rows(path, f"{path}.rows.{rows_format}", rows_format)


def run_rows_streaming(path: str) -> int:
    return _rows(path, "jsonl")


def run_rows_csv(path: str) -> int:
    return _rows(path, "csv")


def run_rows_parquet(path: str) -> int:
    return _rows(path, "parquet")


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
    "view streaming": run_view,
    "json.load": run_json_load,
    "msgspec": run_msgspec,
    "ijson": run_ijson,
    "typed": run_typed,
    "rows streaming": run_rows_streaming,
    "rows csv streaming": run_rows_csv,
    "rows parquet streaming": run_rows_parquet,
    "rows json.load": run_rows_json_load,
}
NAMES = {
    "streaming": "`summarize_result` (one pass, typed records of what it reads)",
    "check streaming": "`ResultReader` opened: the download's check before it replaces a file",
    "view streaming": "results view's first paint: the operator's `ResultReader.summarize` + the page",
    "json.load": "`json.load` + naive count",
    "msgspec": "`msgspec.json.decode` untyped (whole file) + naive count",
    "ijson": "ijson `items` (yajl2_c, one pass per model) + naive count",
    "typed": "ceiling: msgspec typed decoding of the whole file (only the counted fields) + count",
    "rows streaming": "`write_rows` to JSON Lines",
    "rows csv streaming": "`write_rows` to CSV",
    "rows parquet streaming": "`write_rows` to Parquet",
    "rows json.load": "`json.load` + one `json.dumps` line per prediction",
}
#: The provider's modes that can also run on another copy of the provider (``--before``).
BEFORE = ("view streaming", "rows streaming")


def child(mode: str, path: str, before: str | None = None) -> None:
    """Run one measurement and print it as JSON (called in a subprocess)."""
    start = time.perf_counter()
    if before:
        # The provider's copy in that folder, not this checkout's (installed in editable mode by a finder).
        sys.meta_path[:] = [f for f in sys.meta_path if "airflow_provider_videoinfer" not in str(f)]
        sys.path.insert(0, before)
    if "streaming" in mode:
        import airflow_provider_videoinfer.results.reader as reader  # Airflow's import, timed apart

        assert before is None or reader.__file__.startswith(before), reader.__file__
    imported = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    count = MODES[mode](path)
    elapsed = time.perf_counter() - imported
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = end.ru_utime + end.ru_stime - cpu.ru_utime - cpu.ru_stime
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak = end.ru_maxrss * scale
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": cpu_seconds,
                "import_seconds": imported - start,
                "peak_rss": peak,
                "count": count,
            }
        )
    )


def measure(mode: str, path: Path, before: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, str(path)]
    if before:
        command += ["--before", before]
    answer = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def table(title: str, path: Path, modes: list[str], baseline: str, repeat: int, before: str | None) -> dict[str, Any]:
    """Measure ``modes`` (and their ``--before`` copies) in turn, ``repeat`` times; print and return the best."""
    runs = [(mode, None) for mode in modes] + [(mode, before) for mode in modes if before and mode in BEFORE]
    # Round robin, so that a burst of load on the shared machine does not fall on one method only.
    results: dict[tuple[str, str | None], list[dict[str, Any]]] = {run: [] for run in runs}
    loads = [_load()]
    for _ in range(repeat):
        for mode, copy in runs:
            results[mode, copy].append(measure(mode, path, copy))
        loads.append(_load())
    best = {run: min(found, key=lambda r: r["seconds"]) for run, found in results.items()}
    base = best[baseline, None]["seconds"]
    print(f"\n{title} (load average before and after each round: {'; '.join(loads)})\n")
    print(
        "| method | wall time (s), fastest | spread (s) | vs json.load | CPU (s) | import (s) | peak RSS (MiB) ", end=""
    )
    print("| counted |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        r, times = best[run], sorted(found["seconds"] for found in results[run])
        name = NAMES[run[0]] + (" (before: the copy at --before)" if run[1] else "")
        print(
            f"| {name} | {r['seconds']:.2f} | {times[0]:.2f} to {times[-1]:.2f} | {base / r['seconds']:.2f}x "
            f"| {r['cpu_seconds']:.2f} | {r['import_seconds']:.1f} | {r['peak_rss'] / 2**20:,.0f} | {r['count']:,} |"
        )
    return {f"{mode} (before)" if copy else mode: r for (mode, copy), r in best.items()}


def goals(best: dict[str, Any], provider: str, baseline: str, ratio_goal: float = 4.0) -> str:
    """The goals' verdict for one of the provider's methods: speed against the baseline, and memory."""
    ratio = best[baseline]["seconds"] / best[provider]["seconds"]
    peak, base_peak = best[provider]["peak_rss"] / 2**20, best[baseline]["peak_rss"] / 2**20
    memory = peak < GOAL_MIB and peak <= base_peak / 4
    return (
        f"{provider}: {ratio:.2f}x {baseline} ({'met' if ratio >= ratio_goal else 'MISSED'}, goal {ratio_goal:g}x); "
        f"peak RSS {peak:.0f} MiB ({'met' if memory else 'MISSED'}: under {GOAL_MIB} MiB and a quarter of "
        f"{base_peak:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=72_000, help="frames (default: 2 h at 10 fps)")
    parser.add_argument("--detections", type=int, default=20, help="detections per frame")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method, in turn; the fastest is shown")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 3], choices=[1, 3], help="files to measure")
    parser.add_argument(
        "--rows-formats", nargs="*", default=["jsonl", "csv", "parquet"], help="the export's formats to measure"
    )
    parser.add_argument(
        "--before", help="a folder holding another copy of airflow_provider_videoinfer (e.g. `git archive` of main)"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, before=args.before)
        return

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {_load()}.")
    verdicts = []
    with tempfile.TemporaryDirectory() as temp:
        for models in args.models:
            path = Path(temp) / f"result-{models}.json"
            write_result_file(path, args.frames, args.detections, models)
            size = path.stat().st_size / 2**20
            title = f"**{models} model{'s' if models > 1 else ''}**: {args.frames:,} frames, {size:,.0f} MiB"
            modes = ["streaming", "check streaming", "view streaming", "json.load", "msgspec", "ijson", "typed"]
            best = table(title, path, modes, "json.load", args.repeat, args.before)
            check = best["check streaming"]["seconds"] / best["streaming"]["seconds"]
            verdicts.append(f"{models} model(s): {goals(best, 'streaming', 'json.load')}")
            verdicts.append(
                f"{models} model(s): the check costs {check:.1%} of the summary "
                f"({'met' if check <= 0.1 else 'MISSED'}, goal 10%)"
            )
            formats = {"jsonl": "rows streaming", "csv": "rows csv streaming", "parquet": "rows parquet streaming"}
            rows_modes = [formats[name] for name in args.rows_formats] + ["rows json.load"]
            best = table(f"{title}, rows export", path, rows_modes, "rows json.load", args.repeat, args.before)
            for mode in rows_modes[:-1]:
                verdicts.append(f"{models} model(s): {goals(best, mode, 'rows json.load')}")
            for leftover in Path(temp).glob("*.rows.*"):
                leftover.unlink()
            path.unlink()
    print("\nGoals:\n")
    print("\n".join(f"- {verdict}" for verdict in verdicts))


if __name__ == "__main__":
    main()

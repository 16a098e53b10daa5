"""The quick-start demo: the example DAG end to end against the local server, offline.

Steps: make a sample video (unless one is given), start the local server on loopback, prepare a
throwaway Airflow home, run ``airflow dags test videoinfer_quickstart`` (upload, submit, deferrable
sensor, results), print what was found when, stop the server. Everything lands in ``.demo/``.

Usage: ``python scripts/demo.py [--video PATH] [--infer-fps N]`` (``make demo [VIDEO=PATH]``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from videoinfer_server.launch import run_server_process

if TYPE_CHECKING:
    from airflow_provider_videoinfer.results.summary import ResultSummary

ROOT = Path(__file__).resolve().parent.parent
# The airflow command; on Airflow 3.0 without debug lines, which would show the API key (see
# airflow_provider_videoinfer.compat.DAGS_TEST_PRINTS_DEBUG).
AIRFLOW_CLI = (
    "import sys; from airflow_provider_videoinfer import compat; "
    "compat.DAGS_TEST_PRINTS_DEBUG and compat.filter_debug_logs(); "
    "from airflow.__main__ import main; sys.exit(main())"
)
WORK = ROOT / ".demo"
# One Airflow home per Airflow release: a database migrated by a newer Airflow cannot be used by an older one.
AIRFLOW_HOME = WORK / f"airflow-{metadata.version('apache-airflow')}"
STEPS = 5


def step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


# The last line of a Python traceback: "package.module.SomeError: message".
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*(?P<name>[A-Za-z_]\w*(?:Error|Exception)): (?P<message>.*)$")
_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)")


def task_errors(text: str) -> dict[str, str]:
    """The error each failed task of an ``airflow dags test`` log ended with: ``{task_id: "SomeError: ..."}``."""
    errors: dict[str, str] = {}
    pending: str | None = None
    for line in text.splitlines():
        found = _EXCEPTION_LINE.match(line)
        if found:
            pending = f"{found['name']}: {found['message']}"
            continue
        ended = _TASK_END.search(line)
        if ended:
            if pending is not None:
                errors[ended["task"]] = pending  # a retried task keeps its last error
            pending = None
    return errors


def run_logged(command: list[str], env: dict[str, str], log: Path) -> None:
    """Run a command with its output in ``log``; on failure say why (each failed task's error) and stop."""
    with log.open("w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code == 0:
        return
    text = log.read_text(errors="replace")
    errors = task_errors(text)
    if errors:
        lines = ["", "The DAG run failed:", *(f"  task {task}: {error}" for task, error in errors.items())]
    else:
        lines = ["", *text.splitlines()[-40:]]
    sys.exit("\n".join([*lines, "", f"FAILED: {' '.join(command[:4])} ... (full log: {log})"]))


def print_table(summary: ResultSummary) -> None:
    """One row per second of video: what each model saw in it."""
    models = summary["models"]
    columns: dict[str, dict[int, str]] = {}
    for model_id, model in models.items():
        cells = {}
        for bucket in model.get("timeline", {}).get("buckets", []):
            counts = bucket.get("counts", {})
            if "top" in bucket:
                cells[bucket["start"]] = str(bucket["top"])
            else:
                cells[bucket["start"]] = ", ".join(f"{n} {name}" for name, n in counts.items()) or "-"
        columns[model_id] = cells
    seconds = sorted({second for cells in columns.values() for second in cells})
    header = ["second", *models]
    rows = [[f"{second}s", *(columns[m].get(second, "-") for m in models)] for second in seconds]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    for model_id, model in models.items():
        peak = model.get("max_objects")
        peak_text = f"; most at once: {peak['count']} at {peak['time_offset']}s" if peak else ""
        print(
            f"  {model_id}: {model['frames']} frames, {model['frames_with_predictions']} with predictions, "
            f"classes {json.dumps(model.get('class_counts', {}))}{peak_text}"
        )


def quickstart_models() -> list[dict[str, str]]:
    """The models the quick-start DAG runs by default (the demo triggers it without ``models``)."""
    path = ROOT / "example_dags" / "videoinfer_quickstart.py"
    spec = importlib.util.spec_from_file_location("videoinfer_quickstart", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.DEFAULT_MODELS)


def print_estimate(video: Path, infer_fps: int) -> int | None:
    """Print the video's facts and what the job will bill, before it is submitted; return the frames billed."""
    from videoinfer_contract.estimate import check_job, estimate
    from videoinfer_contract.facts import local_facts

    facts = local_facts(video)
    models = quickstart_models()
    found = estimate(facts, infer_fps, len(models))
    print(f"      Facts: {facts.describe()} (read in {facts.requests} request(s), {facts.bytes_read} bytes)")
    for finding in check_job(facts, infer_fps):
        print(f"      {'Error' if finding.error else 'Warning'}: {finding.message}")
    if found is None:
        print("      Estimate: unknown (the video's facts do not tell)")
        return None
    print(f"      Estimate: {found.describe()}")
    return found.frames


def print_billed(result: Path, expected: int | None) -> None:
    """Compare the estimate printed before the job with the frames the result file holds."""
    data = json.loads(result.read_text())
    per_model = {key: len(value) for key, value in data.items() if key not in ("frame_offset", "time_offset")}
    held = sum(per_model.values())
    verdict = "" if expected is None else (": equal" if held == expected else f", but the estimate said {expected}")
    sampled = len(data["frame_offset"])
    print(f"\n  Frames billed: the result holds {sampled} sampled frames × {len(per_model)} models = {held}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", help="a video of your own (mp4, avi, mkv, webm); default: a generated sample")
    parser.add_argument("--infer-fps", type=int, default=5, help="frames per second to sample (default 5)")
    args = parser.parse_args()
    started = time.perf_counter()
    WORK.mkdir(exist_ok=True)
    shutil.rmtree(WORK / "results", ignore_errors=True)

    if args.video:
        video = Path(args.video).expanduser().resolve()
        if not video.is_file():
            sys.exit(f"--video {args.video}: no such file")
        step(1, f"Using your video {video}")
    else:
        video = WORK / "sample.mp4"
        step(1, f"Generating a sample video with moving objects: {video}")
        from videoinfer_server.sample import make_sample_video

        make_sample_video(video, seconds=6.0, fps=24.0, size=(320, 240))
    expected = print_estimate(video, args.infer_fps)

    api_key = secrets.token_urlsafe(18)
    with (
        (WORK / "server.log").open("w") as server_log,
        run_server_process(WORK / "server", api_key, "--log-level", "warning", output=server_log) as base_url,
    ):
        step(2, f"Local server running at {base_url} (data in {WORK / 'server'})")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Polled every second (the extra poll_interval): the local server is not rate limited.
            "AIRFLOW_CONN_VIDEOINFER_DEFAULT": json.dumps(
                {"conn_type": "videoinfer", "host": base_url, "password": api_key, "extra": {"poll_interval": 1}}
            ),
        }
        airflow = [sys.executable, "-c", AIRFLOW_CLI]
        step(3, f"Preparing a throwaway Airflow home in {AIRFLOW_HOME}")
        run_logged([*airflow, "db", "migrate"], env, WORK / "db-migrate.log")
        conf = {"video": str(video), "infer_fps": args.infer_fps, "results_dir": str(WORK / "results")}
        step(4, "airflow dags test videoinfer_quickstart: upload -> submit -> deferrable sensor -> results")
        run_logged([*airflow, "dags", "test", "videoinfer_quickstart", "-c", json.dumps(conf)], env, WORK / "dag.log")

    results = sorted((WORK / "results").rglob("result.json"), key=lambda p: p.stat().st_mtime)
    if not results:
        sys.exit(f"The DAG run finished but wrote no result file under {WORK / 'results'}; see {WORK / 'dag.log'}")
    from airflow_provider_videoinfer.results.reader import summarize_result

    step(5, f"What was found when (result: {results[-1]}):\n")
    print_table(summarize_result(results[-1]))
    print_billed(results[-1], expected)
    sheet = results[-1].with_name("result.contact-sheet.png")
    if sheet.is_file():
        print(f"\nContact sheet of the busiest frames: {sheet}")
    print(
        f"To browse the run in Airflow's UI (its 'Video inference' tab on the results task, Airflow 3.1+): "
        f"AIRFLOW_HOME={AIRFLOW_HOME} {Path(sys.executable).parent / 'airflow'} api-server"
    )
    print(f"\nDone in {time.perf_counter() - started:.0f} s; the local server is stopped. DAG log: {WORK / 'dag.log'}")


if __name__ == "__main__":
    main()

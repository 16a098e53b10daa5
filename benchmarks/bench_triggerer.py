"""1,000 job triggers at once in one event loop, against the local server (run in its own process).

Jobs stay running about 30 s after the triggers start (``--min-job-seconds``), triggers poll every 5 s. Measures: events
delivered, event-loop lag (a 10 ms ticker's lateness, p50/p99/max), and memory per trigger
(the process's peak RSS growth while all triggers run, divided by their number).
Goals: all events delivered, lag p99 under 100 ms.

Usage: ``python benchmarks/bench_triggerer.py [--triggers 1000] [--job-seconds 30] [--poll 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _server import local_server, use_connection  # noqa: E402

PROCESSING_ALLOWANCE = 40.0
MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _ticker(lags: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - expected))


async def _run(job_ids: list[str], poll: float) -> tuple[list[dict], list[float], float]:
    from airflow.sdk import BaseHook

    from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger

    # A running triggerer has its secrets backends imported already: warm them up, unmeasured.
    await BaseHook.aget_connection("videoinfer_default")
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    deadline = time.time() + 600
    triggers = [VideoInferJobTrigger(job_id, poll_interval=poll, deadline=deadline) for job_id in job_ids]
    base = _rss_bytes()
    peak_per_trigger = 0.0

    async def consume(trigger: VideoInferJobTrigger) -> dict:
        events = [event.payload async for event in trigger.run()]
        assert len(events) == 1, events
        return events[0]

    tasks = [asyncio.create_task(consume(trigger)) for trigger in triggers]
    while not all(task.done() for task in tasks):
        await asyncio.sleep(1)
        peak_per_trigger = max(peak_per_trigger, (_rss_bytes() - base) / len(triggers))
    stop.set()
    await ticker
    return [task.result() for task in tasks], lags, peak_per_trigger


def _jobs(base_url: str, api_key: str) -> list[dict]:
    import requests

    answer = requests.get(f"{base_url}/_jobs", params={"api_key": api_key}, timeout=30)
    answer.raise_for_status()
    return answer.json()["jobs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--job-seconds", type=float, default=30)
    parser.add_argument("--poll", type=float, default=5)
    args = parser.parse_args()

    from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
    from airflow_provider_videoinfer.server.sample import make_sample_video

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "tiny.mp4"
        make_sample_video(video, seconds=0.5, fps=4.0, size=(64, 48))
        # Jobs report "running" until PROCESSING_ALLOWANCE + job_seconds after submission; the
        # triggers start once the server has processed them all, so that the server's video
        # decoding does not compete with the event loop for this machine's two cores.
        min_job_seconds = PROCESSING_ALLOWANCE + args.job_seconds
        with local_server("--min-job-seconds", str(min_job_seconds), "--workers", "1") as (base_url, api_key):
            use_connection(base_url, api_key)
            hook = VideoInferHook()
            input_url = hook.upload_video(video)
            started = time.perf_counter()
            job_ids = [hook.submit_job(input_url, 2, [MOTION]) for _ in range(args.triggers)]
            print(f"submitted {len(job_ids)} jobs in {time.perf_counter() - started:.1f} s")
            while not all(job["finished_at"] for job in _jobs(base_url, api_key)):
                time.sleep(1)
            print(f"the server processed them in {time.perf_counter() - started:.1f} s")
            time.sleep(max(0.0, PROCESSING_ALLOWANCE - (time.perf_counter() - started)))
            started = time.perf_counter()
            events, lags, per_trigger = asyncio.run(_run(job_ids, args.poll))
            wall = time.perf_counter() - started
    delivered = sum(event["status"] == "success" for event in events)
    lags_ms = sorted(lag * 1000 for lag in lags)
    p99 = lags_ms[int(0.99 * (len(lags_ms) - 1))]
    print(f"\n{args.triggers} triggers, jobs running >= {args.job_seconds:g} s, poll every {args.poll:g} s\n")
    print("| events delivered | wall time (s) | loop lag p50 (ms) | p99 (ms) | max (ms) | memory per trigger (KiB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {delivered}/{len(events)} | {wall:.1f} | {statistics.median(lags_ms):.1f} | {p99:.1f} "
        f"| {lags_ms[-1]:.1f} | {per_trigger / 1024:.1f} |"
    )


if __name__ == "__main__":
    main()

"""10,000 job triggers in one event loop, polling every 60 s (the hosted rate limit).

Each variant runs in a fresh process (so memory is its own) against a minimal asyncio HTTP
responder in another process (``_responder.py``: no framework, no database, cheap enough not to
be the bottleneck). Every job reports "running" for ``--job-seconds`` after the triggers start,
then "succeeded"; the triggers' first polls come one to two intervals after they start, so most
jobs are polled twice.

Measures, per variant: events delivered; event-loop lag (a 10 ms ticker's lateness, p50/p99/max);
the CPU of the triggerer process (user + system time over wall time, in cores); memory per
trigger (peak RSS growth while all triggers wait, divided by their number); and, from the
responder, the TCP connections the triggers opened and the most open at once.

Variants: ``shared`` (the provider: one httpx pool per event loop and connection) and ``own``
(one pool per trigger, as before the pools were shared).

Goals: all events delivered, lag p99 under 100 ms, CPU under a quarter of a core. Waits still open
after ``--budget`` seconds are stopped and counted as not delivered.

Usage: ``python benchmarks/bench_triggerer.py [--triggers 10000] [--poll 60] [--job-seconds 90]
[--variants shared own]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ticker(lags: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - expected))


async def _measure(triggers: int, poll: float, budget: float) -> dict:
    from airflow_provider_videoinfer.compat import aget_connection
    from airflow_provider_videoinfer.triggers.videoinfer import VideoInferJobTrigger

    # A running triggerer has its secrets backends imported already: warm them up, unmeasured.
    await aget_connection("videoinfer_default")
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    base_rss, peak_rss = _rss_bytes(), 0
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    deadline = time.time() + 3600

    async def consume(trigger: VideoInferJobTrigger) -> list[dict]:
        return [event.payload async for event in trigger.run()]

    tasks = [
        asyncio.create_task(consume(VideoInferJobTrigger(f"job-{i}", poll_interval=poll, deadline=deadline)))
        for i in range(triggers)
    ]
    while not all(task.done() for task in tasks) and time.perf_counter() - started < budget:
        await asyncio.sleep(1)
        peak_rss = max(peak_rss, _rss_bytes())
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    stop.set()
    await ticker
    events = [task.result() if task.done() else [] for task in tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lags_ms = sorted(lag * 1000 for lag in lags)
    return {
        "delivered": sum(len(e) == 1 and e[0]["kind"] == "succeeded" for e in events),
        "triggers": triggers,
        "wall_s": wall,
        "cpu_cores": cpu / wall,
        "lag_p50_ms": statistics.median(lags_ms),
        "lag_p99_ms": lags_ms[int(0.99 * (len(lags_ms) - 1))],
        "lag_max_ms": lags_ms[-1],
        "kib_per_trigger": (peak_rss - base_rss) / triggers / 1024,
    }


def _child(args: argparse.Namespace) -> None:
    """One variant, in this fresh process: start the responder, run the triggers, print JSON."""
    import urllib.request

    from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient
    from videoinfer_server.launch import free_port

    if args.variant == "own":
        shared_init = VideoInferAsyncClient.__init__

        def own_pool(self, settings, *, share_pool: bool = True) -> None:  # type: ignore[no-untyped-def]
            shared_init(self, settings, share_pool=False)

        VideoInferAsyncClient.__init__ = own_pool  # type: ignore[method-assign]
    port = free_port()
    done_at = time.time() + args.job_seconds
    responder = subprocess.Popen(
        [sys.executable, str(HERE / "_responder.py"), "--port", str(port), "--done-at", str(done_at)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
        base_url = f"http://127.0.0.1:{port}"
        # The connection's default settings: what users get.
        os.environ["AIRFLOW_CONN_VIDEOINFER_DEFAULT"] = json.dumps(
            {"conn_type": "videoinfer", "host": base_url, "password": "bench-key"}
        )
        result = asyncio.run(_measure(args.triggers, args.poll, args.budget))
        with urllib.request.urlopen(f"{base_url}/_stats", timeout=30) as answer:
            result["responder"] = json.load(answer)
    finally:
        responder.terminate()
        responder.wait(30)
    Path(args.result).write_text(json.dumps({"variant": args.variant, **result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=10_000)
    parser.add_argument("--poll", type=float, default=60.0)
    parser.add_argument("--job-seconds", type=float, default=90.0)
    parser.add_argument(
        "--budget", type=float, default=600.0, help="seconds after which waits still open are counted as undelivered"
    )
    parser.add_argument("--variants", nargs="+", default=["shared", "own"], choices=["shared", "own"])
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        _child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="videoinfer-bench-") as folder:
        for variant in args.variants:
            result, log = Path(folder) / f"{variant}.json", Path(folder) / f"{variant}.log"
            command = [sys.executable, __file__, "--variant", variant, "--result", str(result)]
            command += [
                "--triggers",
                str(args.triggers),
                "--poll",
                str(args.poll),
                "--job-seconds",
                str(args.job_seconds),
            ]
            # The triggers' log lines go to a file, as a triggerer's go to its log handlers (a pipe
            # that nobody reads would block the event loop once full).
            with log.open("w") as output:
                subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
            rows.append(json.loads(result.read_text()))
            lines = log.read_text().count("\n")
            print(f"{variant}: {rows[-1]} ({lines:,} log lines)", file=sys.stderr, flush=True)
    print(f"\n{args.triggers} triggers, poll every {args.poll:g} s, jobs running {args.job_seconds:g} s\n")
    print(
        "| HTTP pools | events delivered | wall time | loop lag p50 | p99 | max | triggerer CPU "
        "| memory per trigger | TCP connections (most open at once) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        name = "one per event loop (provider)" if row["variant"] == "shared" else "one per trigger"
        print(
            f"| {name} | {row['delivered']:,}/{row['triggers']:,} | {row['wall_s']:.0f} s "
            f"| {row['lag_p50_ms']:.1f} ms | {row['lag_p99_ms']:.1f} ms | {row['lag_max_ms']:.0f} ms "
            f"| {row['cpu_cores']:.3f} cores | {row['kib_per_trigger']:.1f} KiB "
            f"| {row['responder']['connections']:,} ({row['responder']['max_open']:,}) |"
        )


if __name__ == "__main__":
    main()

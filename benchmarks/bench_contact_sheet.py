"""Contact sheet of a long video: seeking to the chosen frames against decoding the whole video.

A generated video (default 10 minutes, 640x360, 24 fps) and a result of one detection model at
5 fps (3,000 sampled frames, 1 to 4 boxes each). Three ways, each in its own process so that its
peak RSS is its own:

- ``make_contact_sheet``: the provider's way (one pass over the results, then seek to 6 frames);
- sequential: decode every frame with ``read()`` and keep the 6 chosen ones (what a script does);
- keep all sampled frames in memory, then choose (the simplest code one would write).

Run: ``python benchmarks/bench_contact_sheet.py [--minutes 10]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

FPS, INFER_FPS, SIZE = 24.0, 5, (640, 360)


def _frames(frame_count: int):
    from videoinfer_contract.results import Detection, Detections, ResultFrame

    step = round(FPS / INFER_FPS)
    for index, offset in enumerate(range(0, frame_count, step)):
        boxes = tuple(
            Detection(80.0 + 120 * n, 90.0 + 40 * n, 60, 40, 0.9, "thing", 0, None) for n in range(1 + index % 4)
        )
        yield ResultFrame(index, offset, offset / FPS, {"detector": Detections(predictions=boxes)})


class _Sized:
    """The result frames with a length, as a ResultReader has."""

    def __init__(self, frame_count: int) -> None:
        self.frame_count = frame_count

    def __len__(self) -> int:
        return len(range(0, self.frame_count, round(FPS / INFER_FPS)))

    def __iter__(self):
        return _frames(self.frame_count)


def _run(method: str, video: str, frame_count: int, out: str, queue) -> None:
    import cv2

    from airflow_provider_videoinfer.results.contact_sheet import draw_frame, make_contact_sheet, pick_frames

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if method == "make_contact_sheet (seek)":
        make_contact_sheet(_Sized(frame_count), video, out)
    elif method == "decode every frame":
        picked = pick_frames(_Sized(frame_count))
        wanted = {frame.frame_offset: (objects, frame) for objects, frame in picked}
        capture = cv2.VideoCapture(video)
        offset = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if offset in wanted:
                draw_frame(image, wanted[offset][1], wanted[offset][0])
            offset += 1
    else:  # every sampled frame kept in memory
        sampled = {frame.frame_offset: frame for frame in _frames(frame_count)}
        images = {}
        capture = cv2.VideoCapture(video)
        offset = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if offset in sampled:
                images[offset] = image
            offset += 1
        picked = pick_frames(_Sized(frame_count))
        for objects, frame in picked:
            draw_frame(images[frame.frame_offset], frame, objects)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((seconds, (peak - base) / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    from videoinfer_server.sample import make_sample_video

    with tempfile.TemporaryDirectory(prefix="bench-sheet-") as folder:
        video = Path(folder) / "long.mp4"
        print(f"Writing a {args.minutes:g}-minute {SIZE[0]}x{SIZE[1]} {FPS:g} fps video...", flush=True)
        truth = make_sample_video(video, seconds=args.minutes * 60, fps=FPS, size=SIZE, objects=3)
        print(f"{truth.frame_count} frames, {video.stat().st_size / 2**20:.0f} MiB; results at {INFER_FPS} fps\n")
        print("| method | time | peak RSS increase |\n| --- | ---: | ---: |")
        context = multiprocessing.get_context("spawn")
        for method in ("make_contact_sheet (seek)", "decode every frame", "every sampled frame in memory"):
            queue = context.Queue()
            process = context.Process(
                target=_run, args=(method, str(video), truth.frame_count, str(Path(folder) / "s.png"), queue)
            )
            process.start()
            seconds, mib = queue.get()
            process.join()
            print(f"| {method} | {seconds:.1f} s | {mib:,.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()

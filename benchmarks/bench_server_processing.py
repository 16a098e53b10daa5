"""How much a local-server job costs over just decoding its video.

Run: ``python benchmarks/bench_server_processing.py [--seconds 30] [--fps 30] [--infer-fps 5] [--only MODEL_ID]``.
Generates a 640x360 video, times decoding it alone (``grab()`` every frame, and ``read()`` every
frame), then runs jobs on a real in-process server and reports their processing time (the
server's ``started_at`` → ``finished_at``) as a ratio of the decode-only time. Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from videoinfer_server.launch import run_server
from videoinfer_server.sample import make_sample_video


def decode_only(path: Path, retrieve: bool) -> tuple[float, int]:
    started = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    frames = 0
    while cap.grab():
        if retrieve:
            cap.retrieve()
        frames += 1
    cap.release()
    return time.perf_counter() - started, frames


def run_job(server, path: Path, infer_fps: int, models: list[tuple[str, str]]) -> tuple[float, float]:
    import httpx

    key = {"api_key": server.api_key}
    with httpx.Client(base_url=server.base_url, timeout=600) as http:
        url = http.post("/video_upload_signed_url", params=key, json={"file_name": path.name}).json()["signed_url"]
        with open(path, "rb") as fh:
            httpx.put(url, content=fh, timeout=600).raise_for_status()
        body = {
            "input_url": url,
            "infer_fps": infer_fps,
            "models": [{"model_id": m, "model_version": "1", "inference_type": t} for m, t in models],
        }
        submitted = time.perf_counter()
        job_id = http.post("/videoinfer", params=key, json=body).json()["job_id"]
        while True:
            status = http.get("/videoinfer", params={**key, "job_id": job_id}).json()
            if status["status"] != 1:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - submitted
        assert status["status"] == 0, status
        job = next(j for j in http.get("/_jobs", params=key).json()["jobs"] if j["job_id"] == job_id)
    return job["finished_at"] - job["started_at"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--infer-fps", type=int, default=5)
    parser.add_argument(
        "--only", action="append", default=[], metavar="MODEL_ID", help="run only the scenarios with this model"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        started = time.perf_counter()
        truth = make_sample_video(video, seconds=args.seconds, fps=args.fps, size=(640, 360), objects=3)
        print(
            f"video: {truth.frame_count} frames, 640x360 at {args.fps:g} fps, "
            f"{video.stat().st_size / 1e6:.1f} MB, generated in {time.perf_counter() - started:.2f} s"
        )
        grab_s, frames = min(decode_only(video, retrieve=False) for _ in range(3))
        read_s, _ = min(decode_only(video, retrieve=True) for _ in range(3))
        print(f"decode only, grab() every frame:  {grab_s:6.2f} s ({frames / grab_s:6.0f} frames/s)")
        print(f"decode only, read() every frame:  {read_s:6.2f} s ({frames / read_s:6.0f} frames/s)")
        print(f"jobs at infer_fps {args.infer_fps} ({round(frames * args.infer_fps / args.fps)} sampled frames):")
        scenarios = [
            [("sharpness-classification", "classification")],
            [("motion-detection", "object-detection"), ("sharpness-classification", "classification")],
            [
                ("motion-detection", "object-detection"),
                ("motion-segmentation", "instance-segmentation"),
                ("motion-classification", "classification"),
            ],
            [("motion-detection", "object-detection"), ("people-detection", "object-detection")],
            [("clip", "clip-embed-image")],
            [("gaze", "gaze-detection")],
            [("face-detection", "object-detection"), ("clip", "clip-embed-image"), ("gaze", "gaze-detection")],
        ]
        if args.only:
            scenarios = [models for models in scenarios if any(m in args.only for m, _ in models)]
        with run_server(Path(tmp) / "data", workers=1) as server:
            for models in scenarios:
                processing, wall = run_job(server, video, args.infer_fps, models)
                names = " + ".join(m for m, _ in models)
                print(
                    f"  {names:72s} {processing:6.2f} s  = {processing / grab_s:5.2f} x decode-only "
                    f"(submit to status 0: {wall:.2f} s)"
                )


if __name__ == "__main__":
    main()

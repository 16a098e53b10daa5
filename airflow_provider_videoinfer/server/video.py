"""Decoding, frame sampling and the result file.

Sampling rule: with ``fps`` the frame rate the decoder reports (turned into an exact fraction,
e.g. 23.976 → 2997/125, 23.976023976… → 24000/1001) and ``r = infer_fps``, frame ``i`` is sampled
when ``floor(i * r / fps)`` advances, i.e. frame 0 and then the first frame at or after each
``k * fps / r`` seconds·fps mark: ``i_k = ceil(k * fps / r)``. A 24 fps video at 4 gives 0, 6, 12…;
at 7 it gives 0, 4, 7, 11, 14, 18, 21, 24… The frame choice uses exact fractions, so no frame is
skipped or doubled by rounding. ``time_offset = round(i / fps, 4)`` with ``fps`` the float the
decoder reports (23.976 for a file written at 24000/1001 by OpenCV's writers).

Unsampled frames are only ``grab()``-ed (decoded, never converted to BGR nor copied).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from airflow_provider_videoinfer.results.format import FRAME_OFFSET_KEY, TIME_OFFSET_KEY
from airflow_provider_videoinfer.server.failures import FailureCode, JobFailure
from airflow_provider_videoinfer.server.models.base import VideoFrame


class Interrupted(Exception):
    """The server is stopping; the job is left to be run again at the next start."""


def exact_fps(fps: float) -> Fraction:
    """The frame rate as a fraction: the simplest one within float precision (denominator ≤ 10000)."""
    return Fraction(fps).limit_denominator(10000)


class FrameSampler:
    """Decide which frames to sample; see the module docstring.

    :param fps: the video's frame rate.
    :param infer_fps: the sampling rate.
    """

    def __init__(self, fps: float, infer_fps: int) -> None:
        self.fps = exact_fps(fps)
        self._fps_float = float(fps)
        self._ratio = Fraction(infer_fps) / self.fps
        self._last_slot = -1

    def slot(self, index: int) -> int:
        """``floor(index * infer_fps / fps)``."""
        return math.floor(index * self._ratio)

    def take(self, index: int) -> bool:
        """Whether frame ``index`` is sampled; call with 0, 1, 2… in order."""
        slot = self.slot(index)
        if slot > self._last_slot:
            self._last_slot = slot
            return True
        return False

    def time_offset(self, index: int) -> float:
        """``round(index / fps, 4)``, with ``fps`` the float the decoder reports."""
        return round(index / self._fps_float, 4)


class VideoReader:
    """An opened video; raise :class:`JobFailure` (code 3) when it cannot be decoded.

    :param path: a local video file.
    """

    def __init__(self, path: Path) -> None:
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            self._cap.release()
            raise JobFailure(
                FailureCode.UNREADABLE_VIDEO,
                "the input is not a readable video (corrupt, truncated or not a video file)",
            )
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if not math.isfinite(self.fps) or self.fps <= 0 or self.width <= 0 or self.height <= 0:
            self.close()
            raise JobFailure(
                FailureCode.UNREADABLE_VIDEO, "the input has no usable video stream (no frame rate or size)"
            )

    def close(self) -> None:
        """Release the decoder."""
        self._cap.release()

    def check_infer_fps(self, infer_fps: int) -> None:
        """Raise :class:`JobFailure` (code 5) when ``infer_fps`` is above the frame rate."""
        if Fraction(infer_fps) > exact_fps(self.fps):
            raise JobFailure(
                FailureCode.INFER_FPS_TOO_HIGH,
                f"infer_fps {infer_fps} is above the video's frame rate {self.fps:g}: use at most "
                f"{max(1, math.floor(self.fps))}, ideally a divisor of the frame rate.",
            )

    def frames(self, infer_fps: int, stop: threading.Event | None = None) -> Iterator[VideoFrame]:
        """Yield the sampled frames in order; raise code 3 when not a single frame decodes.

        :param stop: when set, stop with :class:`Interrupted`.
        """
        sampler = FrameSampler(self.fps, infer_fps)
        index = 0
        while self._cap.grab():
            if stop is not None and stop.is_set():
                raise Interrupted()
            if sampler.take(index):
                ok, image = self._cap.retrieve()
                if not ok or image is None:
                    break
                yield VideoFrame(image=image, index=index, time=sampler.time_offset(index))
            index += 1
        if index == 0:
            raise JobFailure(
                FailureCode.UNREADABLE_VIDEO,
                "no frame of the input could be decoded (corrupt or empty video)",
            )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Serialise a frame result (NumPy scalars and arrays allowed); NaN is refused."""
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


class ResultWriter:
    """Collect per-frame results without holding them in memory, then write the result JSON.

    Each model's frame results go to a line-per-frame spool file; :meth:`finish` streams them
    into ``{"frame_offset": [...], "time_offset": [...], "<model_id>": [...], ...}``.

    :param work_dir: a private folder for the spool files.
    :param model_ids: the result keys, in order.
    """

    def __init__(self, work_dir: Path, model_ids: list[str]) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self._model_ids = model_ids
        self._paths = [work_dir / f"model-{i}.jsonl" for i in range(len(model_ids))]
        self._spools: list[IO[str]] = [open(p, "w", encoding="utf-8") for p in self._paths]  # noqa: SIM115
        self.frame_offsets: list[int] = []
        self.time_offsets: list[float] = []

    def add(self, frame: VideoFrame, results: list[str]) -> None:
        """Record one sampled frame; ``results`` holds one serialised result (or ``"null"``) per model."""
        self.frame_offsets.append(frame.index)
        self.time_offsets.append(frame.time)
        for spool, line in zip(self._spools, results, strict=True):
            spool.write(line)
            spool.write("\n")

    def close(self) -> None:
        """Close the spool files."""
        for spool in self._spools:
            spool.close()

    def finish(self, out_path: Path) -> None:
        """Write the result file atomically (``.part`` then rename)."""
        self.close()
        part = out_path.with_name(out_path.name + ".part")
        with open(part, "w", encoding="utf-8") as out:
            out.write("{" + json.dumps(FRAME_OFFSET_KEY) + ":")
            out.write(json.dumps(self.frame_offsets))
            out.write("," + json.dumps(TIME_OFFSET_KEY) + ":")
            out.write(json.dumps(self.time_offsets))
            for model_id, path in zip(self._model_ids, self._paths, strict=True):
                out.write("," + json.dumps(model_id) + ":[")
                with open(path, encoding="utf-8") as spool:
                    for n, line in enumerate(spool):
                        if n:
                            out.write(",")
                        out.write(line.rstrip("\n"))
                out.write("]")
            out.write("}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, out_path)

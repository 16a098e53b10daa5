"""Decoding and frame sampling: which frames of a video a job sees, and their offsets.

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

import math
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.models.base import VideoFrame


class Interrupted(Exception):
    """The server is stopping; the job is left to be run again at the next start."""


def exact_fps(fps: float) -> Fraction:
    """The frame rate as a fraction: the simplest one within float precision (denominator ≤ 10000)."""
    return Fraction(fps).limit_denominator(10000)


class FrameSampler:
    """Decide which frames to sample; see the module docstring.

    :param fps: the video's frame rate.
    :param infer_fps: the sampling rate (a Batch Processing job's ``maxVideoFPS`` may be a fraction).
    """

    def __init__(self, fps: float, infer_fps: float | Fraction) -> None:
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

    def frames(self, infer_fps: float | Fraction, stop: threading.Event | None = None) -> Iterator[VideoFrame]:
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

"""Decoding and frame sampling: which frames of a video a job sees, and their offsets.

Sampling rule: the contract's :class:`~videoinfer_contract.estimate.FrameSampling`, the one the
provider's estimate counts, so that a job samples exactly the frames its estimate said. ``fps`` is
the frame rate the container declares (:mod:`videoinfer_contract.facts`: 30000/1001 for 29.97),
or, when its headers do not say, the one the decoder reports, turned into an exact fraction
(23.976 → 2997/125, 23.976023976… → 24000/1001); ``r = infer_fps``; frame ``i`` is sampled when
``floor(i * r / fps)`` advances: ``i_k = ceil(k * fps / r)``. A 24 fps video at 4 gives 0, 6, 12…;
at 7 it gives 0, 4, 7, 11, 14, 18, 21, 24… ``time_offset = round(i / fps, 4)`` with ``fps`` the
float the decoder reports (23.976 for a file written at 24000/1001 by OpenCV's writers).

Unsampled frames are only ``grab()``-ed (decoded, never converted to BGR nor copied).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from videoinfer_contract.estimate import FrameSampling, exact_fps
from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.models.base import VideoFrame


class Interrupted(Exception):
    """The server is stopping; the job is left to be run again at the next start."""


class FrameSampler(FrameSampling):
    """Decide which frames to sample, and their time offsets; see the module docstring.

    :param fps: the video's frame rate as the decoder reports it (for the time offsets).
    :param infer_fps: the sampling rate (a Batch Processing job's ``maxVideoFPS`` may be a fraction).
    :param exact: the frame rate to sample at; default: ``fps`` as an exact fraction.
    """

    def __init__(self, fps: float, infer_fps: float | Fraction, exact: Fraction | None = None) -> None:
        super().__init__(exact or exact_fps(fps), infer_fps)
        self._fps_float = float(fps)

    def time_offset(self, index: int) -> float:
        """``round(index / fps, 4)``, with ``fps`` the float the decoder reports."""
        return round(index / self._fps_float, 4)


class VideoReader:
    """An opened video; raise :class:`JobFailure` (code 3) when it cannot be decoded.

    :param path: a local video file.
    :param frame_rate: the frame rate its container declares (its facts), sampled at; None: the decoder's.
    """

    def __init__(self, path: Path, frame_rate: Fraction | None = None) -> None:
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
        self.exact_fps = frame_rate or exact_fps(self.fps)

    def close(self) -> None:
        """Release the decoder."""
        self._cap.release()

    def check_infer_fps(self, infer_fps: int) -> None:
        """Raise :class:`JobFailure` (code 5) when ``infer_fps`` is above the frame rate."""
        if Fraction(infer_fps) > self.exact_fps:
            raise JobFailure(
                FailureCode.INFER_FPS_TOO_HIGH,
                f"infer_fps {infer_fps} is above the video's frame rate {self.fps:g}: use at most "
                f"{max(1, math.floor(self.fps))}, ideally a divisor of the frame rate.",
            )

    def frames(self, infer_fps: float | Fraction, stop: threading.Event | None = None) -> Iterator[VideoFrame]:
        """Yield the sampled frames in order; raise code 3 when not a single frame decodes.

        :param stop: when set, stop with :class:`Interrupted`.
        """
        sampler = FrameSampler(self.fps, infer_fps, self.exact_fps)
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

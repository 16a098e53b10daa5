"""Built-in motion models: detection, instance and semantic segmentation, classification.

They see only the job's sampled frames (the server never converts unsampled frames, see
``video.py``), so the background is estimated from them: the per-pixel median of the last
frames sampled, the current one included, over about two seconds (5 to 15 frames), at a working
width of at most 320 pixels. A moving object covers any pixel in fewer than half of those frames,
so it drops out of the median and stands out of the background, without ghosts at its former
places. Once the window is full the median is refreshed every other frame (a background one frame
old is as good, and the median is most of the cost). The first two sampled frames have no
background yet: they get no detections (classification: ``still``). All the motion models of a
job share one background model.

Params (all optional): ``threshold`` colour difference to count as foreground (1-255, default 30),
``min_area`` smallest blob as a fraction of the frame (default 0.0005), ``confidence`` smallest
blob confidence, i.e. how much of its box the blob fills (default 0.3); classification also
``motion_fraction``, the foreground fraction at which moving and still are equally likely
(default 0.005).
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoinfer_contract.results import (
    Classification,
    Detections,
    Point,
    SegmentationMask,
    SemanticSegmentation,
)
from videoinfer_server.models.base import (
    ModelDefinition,
    VideoContext,
    VideoFrame,
    box_prediction,
    classification_result,
    detections_result,
    param_float,
)

_WORK_WIDTH = 320
_MIN_HISTORY = 3


@dataclass(frozen=True)
class Blob:
    """One moving region, in full-frame pixels."""

    box: tuple[int, int, int, int]
    polygon: list[tuple[float, float]]
    fill: float


@dataclass(frozen=True)
class MotionState:
    """The background model's view of one frame."""

    ready: bool
    mask: np.ndarray
    """Foreground mask at working resolution, 0 or 255."""
    strength: np.ndarray
    """Colour difference from the background at working resolution (0-255)."""
    scale: float
    blobs: list[Blob]
    fraction: float
    threshold: float
    """The colour difference at which a pixel counts as foreground."""

    def foreground_confidence(self) -> np.ndarray:
        """How surely each pixel is foreground (0-1) at working resolution: twice the threshold is sure."""
        return np.clip(self.strength.astype(np.float32) / (2.0 * self.threshold), 0.0, 1.0)


class MotionTracker:
    """Median-background foreground extraction over the sampled frames; see the module docstring."""

    def __init__(self, context: VideoContext, threshold: float, min_area: float) -> None:
        self._history: deque[np.ndarray] = deque(maxlen=min(15, max(5, round(2 * context.infer_fps))))
        self._threshold = threshold
        self._min_area = min_area
        self._last: tuple[int, MotionState] | None = None
        self._background: np.ndarray | None = None
        self._seen = 0

    @classmethod
    def for_job(cls, context: VideoContext, params: Mapping[str, Any]) -> MotionTracker:
        """The tracker of this job for these params, shared by the job's motion models."""
        threshold = param_float(params, "threshold", 30.0, minimum=1.0)
        min_area = param_float(params, "min_area", 0.0005, minimum=0.0)
        key = f"motion-tracker:{threshold}:{min_area}"
        if key not in context.shared:
            context.shared[key] = cls(context, threshold, min_area)
        return context.shared[key]

    def analyse(self, frame: VideoFrame) -> MotionState:
        """Update the background with ``frame`` and return its foreground (cached per frame)."""
        if self._last is not None and self._last[0] == frame.index:
            return self._last[1]
        state = self._analyse(frame)
        self._last = (frame.index, state)
        return state

    def _analyse(self, frame: VideoFrame) -> MotionState:
        import cv2

        scale = min(1.0, _WORK_WIDTH / frame.width)
        small: np.ndarray = frame.image
        if scale < 1.0:
            size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        self._history.append(small)
        empty = np.zeros(small.shape[:2], dtype=np.uint8)
        if len(self._history) < _MIN_HISTORY:
            return MotionState(False, empty, empty, scale, [], 0.0, self._threshold)
        self._seen += 1
        full = len(self._history) == self._history.maxlen
        if self._background is None or not full or self._seen % 2 == 0:
            # Once the window is full, a background one frame old is as good: refresh every other frame.
            count = len(self._history) - (1 - len(self._history) % 2)  # odd, so the median is a pixel value
            frames = np.stack(list(self._history)[-count:], axis=-1)
            self._background = np.partition(frames, count // 2, axis=-1)[..., count // 2]
        background = self._background
        strength: np.ndarray = cv2.absdiff(small, background).max(axis=2)
        mask: np.ndarray = np.where(strength > self._threshold, 255, 0).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_pixels = self._min_area * mask.size
        blobs = []
        for contour in contours:
            area = cv2.contourArea(contour)
            if area < min_pixels:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            polygon = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
            blobs.append(
                Blob(
                    box=(round(x / scale), round(y / scale), round(w / scale), round(h / scale)),
                    polygon=[(round(px / scale, 1), round(py / scale, 1)) for px, py in polygon],
                    fill=min(1.0, area / max(1.0, w * h)),
                )
            )
        blobs.sort(key=lambda b: -b.box[2] * b.box[3])
        fraction = float(np.count_nonzero(mask)) / mask.size
        return MotionState(True, mask, strength, scale, blobs, fraction, self._threshold)


class _MotionModel:
    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._tracker = MotionTracker.for_job(context, params)
        self._confidence = param_float(params, "confidence", 0.3)

    def _blobs(self, state: MotionState) -> list[Blob]:
        return [blob for blob in state.blobs if blob.fill >= self._confidence]


class MotionDetector(_MotionModel):
    """``motion-detection``: one box per moving blob, class ``motion``."""

    def infer(self, frame: VideoFrame) -> Detections:
        started = time.perf_counter()
        state = self._tracker.analyse(frame)
        predictions = [box_prediction(*blob.box, blob.fill, "motion", 0) for blob in self._blobs(state)]
        return detections_result(frame, predictions, time.perf_counter() - started)


class MotionSegmenter(_MotionModel):
    """``motion-segmentation``: the moving blobs with their outline polygon as ``points``."""

    def infer(self, frame: VideoFrame) -> Detections:
        started = time.perf_counter()
        state = self._tracker.analyse(frame)
        predictions = [
            box_prediction(*blob.box, blob.fill, "motion", 0, points=tuple(Point(x, y) for x, y in blob.polygon))
            for blob in self._blobs(state)
        ]
        return detections_result(frame, predictions, time.perf_counter() - started, "instance-segmentation")


def _png_base64(image: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(data.tobytes()).decode("ascii")


class ForegroundSegmenter(_MotionModel):
    """``foreground-segmentation``: class 1 ``foreground`` / 0 ``background`` per pixel, at frame size.

    ``confidence_mask`` holds the confidence of each pixel's class scaled to 0-255.
    """

    def infer(self, frame: VideoFrame) -> SemanticSegmentation:
        import cv2

        started = time.perf_counter()
        state = self._tracker.analyse(frame)
        size = (frame.width, frame.height)
        classes: np.ndarray = (state.mask > 0).astype(np.uint8)
        fg_conf = state.foreground_confidence()
        confidence = np.where(classes == 1, fg_conf, 1.0 - fg_conf) if state.ready else np.ones_like(fg_conf)
        confidence_u8: np.ndarray = (confidence * 255).round().astype(np.uint8)
        if state.scale < 1.0:
            classes = cv2.resize(classes, size, interpolation=cv2.INTER_NEAREST)
            confidence_u8 = cv2.resize(confidence_u8, size, interpolation=cv2.INTER_LINEAR)
        mask = SegmentationMask(_png_base64(classes), {0: "background", 1: "foreground"}, _png_base64(confidence_u8))
        return SemanticSegmentation(time=round(time.perf_counter() - started, 5), image=frame.size, predictions=mask)


class MotionClassifier(_MotionModel):
    """``motion-classification``: ``moving`` or ``still`` from the fraction of foreground pixels."""

    CLASS_IDS = {"still": 0, "moving": 1}

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        super().__init__(params, context)
        self._half = max(1e-6, param_float(params, "motion_fraction", 0.005))

    def infer(self, frame: VideoFrame) -> Classification:
        started = time.perf_counter()
        state = self._tracker.analyse(frame)
        moving = min(1.0, state.fraction / (2 * self._half))
        scores = {"moving": moving, "still": 1.0 - moving}
        return classification_result(frame, scores, self.CLASS_IDS, time.perf_counter() - started)


def motion_models() -> list[ModelDefinition]:
    """The built-in motion models."""
    return [
        ModelDefinition("motion-detection", "object-detection", MotionDetector, description="Moving blobs as boxes"),
        ModelDefinition(
            "motion-segmentation",
            "instance-segmentation",
            MotionSegmenter,
            description="Moving blobs with polygon outlines",
        ),
        ModelDefinition(
            "foreground-segmentation",
            "semantic-segmentation",
            ForegroundSegmenter,
            description="Foreground/background mask",
        ),
        ModelDefinition("motion-classification", "classification", MotionClassifier, description="moving/still"),
    ]

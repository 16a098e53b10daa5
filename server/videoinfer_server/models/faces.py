"""Faces and eyes with the Haar cascades OpenCV ships (``cv2.data.haarcascades``), shared by the face models.

Nothing is downloaded: the cascade files come with ``opencv-python-headless``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoinfer_server.models.base import VideoContext, VideoFrame, param_float

# The eye cascade's window is 20 px wide and an eye is about a fifth of a face: the upper half of
# a face narrower than this is enlarged to it before the eyes are searched.
_EYE_SEARCH_WIDTH = 120
# Where a frontal face's eyes sit in the face cascade's box, as fractions of its width and height.
EYE_X_FRACTIONS = (0.3, 0.7)
EYE_Y_FRACTION = 0.39


Eyes = tuple[tuple[float, float] | None, tuple[float, float] | None]
"""The centres of a face's eyes, image-left first; None for an eye not found."""


@dataclass(frozen=True)
class Face:
    """A face found in a frame.

    :param box: ``(x, y, width, height)`` in pixels, top-left corner first.
    :param confidence: the detector's score mapped into (0, 1).
    """

    box: tuple[int, int, int, int]
    confidence: float


def squash(score: float) -> float:
    """Map a detector score (unbounded, 0 = undecided) into (0, 1)."""
    return 1.0 / (1.0 + math.exp(-float(score)))


def gray(frame: VideoFrame) -> np.ndarray:
    """The frame in grey levels, as the cascades want it."""
    import cv2

    return cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)


def cascade(name: str) -> Any:
    """Load one of OpenCV's bundled cascades, e.g. ``haarcascade_eye.xml``."""
    import cv2

    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
    if classifier.empty():
        raise RuntimeError(f"OpenCV's cascade {name} could not be loaded: reinstall opencv-python-headless")
    return classifier


def detect_faces(classifier: Any, image: np.ndarray) -> list[Face]:
    """Frontal faces of a grey image, with confidences."""
    min_side = max(20, min(image.shape[:2]) // 20)
    rects, _levels, weights = classifier.detectMultiScale3(
        image, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
    )
    if len(rects) == 0:
        return []
    pairs = zip(rects, np.ravel(weights), strict=True)
    return [Face((int(r[0]), int(r[1]), int(r[2]), int(r[3])), squash(weight)) for r, weight in pairs]


def find_eyes(classifier: Any, image: np.ndarray, face: Face) -> Eyes:
    """The centres of a face's eyes in frame pixels: ``(image-left eye, image-right eye)``, None when not found.

    Eyes are searched in the upper half of the face; of several candidates on one side of the face,
    the one nearest where a frontal face has its eye is kept.
    """
    import cv2

    x, y, w, h = face.box
    roi = image[y : y + h // 2, x : x + w]
    scale = max(1.0, _EYE_SEARCH_WIDTH / max(1, w))
    if scale > 1.0:
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    min_side = max(4, round(w * scale) // 10)
    found = classifier.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(min_side, min_side))
    centres = [(float(x + (ex + ew / 2) / scale), float(y + (ey + eh / 2) / scale)) for ex, ey, ew, eh in found]
    eyes: list[tuple[float, float] | None] = []
    for side, fraction in enumerate(EYE_X_FRACTIONS):
        expected = (x + fraction * w, y + EYE_Y_FRACTION * h)
        candidates = [c for c in centres if (c[0] < x + w / 2) == (side == 0)]
        best = min(candidates, key=lambda c: math.dist(c, expected), default=None)
        eyes.append(best)
    return eyes[0], eyes[1]


class _FrameFaces:
    """The faces and eyes of a job's current frame, found once for all its face models."""

    def __init__(self) -> None:
        self._face_cascade = cascade("haarcascade_frontalface_default.xml")
        self._eye_cascade: Any = None
        self._index = -1
        self.grey = np.zeros((0, 0), np.uint8)
        self.faces: list[Face] = []
        self._eyes: dict[tuple[int, int, int, int], Eyes] = {}

    def look_at(self, frame: VideoFrame) -> None:
        if frame.index != self._index:
            self._index = frame.index
            self.grey = gray(frame)
            self.faces = detect_faces(self._face_cascade, self.grey)
            self._eyes.clear()

    def eyes(self, face: Face) -> Eyes:
        if face.box not in self._eyes:
            if self._eye_cascade is None:
                self._eye_cascade = cascade("haarcascade_eye.xml")
            self._eyes[face.box] = find_eyes(self._eye_cascade, self.grey, face)
        return self._eyes[face.box]


class FaceFinder:
    """A face model's view of a frame: the faces reaching its ``confidence``, and their eyes.

    The detections are made once per frame and shared by the job's face models (``face-detection``,
    ``face-keypoints``, ``gaze``), each applying its own threshold.

    :param params: the job's ``inference_params`` for this model; ``confidence`` is the smallest face
        confidence (default 0.5), read with :func:`.base.param_float` like every model's params.
    :param context: the job; its ``shared`` dict holds the shared detections.
    """

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        if "frame-faces" not in context.shared:
            context.shared["frame-faces"] = _FrameFaces()
        self._shared: _FrameFaces = context.shared["frame-faces"]
        self.threshold = param_float(params, "confidence", 0.5)

    def faces(self, frame: VideoFrame) -> list[Face]:
        """The frame's faces whose confidence reaches the threshold."""
        self._shared.look_at(frame)
        return [face for face in self._shared.faces if face.confidence >= self.threshold]

    def eyes(self, frame: VideoFrame, face: Face) -> Eyes:
        """The eyes of one of the frame's faces; see :func:`find_eyes`."""
        self._shared.look_at(frame)
        return self._shared.eyes(face)

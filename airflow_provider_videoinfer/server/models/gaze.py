"""Built-in ``gaze`` version ``1`` (``gaze-detection``): faces, their eyes, and head yaw and pitch.

The hosted ``gaze`` model (L2CS-Net) regresses gaze angles with a neural network; this one estimates
them from landmark geometry with OpenCV's Haar cascades, so it runs offline on the CPU with the same
answer shape::

    {"time": s, "predictions": [{"face": {"x", "y", "width", "height", "confidence", "class": "face",
      "class_id": 0, "landmarks": [{"x", "y"}, {"x", "y"}]}, "yaw": rad, "pitch": rad}]}

``x``, ``y`` are the face box's centre in pixels. ``landmarks`` are the eye centres, the image-left
eye first (the person's right eye). A face whose two eyes are not both found has no geometry to
estimate from and is left out.

How the angles are estimated, and their signs:

- **yaw** (turn left/right): the face's width is measured at cheek level (the run of skin-coloured
  columns, skin colour taken from the middle of the face, a little below the eyes) and modelled as a
  cylinder seen from the front; the eyes' midpoint lies ``sin(yaw)`` half-widths off the cheeks'
  centre. **Positive when the face turns toward the image's right** (the person's left), negative
  toward the image's left. When the cheeks cannot be told from the background, the face box stands in
  for them.
- **pitch** (tilt up/down): the eyes' midpoint is compared with where a frontal face has it in the
  face detector's box (0.39 of its height from the top): ``sin(pitch)`` is that offset in half box
  heights. **Positive when the face tilts up** (the eyes sit higher in the box), negative down.

Both are clamped to [-pi/2, pi/2] and rounded to 4 decimals. They are coarse: the frontal-face
detector only finds faces within about 30 degrees of frontal, and its box partly follows the eyes,
so pitch in particular is understated. Params: ``confidence``, the smallest face confidence (default
0.5), read like every built-in model's (see :func:`.base.param_float`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from airflow_provider_videoinfer.server.models.base import ModelDefinition, VideoContext, VideoFrame
from airflow_provider_videoinfer.server.models.faces import EYE_Y_FRACTION, Face, FaceFinder

# Colour distance (in BGR units) within which a pixel counts as the face's skin.
_SKIN_TOLERANCE = 40.0


def _asin(ratio: float) -> float:
    return round(math.asin(max(-1.0, min(1.0, ratio))), 4)


def _skin_colour(image: np.ndarray, face: Face) -> np.ndarray:
    x, y, w, h = face.box
    patch = image[y + round(0.55 * h) : y + round(0.7 * h), x + round(0.3 * w) : x + round(0.7 * w)]
    return np.median(patch.reshape(-1, 3), axis=0).astype(np.float32)


def cheek_span(image: np.ndarray, face: Face, eye_y: float) -> tuple[float, float]:
    """The face's left and right edge in pixels at cheek level, or the box's edges when not found.

    :param image: the BGR frame.
    :param face: the face.
    :param eye_y: the eyes' height; the cheeks are measured between 0.1 and 0.25 face heights below.
    """
    x, y, w, h = face.box
    top, bottom = round(eye_y + 0.1 * h), round(eye_y + 0.25 * h)
    left, right = max(0, x - w // 2), min(image.shape[1], x + w + w // 2)
    band = image[max(0, top) : max(0, bottom), left:right].astype(np.float32)
    if band.size == 0:
        return float(x), float(x + w)
    skin = np.linalg.norm(band - _skin_colour(image, face), axis=2) < _SKIN_TOLERANCE
    columns = skin.mean(axis=0) > 0.5
    centre = x + w // 2 - left
    if not columns[centre]:
        return float(x), float(x + w)
    lo = centre
    while lo > 0 and columns[lo - 1]:
        lo -= 1
    hi = centre
    while hi < len(columns) - 1 and columns[hi + 1]:
        hi += 1
    if lo == 0 or hi == len(columns) - 1 or hi - lo < w // 2:
        # Skin up to the search edge (a background of skin colour) or a sliver: not a face outline.
        return float(x), float(x + w)
    return float(left + lo), float(left + hi + 1)


def head_angles(
    image: np.ndarray, face: Face, left_eye: tuple[float, float], right_eye: tuple[float, float]
) -> tuple[float, float]:
    """``(yaw, pitch)`` in radians from the eyes' position; see the module docstring for the method and signs."""
    x, y, w, h = face.box
    mid_x = (left_eye[0] + right_eye[0]) / 2
    mid_y = (left_eye[1] + right_eye[1]) / 2
    span_left, span_right = cheek_span(image, face, mid_y)
    yaw = _asin((mid_x - (span_left + span_right) / 2) / ((span_right - span_left) / 2))
    pitch = _asin((y + EYE_Y_FRACTION * h - mid_y) / (h / 2))
    return yaw, pitch


class GazeDetector:
    """``gaze``: faces with eye landmarks, yaw and pitch; see the module docstring."""

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._finder = FaceFinder(params, context)

    def infer(self, frame: VideoFrame) -> dict[str, Any]:
        started = time.perf_counter()
        predictions = []
        for face in self._finder.faces(frame):
            left_eye, right_eye = self._finder.eyes(frame, face)
            if left_eye is None or right_eye is None:
                continue
            yaw, pitch = head_angles(frame.image, face, left_eye, right_eye)
            x, y, w, h = face.box
            box = {
                "x": round(x + w / 2, 1),
                "y": round(y + h / 2, 1),
                "width": float(w),
                "height": float(h),
                "confidence": round(face.confidence, 4),
                "class": "face",
                "class_id": 0,
                "landmarks": [{"x": round(ex, 1), "y": round(ey, 1)} for ex, ey in (left_eye, right_eye)],
            }
            predictions.append({"face": box, "yaw": yaw, "pitch": pitch})
        return {"time": round(time.perf_counter() - started, 5), "predictions": predictions}


def gaze_model() -> ModelDefinition:
    """The built-in ``gaze`` model, answering the hosted foundation model's job spec."""
    return ModelDefinition(
        "gaze",
        "gaze-detection",
        GazeDetector,
        description="Faces, eye landmarks, yaw/pitch from eye geometry (Haar cascades; not the hosted L2CS-Net)",
    )

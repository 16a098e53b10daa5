"""Built-in ``gaze`` version ``1`` (``gaze-detection``): faces, their eyes, and head yaw and pitch.

The hosted ``gaze`` model (L2CS-Net) regresses gaze angles with a neural network; this one estimates
them from landmark geometry with OpenCV's Haar cascades, so it runs offline on the CPU with the same
answer shape::

    {"time": s, "predictions": [{"face": {"x", "y", "width", "height", "confidence", "class": "face",
      "class_id": 0, "landmarks": [{"x", "y"}, {"x", "y"}]}, "yaw": rad, "pitch": rad}]}

``x``, ``y`` are the face box's centre in pixels. ``landmarks`` are the eye centres, the image-left
eye first (the person's right eye). A face whose two eyes are not both found has no geometry to
estimate from and is left out.

How the angles are estimated, and their signs. The head is modelled as a sphere seen from the
front: its eyes lie ``sin(yaw)`` half face-widths sideways and ``sin(pitch)`` half face-heights
upwards of where a face looking at the camera has them. The face's outline is found by skin colour:
pixels within a Euclidean BGR distance of 40 of the median colour of the middle of the face, just
under the eyes:

- **yaw** (turn): the face's width is measured at cheek level (the run of mostly-skin columns 0.1 to
  0.25 box heights under the eyes); a frontal face has its eyes' midpoint in the middle.
  **Positive when the face turns toward the image's right** (the person's left).
- **pitch** (tilt): the face's height is measured along the middle fifth of that width (the run of
  skin rows through the cheeks, bridging the eyes, brows and mouth), from the hairline, or the top of
  a bald head, to the chin; a frontal face has its eyes at 0.4 of it from the top (faces divide in
  about equal thirds, hairline to brows, brows to the nose's base, nose to chin). **Positive when
  the face tilts up.**

When the skin reaches the search area's edge (a background of the face's colour) or is too small,
the detector's box stands in for the outline (eyes at 0.39 of its height); it follows the eyes, so
the angles are then understated, pitch most. Both angles are clamped to [-pi/2, pi/2] and rounded
to 4 decimals. They are coarse: the frontal-face detector only finds faces within about 30 degrees of
frontal, a neck of the face's colour lengthens the face (pitch reads high), and hair over the
forehead moves the top. On drawn faces (:func:`~videoinfer_server.sample.make_face_video`)
both are within 0.05 rad of the truth between -0.3 and 0.3 rad.

Params: ``confidence``, the smallest face confidence (default 0.5), read like every built-in
model's (see :func:`.base.param_float`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from videoinfer_contract import results
from videoinfer_contract.results import Gaze, GazeResult, Point
from videoinfer_server.models.base import ModelDefinition, VideoContext, VideoFrame
from videoinfer_server.models.faces import EYE_Y_FRACTION, Face, FaceFinder

# Colour distance (in BGR units) within which a pixel counts as the face's skin.
_SKIN_TOLERANCE = 40.0
# Facing the camera, the eyes are at this fraction of the face's height, from its top (the hairline
# on most faces, the top of the head on a bald one) to the chin: faces divide in about equal thirds
# (hairline to brows, brows to the nose's base, nose to chin) and the eyes sit just under the brows.
_EYE_HEIGHT_FRACTION = 0.4


def _asin(ratio: float) -> float:
    return round(math.asin(max(-1.0, min(1.0, ratio))), 4)


def _run_around(flags: np.ndarray, start: int, shortest: int, gap: int = 0) -> tuple[int, int] | None:
    """The run of True values holding ``start``, as ``(first, last + 1)``, bridging up to ``gap`` False
    values in a row; None when ``flags[start]`` is False, when the run is shorter than ``shortest``, or
    when it reaches either end (then the face cannot be told from its surroundings)."""
    if not 0 <= start < len(flags) or not flags[start]:
        return None
    ends = []
    for step in (-1, 1):
        end, position, missed = start, start, 0
        while 0 <= position + step < len(flags) and missed <= gap:
            position += step
            if flags[position]:
                end, missed = position, 0
            else:
                missed += 1
        if 0 <= position + step < len(flags) or missed > gap:
            ends.append(end)
        else:
            return None
    first, last = ends
    if last + 1 - first < shortest:
        return None
    return first, last + 1


class FaceOutline:
    """Where a face's skin ends, around its detector box: the geometry yaw and pitch are read against.

    :param image: the BGR frame.
    :param face: the face.
    :param eye_y: the eyes' height in pixels.
    """

    def __init__(self, image: np.ndarray, face: Face, eye_y: float) -> None:
        x, y, w, h = face.box
        # Search one half box around the box; the skin colour is the median of the middle of the
        # face just under the eyes (cheeks and nose).
        self._top, self._left = max(0, y - h // 2), max(0, x - w // 2)
        region = image[self._top : y + h + h // 2, self._left : x + w + w // 2].astype(np.float32)
        patch = image[y + round(0.55 * h) : y + round(0.7 * h), x + round(0.3 * w) : x + round(0.7 * w)]
        colour = np.median(patch.reshape(-1, 3), axis=0).astype(np.float32)
        self._skin = np.linalg.norm(region - colour, axis=2) < _SKIN_TOLERANCE
        self._face = face
        self._cheek_row = round(eye_y + 0.17 * h) - self._top

    def width_span(self) -> tuple[float, float] | None:
        """Left and right edge at cheek level (0.1 to 0.25 box heights under the eyes), in pixels."""
        x, _y, w, h = self._face.box
        band = self._skin[max(0, self._cheek_row - round(0.07 * h)) : max(0, self._cheek_row + round(0.08 * h))]
        if band.size == 0:
            return None
        run = _run_around(band.mean(axis=0) > 0.5, x + w // 2 - self._left, w // 2)
        return None if run is None else (float(self._left + run[0]), float(self._left + run[1]))

    def height_span(self, left: float, right: float) -> tuple[float, float] | None:
        """Top and bottom of the face in pixels, along the middle fifth of the cheek span.

        Eyes, brows, nostrils and the mouth interrupt the skin there: gaps up to a fifth of the box's
        height are bridged.
        """
        centre, half = (left + right) / 2 - self._left, (right - left) / 10
        band = self._skin[:, max(0, round(centre - half)) : max(0, round(centre + half) + 1)]
        if band.size == 0:
            return None
        h = self._face.box[3]
        run = _run_around(band.mean(axis=1) >= 0.5, self._cheek_row, h // 2, gap=h // 5)
        return None if run is None else (float(self._top + run[0]), float(self._top + run[1]))


def head_angles(
    image: np.ndarray, face: Face, left_eye: tuple[float, float], right_eye: tuple[float, float]
) -> tuple[float, float]:
    """``(yaw, pitch)`` in radians from the eyes' position; see the module docstring for the method and signs."""
    x, y, w, h = face.box
    mid_x = (left_eye[0] + right_eye[0]) / 2
    mid_y = (left_eye[1] + right_eye[1]) / 2
    outline = FaceOutline(image, face, mid_y)
    width = outline.width_span()
    left, right = width if width is not None else (float(x), float(x + w))
    yaw = _asin((mid_x - (left + right) / 2) / ((right - left) / 2))
    height = outline.height_span(left, right) if width is not None else None
    if height is None:
        # No outline: compare with where a frontal face has its eyes in the detector's box.
        pitch = _asin((y + EYE_Y_FRACTION * h - mid_y) / (h / 2))
    else:
        top, bottom = height
        pitch = _asin((top + _EYE_HEIGHT_FRACTION * (bottom - top) - mid_y) / ((bottom - top) / 2))
    return yaw, pitch


class GazeDetector:
    """``gaze``: faces with eye landmarks, yaw and pitch; see the module docstring."""

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._finder = FaceFinder(params, context)

    def infer(self, frame: VideoFrame) -> GazeResult:
        started = time.perf_counter()
        predictions = []
        for face in self._finder.faces(frame):
            left_eye, right_eye = self._finder.eyes(frame, face)
            if left_eye is None or right_eye is None:
                continue
            yaw, pitch = head_angles(frame.image, face, left_eye, right_eye)
            x, y, w, h = face.box
            box = results.Face(  # the record; faces.Face is the detector's box
                x=round(x + w / 2, 1),
                y=round(y + h / 2, 1),
                width=float(w),
                height=float(h),
                confidence=round(face.confidence, 4),
                class_name="face",
                class_id=0,
                landmarks=tuple(Point(round(ex, 1), round(ey, 1)) for ex, ey in (left_eye, right_eye)),
            )
            predictions.append(Gaze(box, yaw, pitch))
        return GazeResult(time=round(time.perf_counter() - started, 5), predictions=tuple(predictions))


def gaze_model() -> ModelDefinition:
    """The built-in ``gaze`` model, answering the hosted foundation model's job spec."""
    return ModelDefinition(
        "gaze",
        "gaze-detection",
        GazeDetector,
        description="Faces, eye landmarks, yaw/pitch from eye geometry (Haar cascades; not the hosted L2CS-Net)",
    )

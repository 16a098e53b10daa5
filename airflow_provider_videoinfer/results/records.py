"""Typed records of a result file's frames, one per task type of the Video Inference API.

A model's frame result has the shape of the single-image response of its task type; which record
to build is decided from that shape, or from an explicit ``inference_type``. Extra keys are
ignored, so that new fields of the service do not break old readers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

DETECTION_TYPES = ("object-detection", "instance-segmentation", "keypoint-detection")


@dataclass(frozen=True, slots=True)
class Point:
    """A point in pixels of the frame, e.g. a polygon vertex or a face landmark."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Keypoint:
    """One keypoint of a keypoint-detection prediction; the optional fields are None when absent."""

    x: float
    y: float
    confidence: float | None
    class_name: str | None
    class_id: int | None


@dataclass(frozen=True, slots=True)
class Detection:
    """One predicted object: its box centre (``x``, ``y``) and size in pixels, and its class.

    :param points: the polygon of an instance-segmentation prediction, else None.
    :param keypoints: the keypoints of a keypoint-detection prediction, else None.
    """

    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str | None
    class_id: int | None
    detection_id: str | None
    points: tuple[Point, ...] | None = None
    keypoints: tuple[Keypoint, ...] | None = None


@dataclass(frozen=True, slots=True)
class Detections:
    """The result of an object-detection, instance-segmentation or keypoint-detection model on a frame."""

    inference_type: str
    detections: tuple[Detection, ...]
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class ClassPrediction:
    """The confidence of one class of a classification result."""

    class_name: str
    class_id: int | None
    confidence: float


@dataclass(frozen=True, slots=True)
class Classification:
    """The result of a classification model on a frame: the top class and every class's confidence."""

    inference_type: ClassVar[str] = "classification"
    top: str | None
    confidence: float | None
    predictions: tuple[ClassPrediction, ...] = ()
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class SemanticMask:
    """The result of a semantic-segmentation model on a frame.

    :param segmentation_mask: base64 PNG whose pixel values are class ids; see :meth:`mask_png`.
    :param class_map: class id to class name.
    :param confidence_mask: base64 PNG of per-pixel confidence, or None when absent.
    """

    inference_type: ClassVar[str] = "semantic-segmentation"
    segmentation_mask: str
    class_map: Mapping[int, str] = field(default_factory=dict)
    confidence_mask: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None

    def mask_png(self) -> bytes:
        """Return the segmentation mask as PNG bytes (decode them with Pillow or OpenCV)."""
        return base64.b64decode(self.segmentation_mask)


@dataclass(frozen=True, slots=True)
class Gaze:
    """One face of a gaze-detection result: its box, landmarks, and gaze angles in radians."""

    x: float
    y: float
    width: float
    height: float
    confidence: float | None
    yaw: float
    pitch: float
    landmarks: tuple[Point, ...] = ()


@dataclass(frozen=True, slots=True)
class GazeResult:
    """The result of the gaze-detection model on a frame: one :class:`Gaze` per face."""

    inference_type: ClassVar[str] = "gaze-detection"
    gazes: tuple[Gaze, ...]
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Embedding:
    """The CLIP image embedding of a frame."""

    inference_type: ClassVar[str] = "clip-embed-image"
    vector: tuple[float, ...]

    @property
    def dimensions(self) -> int:
        """The embedding's length, 512 or 768 for the hosted CLIP models."""
        return len(self.vector)


@dataclass(frozen=True, slots=True)
class UnknownResult:
    """A frame result of a shape no task type of the contract has; ``data`` is it, as decoded."""

    inference_type: ClassVar[str] = "unknown"
    data: Any


FrameResult = Detections | Classification | SemanticMask | GazeResult | Embedding | UnknownResult


@dataclass(frozen=True, slots=True)
class ResultFrame:
    """One sampled frame and every model's result on it.

    :param index: position of the frame in the file's lists, from 0.
    :param frame_offset: index of the sampled frame in the source video.
    :param time_offset: its time in seconds.
    :param results: each model's result; None where inference failed on that frame.
    """

    index: int
    frame_offset: int | None
    time_offset: float | None
    results: dict[str, FrameResult | None]


def detect_inference_type(data: Any) -> str | None:
    """Guess the task type from a frame result's shape; None when it cannot tell.

    A result whose prediction list is empty cannot be told apart between the detection types
    and gaze-detection; None is returned for it.
    """
    if isinstance(data, list):
        return "clip-embed-image" if all(isinstance(v, (int, float)) for v in data[:1]) else None
    if not isinstance(data, Mapping):
        return None
    predictions = data.get("predictions")
    if isinstance(predictions, Mapping):
        return "semantic-segmentation" if "segmentation_mask" in predictions else "classification"
    if "top" in data:
        return "classification"
    if not isinstance(predictions, list) or not predictions or not isinstance(predictions[0], Mapping):
        return None
    first = predictions[0]
    if "yaw" in first or "face" in first:
        return "gaze-detection"
    if "points" in first:
        return "instance-segmentation"
    if "keypoints" in first:
        return "keypoint-detection"
    return "object-detection"


def parse_frame_result(data: Any, inference_type: str | None = None, strict: bool = False) -> FrameResult | None:
    """Type one model's frame result.

    :param data: the decoded element of the model's list; None stays None.
    :param inference_type: the model's task type, used when the shape cannot tell (no predictions);
        None to decide from the shape alone (defaulting to object-detection for empty predictions).
    :param strict: raise ``ValueError`` when the shape contradicts ``inference_type``, instead of
        following the shape; the three detection types count as one shape.
    """
    if data is None:
        return None
    detected = detect_inference_type(data)
    if inference_type is not None and (detected is None or strict):
        if strict and detected is not None and _family(detected) != _family(inference_type):
            raise ValueError(f"it holds a {detected} result")
        detected = inference_type
    if detected is None:
        if not (isinstance(data, Mapping) and data.get("predictions") == []):
            return UnknownResult(data)
        detected = "object-detection"
    return _PARSERS[_family(detected)](data, detected)


def _family(inference_type: str) -> str:
    return "object-detection" if inference_type in DETECTION_TYPES else inference_type


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _points(values: Any) -> tuple[Point, ...]:
    return tuple(Point(float(p["x"]), float(p["y"])) for p in values or ())


def _image(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    image = data.get("image")
    if not isinstance(image, Mapping):
        return None, None
    return _int(image.get("width")), _int(image.get("height"))


def _detection(p: Mapping[str, Any]) -> Detection:
    points = p.get("points")
    keypoints = p.get("keypoints")
    return Detection(
        float(p["x"]),
        float(p["y"]),
        float(p["width"]),
        float(p["height"]),
        float(p["confidence"]),
        p.get("class"),
        _int(p.get("class_id")),
        p.get("detection_id"),
        None if points is None else _points(points),
        None
        if keypoints is None
        else tuple(
            Keypoint(float(k["x"]), float(k["y"]), _float(k.get("confidence")), k.get("class"), _int(k.get("class_id")))
            for k in keypoints
        ),
    )


def _parse_detections(data: Mapping[str, Any], inference_type: str) -> Detections:
    width, height = _image(data)
    predictions = tuple(_detection(p) for p in data.get("predictions") or ())
    return Detections(inference_type, predictions, width, height, _float(data.get("time")))


def _parse_classification(data: Mapping[str, Any], inference_type: str) -> Classification:
    raw = data.get("predictions") or ()
    if isinstance(raw, Mapping):  # multi-label form: {"class": {"confidence": c, "class_id": i}}
        raw = [{"class": name, **value} for name, value in raw.items() if isinstance(value, Mapping)]
    predictions = tuple(ClassPrediction(str(p["class"]), _int(p.get("class_id")), float(p["confidence"])) for p in raw)
    top, confidence = data.get("top"), _float(data.get("confidence"))
    if top is None and predictions:
        best = max(predictions, key=lambda p: p.confidence)
        top, confidence = best.class_name, best.confidence
    width, height = _image(data)
    return Classification(top, confidence, predictions, width, height, _float(data.get("time")))


def _parse_semantic(data: Mapping[str, Any], inference_type: str) -> SemanticMask:
    predictions = data["predictions"]
    class_map = {int(key): str(name) for key, name in (predictions.get("class_map") or {}).items()}
    width, height = _image(data)
    return SemanticMask(
        predictions["segmentation_mask"],
        class_map,
        predictions.get("confidence_mask"),
        width,
        height,
        _float(data.get("time")),
    )


def _gaze(p: Mapping[str, Any]) -> Gaze:
    face = p.get("face") or p
    return Gaze(
        float(face["x"]),
        float(face["y"]),
        float(face["width"]),
        float(face["height"]),
        _float(face.get("confidence")),
        float(p["yaw"]),
        float(p["pitch"]),
        _points(face.get("landmarks")),
    )


def _parse_gaze(data: Mapping[str, Any], inference_type: str) -> GazeResult:
    return GazeResult(tuple(_gaze(p) for p in data.get("predictions") or ()), _float(data.get("time")))


def _parse_embedding(data: Any, inference_type: str) -> Embedding:
    if isinstance(data, Mapping):  # tolerate {"embeddings": [[...]]}, the single-image API's form
        vectors = data.get("embeddings") or [[]]
        data = vectors[0]
    return Embedding(tuple(float(v) for v in data))


_PARSERS: dict[str, Callable[[Any, str], FrameResult]] = {
    "object-detection": _parse_detections,
    "classification": _parse_classification,
    "semantic-segmentation": _parse_semantic,
    "gaze-detection": _parse_gaze,
    "clip-embed-image": _parse_embedding,
}

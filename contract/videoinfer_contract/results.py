"""The result file's schema: its key names and the typed records of its frames.

One definition for the file's writer (the local server) and its readers (the provider). A result
file is ``{"frame_offset": [...], "time_offset": [...], "<model_id>": [...], ...}``: one element
per sampled frame in every list, each model's element in the shape of the single-image response of
its task type. Which record to build is decided from that shape, or from an explicit
``inference_type``. Extra keys are ignored, so that new fields of the service do not break old
readers. The records are immutable msgspec structs, so that msgspec decodes the common shapes
straight into them and encodes them back (the local server writes them); they compare, hash and
print like frozen dataclasses.

Numbers the service wrote as ``NaN`` or ``Infinity`` stay ``nan``/``inf`` in the records.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec

#: The lists every result file has, one element per sampled frame.
FRAME_OFFSET_KEY = "frame_offset"
TIME_OFFSET_KEY = "time_offset"
#: The public output-format page spells the keys with an ``s``; readers accept both spellings.
FRAME_OFFSET_KEYS = (FRAME_OFFSET_KEY, "frame_offsets")
TIME_OFFSET_KEYS = (TIME_OFFSET_KEY, "time_offsets")

DETECTION_TYPES = ("object-detection", "instance-segmentation", "keypoint-detection")

# Records are built by msgspec from the file, and by the functions below from decoded JSON.


class Point(msgspec.Struct, frozen=True, gc=False):
    """A point in pixels of the frame, e.g. a polygon vertex or a face landmark."""

    x: float
    y: float


class Keypoint(msgspec.Struct, frozen=True, gc=False):
    """One keypoint of a keypoint-detection prediction; the optional fields are None when absent."""

    x: float
    y: float
    confidence: float | None = None
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None


class Detection(msgspec.Struct, frozen=True, gc=False):
    """One predicted object: its box centre (``x``, ``y``) and size in pixels, and its class.

    :param points: the polygon of an instance-segmentation prediction, else None.
    :param keypoints: the keypoints of a keypoint-detection prediction, else None.
    """

    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None
    detection_id: str | None = None
    points: tuple[Point, ...] | None = None
    keypoints: tuple[Keypoint, ...] | None = None


class Detections(msgspec.Struct, frozen=True, gc=False):
    """The result of an object-detection, instance-segmentation or keypoint-detection model on a frame."""

    inference_type: str
    detections: tuple[Detection, ...]
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None


class ClassPrediction(msgspec.Struct, frozen=True, gc=False):
    """The confidence of one class of a classification result."""

    class_name: str = msgspec.field(name="class")
    confidence: float
    class_id: int | None = None


class Classification(msgspec.Struct, frozen=True, gc=False):
    """The result of a classification model on a frame: the top class and every class's confidence."""

    inference_type: ClassVar[str] = "classification"
    top: str | None
    confidence: float | None
    predictions: tuple[ClassPrediction, ...] = ()
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None


class SemanticMask(msgspec.Struct, frozen=True, gc=False):
    """The result of a semantic-segmentation model on a frame.

    :param segmentation_mask: base64 PNG whose pixel values are class ids; see :meth:`mask_png`.
    :param class_map: class id to class name.
    :param confidence_mask: base64 PNG of per-pixel confidence, or None when absent.
    """

    inference_type: ClassVar[str] = "semantic-segmentation"
    segmentation_mask: str
    class_map: Mapping[int, str] = msgspec.field(default_factory=dict)
    confidence_mask: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    time: float | None = None

    def mask_png(self) -> bytes:
        """Return the segmentation mask as PNG bytes (decode them with Pillow or OpenCV)."""
        return base64.b64decode(self.segmentation_mask)


class Gaze(msgspec.Struct, frozen=True, gc=False):
    """One face of a gaze-detection result: its box, landmarks, and gaze angles in radians."""

    x: float
    y: float
    width: float
    height: float
    confidence: float | None
    yaw: float
    pitch: float
    landmarks: tuple[Point, ...] = ()


class GazeResult(msgspec.Struct, frozen=True, gc=False):
    """The result of the gaze-detection model on a frame: one :class:`Gaze` per face."""

    inference_type: ClassVar[str] = "gaze-detection"
    gazes: tuple[Gaze, ...]
    time: float | None = None


class Embedding(msgspec.Struct, frozen=True, gc=False):
    """The CLIP image embedding of a frame."""

    inference_type: ClassVar[str] = "clip-embed-image"
    vector: tuple[float, ...]

    @property
    def dimensions(self) -> int:
        """The embedding's length, 512 or 768 for the hosted CLIP models."""
        return len(self.vector)


class UnknownResult(msgspec.Struct, frozen=True, gc=False):
    """A frame result of a shape no task type of the contract has; ``data`` is it, as decoded."""

    inference_type: ClassVar[str] = "unknown"
    data: Any


FrameResult = Detections | Classification | SemanticMask | GazeResult | Embedding | UnknownResult


class ResultFrame(msgspec.Struct, frozen=True, gc=False):
    """One sampled frame and every model's result on it.

    :param index: position of the frame in the file's lists, from 0.
    :param frame_offset: index of the sampled frame in the source video.
    :param time_offset: its time in seconds (``nan`` if the file says ``NaN``).
    :param results: each model's result; None where inference failed on that frame.
    """

    index: int
    frame_offset: int | None
    time_offset: float | None
    results: dict[str, FrameResult | None]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _embedding_vector(data: Any) -> list[Any] | None:
    """The vector of a CLIP result in any of its shapes: a bare list, ``{"embeddings": [[...]]}``
    or ``{"embedding": [...]}``; None when ``data`` is none of them."""
    if isinstance(data, Mapping):
        vectors = data.get("embeddings")
        if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
            data = vectors[0]
        else:
            data = data.get("embedding")
    if isinstance(data, list) and data and all(_is_number(v) for v in data):
        return data
    return None


def detect_inference_type(data: Any) -> str | None:
    """Guess the task type from a frame result's shape; None when it cannot tell.

    A result whose prediction list is empty cannot be told apart between the detection types
    and gaze-detection; None is returned for it.
    """
    if _embedding_vector(data) is not None:
        return "clip-embed-image"
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
    if "x" not in first:
        return "classification"
    if "points" in first:
        return "instance-segmentation"
    if "keypoints" in first:
        return "keypoint-detection"
    return "object-detection"


def parse_frame_result(data: Any, inference_type: str | None = None, strict: bool = False) -> FrameResult | None:
    """Type one model's frame result, as decoded from JSON.

    A result that fits no task type becomes an :class:`UnknownResult`, unless ``strict``.

    :param data: the decoded element of the model's list; None stays None.
    :param inference_type: the model's task type, used when the shape cannot tell (no predictions);
        None to decide from the shape alone (defaulting to object-detection for empty predictions).
    :param strict: raise ``ValueError`` when the shape contradicts ``inference_type`` or does not
        fit it, instead of following the shape; the three detection types count as one shape.
    """
    if data is None:
        return None
    detected = detect_inference_type(data)
    if inference_type is not None and (detected is None or strict):
        if strict and detected is not None and family(detected) != family(inference_type):
            raise ValueError(f"it holds a {detected} result")
        detected = inference_type
    if detected is None:
        if not (isinstance(data, Mapping) and data.get("predictions") in ([], None) and "predictions" in data):
            return UnknownResult(data)
        detected = "object-detection"
    try:
        return _PARSERS[family(detected)](data, detected)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, msgspec.ValidationError) as err:
        if strict:
            raise ValueError(str(err)) from None
        return UnknownResult(data)


def family(inference_type: str) -> str:
    """The record family of a task type: the three detection types share one."""
    return "object-detection" if inference_type in DETECTION_TYPES else inference_type


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


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
        _text(p.get("class")),
        _int(p.get("class_id")),
        _text(p.get("detection_id")),
        None if points is None else _points(points),
        None if keypoints is None else tuple(_keypoint(k) for k in keypoints),
    )


def _keypoint(k: Mapping[str, Any]) -> Keypoint:
    confidence, name, class_id = _float(k.get("confidence")), _text(k.get("class")), _int(k.get("class_id"))
    return Keypoint(float(k["x"]), float(k["y"]), confidence, name, class_id)


def detections_type(predictions: tuple[Detection, ...], default: str) -> str:
    """The detection task type that the first prediction's shape says, else ``default``."""
    if predictions:
        first = predictions[0]
        if first.points is not None:
            return "instance-segmentation"
        if first.keypoints is not None:
            return "keypoint-detection"
        return "object-detection"
    return default


def _parse_detections(data: Mapping[str, Any], inference_type: str) -> Detections:
    width, height = _image(data)
    predictions = tuple(_detection(p) for p in data.get("predictions") or ())
    return Detections(inference_type, predictions, width, height, _float(data.get("time")))


def _parse_classification(data: Mapping[str, Any], inference_type: str) -> Classification:
    raw = data.get("predictions") or ()
    if isinstance(raw, Mapping):  # multi-label form: {"class": {"confidence": c, "class_id": i}}
        raw = [{"class": name, **value} for name, value in raw.items() if isinstance(value, Mapping)]
    predictions = tuple(ClassPrediction(str(p["class"]), float(p["confidence"]), _int(p.get("class_id"))) for p in raw)
    top, confidence = _text(data.get("top")), _float(data.get("confidence"))
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
        str(predictions["segmentation_mask"]),
        class_map,
        _text(predictions.get("confidence_mask")),
        width,
        height,
        _float(data.get("time")),
    )


def gaze(face: Mapping[str, Any] | Any, yaw: Any, pitch: Any) -> Gaze:
    """One :class:`Gaze` from a face box (a mapping, or any object with the same attributes)."""
    get: Callable[[str], Any] = face.get if isinstance(face, Mapping) else lambda name: getattr(face, name, None)
    landmarks = get("landmarks")
    return Gaze(
        float(get("x")),
        float(get("y")),
        float(get("width")),
        float(get("height")),
        _float(get("confidence")),
        float(yaw),
        float(pitch),
        landmarks if isinstance(landmarks, tuple) else _points(landmarks),
    )


def _parse_gaze(data: Mapping[str, Any], inference_type: str) -> GazeResult:
    faces = tuple(gaze(p.get("face") or p, p["yaw"], p["pitch"]) for p in data.get("predictions") or ())
    return GazeResult(faces, _float(data.get("time")))


def _parse_embedding(data: Any, inference_type: str) -> Embedding:
    vector = _embedding_vector(data)
    if vector is None:
        raise ValueError("it is not a list of numbers, nor an object with 'embeddings' or 'embedding'")
    return Embedding(tuple(float(v) for v in vector))


_PARSERS: dict[str, Callable[[Any, str], FrameResult]] = {
    "object-detection": _parse_detections,
    "classification": _parse_classification,
    "semantic-segmentation": _parse_semantic,
    "gaze-detection": _parse_gaze,
    "clip-embed-image": _parse_embedding,
}

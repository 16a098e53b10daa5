"""The result file's schema: its key names and the typed records of its frames.

One definition for the file's writer (the local server builds these records and encodes them with
:func:`encode_frame_result`) and its readers (the provider decodes the file straight into them). A
result file is ``{"frame_offset": [...], "time_offset": [...], "<model_id>": [...], ...}``: one
element per sampled frame in every list, each model's element in the shape of the single-image
response of its task type. The records have the fields and the key names of those responses, so
that msgspec encodes a record into exactly what the contract shows, and decodes the contract's
shape straight into the record::

    Detections(time=0.01, image=Image(width=640, height=480), predictions=(Detection(...),))
    -> {"time": 0.01, "image": {"width": 640, "height": 480}, "predictions": [{"x": ..., "class": ...}]}

A field left at its default (None, or an empty list where the contract has no empty list) is not
written. Readers also accept the other shapes the service and its documentation produce (a
multi-label classification, a CLIP result wrapped in an object, a gaze face without ``face``):
:func:`parse_frame_result` turns them into the same records. Extra keys are ignored, so that new
fields of the service do not break old readers. The records are immutable msgspec structs; they
compare and print like frozen dataclasses.

Numbers the service wrote as ``NaN`` or ``Infinity`` stay ``nan``/``inf`` in the records that a
reader builds; :func:`encode_frame_result` refuses them, since JSON has no spelling for them.
"""

from __future__ import annotations

import base64
import json
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


class Image(msgspec.Struct, frozen=True, gc=False):
    """The size in pixels of the image the model saw (``image`` of a frame result)."""

    width: int
    height: int


class Point(msgspec.Struct, frozen=True, gc=False):
    """A point in pixels of the frame, e.g. a polygon vertex or a face landmark."""

    x: float
    y: float


class Keypoint(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One keypoint of a keypoint-detection prediction; the optional fields are None when absent."""

    x: float
    y: float
    confidence: float | None = None
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None


class Detection(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
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


class Detections(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of an object-detection model on a frame (and the base of the other two detection types).

    :param time: the inference time in seconds, as the service reports it; optional.
    :param image: the size of the image the boxes are measured in; optional.
    :param predictions: the objects found (written even when empty).
    """

    inference_type: ClassVar[str] = "object-detection"
    time: float | None = None
    image: Image | None = None
    predictions: tuple[Detection, ...]


class SegmentedDetections(Detections, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of an instance-segmentation model: :class:`Detections` whose predictions have ``points``."""

    inference_type: ClassVar[str] = "instance-segmentation"


class KeypointDetections(Detections, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of a keypoint-detection model: :class:`Detections` whose predictions have ``keypoints``."""

    inference_type: ClassVar[str] = "keypoint-detection"


class ClassPrediction(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The confidence of one class of a classification result."""

    class_name: str = msgspec.field(name="class")
    class_id: int | None = None
    confidence: float


class Classification(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of a classification model on a frame: every class's confidence and the top class.

    :param top: the most likely class; None only for a multi-label result without predictions.
    :param confidence: the top class's confidence.
    """

    inference_type: ClassVar[str] = "classification"
    time: float | None = None
    image: Image | None = None
    predictions: tuple[ClassPrediction, ...] = ()
    top: str | None
    confidence: float | None = None


class SegmentationMask(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The ``predictions`` of a semantic-segmentation result.

    :param segmentation_mask: base64 PNG whose pixel values are class ids.
    :param class_map: class id to class name (written with the ids as strings, as JSON wants).
    :param confidence_mask: base64 PNG of per-pixel confidence, or None when absent.
    """

    segmentation_mask: str
    class_map: Mapping[int, str] = msgspec.field(default_factory=dict)
    confidence_mask: str | None = None


class SemanticSegmentation(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of a semantic-segmentation model on a frame; see :meth:`mask_png`."""

    inference_type: ClassVar[str] = "semantic-segmentation"
    time: float | None = None
    image: Image | None = None
    predictions: SegmentationMask

    def mask_png(self) -> bytes:
        """Return the segmentation mask as PNG bytes (decode them with Pillow or OpenCV)."""
        return base64.b64decode(self.predictions.segmentation_mask)


class Face(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A face of a gaze-detection result: its box centre and size in pixels, and its landmarks (the eyes)."""

    x: float
    y: float
    width: float
    height: float
    confidence: float | None = None
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None
    landmarks: tuple[Point, ...] = ()


class Gaze(msgspec.Struct, frozen=True, gc=False):
    """One face of a gaze-detection result and where it looks: ``yaw`` and ``pitch`` in radians."""

    face: Face
    yaw: float
    pitch: float


class GazeResult(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The result of the gaze-detection model on a frame: one :class:`Gaze` per face (written even when empty)."""

    inference_type: ClassVar[str] = "gaze-detection"
    time: float | None = None
    predictions: tuple[Gaze, ...]


class Embedding(msgspec.Struct, frozen=True, gc=False):
    """The CLIP image embedding of a frame; the file holds ``vector`` as a bare list of numbers."""

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


FrameResult = Detections | Classification | SemanticSegmentation | GazeResult | Embedding | UnknownResult

#: The record of each detection task type.
DETECTION_RECORDS: dict[str, type[Detections]] = {
    "object-detection": Detections,
    "instance-segmentation": SegmentedDetections,
    "keypoint-detection": KeypointDetections,
}
#: The record of each task type, as the file holds it (``clip-embed-image``: its ``vector``).
RECORD_TYPES: dict[str, type[FrameResult]] = {
    **DETECTION_RECORDS,
    "classification": Classification,
    "semantic-segmentation": SemanticSegmentation,
    "gaze-detection": GazeResult,
    "clip-embed-image": Embedding,
}


def _to_json_value(value: Any) -> Any:
    """msgspec's hook for what it cannot encode: NumPy scalars and arrays (anything with ``tolist``)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ENCODER = msgspec.json.Encoder(enc_hook=_to_json_value)


def encode_frame_result(result: FrameResult | Any) -> bytes:
    """The JSON of one model's frame result, as the result file holds it.

    :param result: a record of this module (an :class:`Embedding` is written as its bare ``vector``,
        an :class:`UnknownResult` as its ``data``), or a value of the same shape in plain JSON types
        (NumPy numbers and arrays allowed).
    :raises ValueError: the result holds ``NaN`` or an infinity, which JSON cannot hold.
    :raises TypeError: the result holds a value that is not JSON (e.g. a set).
    """
    if isinstance(result, Embedding):
        result = result.vector
    elif isinstance(result, UnknownResult):
        result = result.data
    data = _ENCODER.encode(result)
    # msgspec writes NaN and infinities as null: a result whose JSON has a null is checked again,
    # by the standard library, which refuses them.
    if b"null" in data:
        try:
            json.dumps(msgspec.to_builtins(result, enc_hook=_to_json_value), allow_nan=False)
        except ValueError:
            raise ValueError("the frame result holds NaN or an infinity, which JSON cannot hold") from None
    return data


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


def _image(data: Mapping[str, Any]) -> Image | None:
    image = data.get("image")
    if not isinstance(image, Mapping) or image.get("width") is None or image.get("height") is None:
        return None
    return Image(int(image["width"]), int(image["height"]))


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
    predictions = tuple(_detection(p) for p in data.get("predictions") or ())
    record = DETECTION_RECORDS[inference_type]
    return record(time=_float(data.get("time")), image=_image(data), predictions=predictions)


def _parse_classification(data: Mapping[str, Any], inference_type: str) -> Classification:
    raw = data.get("predictions") or ()
    if isinstance(raw, Mapping):  # multi-label form: {"class": {"confidence": c, "class_id": i}}
        raw = [{"class": name, **value} for name, value in raw.items() if isinstance(value, Mapping)]
    predictions = tuple(
        ClassPrediction(class_name=str(p["class"]), class_id=_int(p.get("class_id")), confidence=float(p["confidence"]))
        for p in raw
    )
    top, confidence = _text(data.get("top")), _float(data.get("confidence"))
    if top is None and predictions:
        best = max(predictions, key=lambda p: p.confidence)
        top, confidence = best.class_name, best.confidence
    return Classification(
        time=_float(data.get("time")), image=_image(data), predictions=predictions, top=top, confidence=confidence
    )


def _parse_semantic(data: Mapping[str, Any], inference_type: str) -> SemanticSegmentation:
    predictions = data["predictions"]
    class_map = {int(key): str(name) for key, name in (predictions.get("class_map") or {}).items()}
    mask = SegmentationMask(str(predictions["segmentation_mask"]), class_map, _text(predictions.get("confidence_mask")))
    return SemanticSegmentation(time=_float(data.get("time")), image=_image(data), predictions=mask)


def _face(face: Mapping[str, Any]) -> Face:
    return Face(
        float(face["x"]),
        float(face["y"]),
        float(face["width"]),
        float(face["height"]),
        _float(face.get("confidence")),
        _text(face.get("class")),
        _int(face.get("class_id")),
        _points(face.get("landmarks")),
    )


def _parse_gaze(data: Mapping[str, Any], inference_type: str) -> GazeResult:
    # A face's box may come flat in the prediction instead of under "face".
    gazes = tuple(
        Gaze(_face(p.get("face") or p), float(p["yaw"]), float(p["pitch"])) for p in data.get("predictions") or ()
    )
    return GazeResult(time=_float(data.get("time")), predictions=gazes)


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

"""The model protocol of the local server, and helpers to build the contract's frame results.

A *model* is any object with these attributes and one method::

    model_id: str            # e.g. "people-detection"
    model_version: str       # e.g. "1"
    inference_type: str      # one of videoinfer_contract.validation.INFERENCE_TYPES
    description: str         # one line, shown by GET /models and `videoinfer-server models`
    def open(self, params: Mapping[str, Any], context: VideoContext) -> FrameModel: ...

``open`` is called once per job with the job's ``inference_params`` and returns a *frame model*:
an object with ``infer(frame: VideoFrame) -> result`` or a plain callable ``(frame) -> result``. It
sees the job's sampled frames in order, so it may keep state (the motion models do). The result is
a record of :mod:`videoinfer_contract.results` (what the built-in models return, and what the
provider's reader types), or the same shape in plain JSON values (dicts, lists, numbers, NumPy
numbers); an exception on a frame, or a ``NaN`` in its result, gives ``null`` for that frame in the
result file.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from videoinfer_contract.results import (
    DETECTION_RECORDS,
    Classification,
    ClassPrediction,
    Detection,
    Detections,
    Image,
    Keypoint,
    Point,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame.

    :param image: the decoded frame, BGR ``uint8`` of shape ``(height, width, 3)``.
    :param index: its index in the video (the result's ``frame_offset``).
    :param time: its time in seconds (the result's ``time_offset``).
    """

    image: np.ndarray
    index: int
    time: float

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.image.shape[0])

    @property
    def size(self) -> Image:
        """Its size, the ``image`` of a frame result."""
        return Image(self.width, self.height)


@dataclass
class VideoContext:
    """What a model knows about the job's video when it is opened.

    :param fps: the video's frame rate as the decoder reports it.
    :param infer_fps: the job's sampling rate.
    :param width: frame width in pixels.
    :param height: frame height in pixels.
    :param shared: a dict shared by all models of the job, to share work (e.g. one background
        model for all the motion models).
    """

    fps: float
    infer_fps: int
    width: int
    height: int
    shared: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class FrameModel(Protocol):
    """A model opened for one job."""

    def infer(self, frame: VideoFrame) -> Any:
        """Return the frame result (JSON-serialisable)."""


@runtime_checkable
class VideoModel(Protocol):
    """A model the server can run; see the module docstring."""

    @property
    def model_id(self) -> str:
        """The id jobs use."""

    @property
    def model_version(self) -> str:
        """The version jobs use."""

    @property
    def inference_type(self) -> str:
        """One of the contract's inference types."""

    @property
    def description(self) -> str:
        """One line for listings."""

    def open(self, params: Mapping[str, Any], context: VideoContext) -> FrameModel | Callable[[VideoFrame], Any]:
        """Prepare the model for one job."""


@dataclass(frozen=True)
class ModelDefinition:
    """A ready-made :class:`VideoModel`: ids plus a factory.

    :param model_id: the id jobs use.
    :param inference_type: one of the contract's inference types.
    :param factory: ``factory(params, context)`` returning a frame model or a callable ``(frame) -> result``.
    :param model_version: the version jobs use; ``"1"`` by default.
    :param description: one line for listings.
    """

    model_id: str
    inference_type: str
    factory: Callable[[Mapping[str, Any], VideoContext], Any]
    model_version: str = "1"
    description: str = ""

    def open(self, params: Mapping[str, Any], context: VideoContext) -> Any:
        """Call the factory."""
        return self.factory(params, context)


def simple_model(
    model_id: str,
    inference_type: str,
    fn: Callable[[VideoFrame, Mapping[str, Any]], Any],
    *,
    model_version: str = "1",
    description: str = "",
) -> ModelDefinition:
    """Wrap a stateless function ``fn(frame, params) -> result`` as a model.

    :param model_id: the id jobs use.
    :param inference_type: one of the contract's inference types.
    :param fn: computes one frame's result.
    :param model_version: the version jobs use; ``"1"`` by default.
    :param description: one line for listings.
    """

    def factory(params: Mapping[str, Any], context: VideoContext) -> Callable[[VideoFrame], Any]:
        return lambda frame: fn(frame, params)

    return ModelDefinition(model_id, inference_type, factory, model_version, description)


def param_float(params: Mapping[str, Any], name: str, default: float, *, minimum: float | None = None) -> float:
    """Read a numeric inference parameter.

    Every built-in model reads its ``inference_params`` through this function or :func:`param_int`,
    so they all treat them alike: keys a model does not use are ignored, and a value that is not a
    finite number (a numeric string counts), or is below ``minimum``, is replaced by ``default`` with
    a warning in the server's log. A job never fails because of its ``inference_params``.

    :param params: the job's ``inference_params`` for this model.
    :param name: the parameter.
    :param default: used when the parameter is absent or invalid.
    :param minimum: the smallest valid value; None for no bound.
    """
    if name not in params:
        return default
    value = params[name]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        bound = f" of at least {minimum:g}" if minimum is not None else ""
        log.warning("inference_params.%s=%r is not a number%s; using the default %g", name, value, bound, default)
        return default
    return number


def param_int(params: Mapping[str, Any], name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer inference parameter, like :func:`param_float`; a fractional value is invalid."""
    number = param_float(params, name, float(default), minimum=minimum)
    if not number.is_integer():
        log.warning("inference_params.%s=%r is not an integer; using the default %d", name, number, default)
        return default
    return int(number)


def box_prediction(
    x: float,
    y: float,
    w: float,
    h: float,
    confidence: float,
    class_name: str,
    class_id: int,
    *,
    points: tuple[Point, ...] | None = None,
    keypoints: tuple[Keypoint, ...] | None = None,
) -> Detection:
    """A detection from a top-left box: ``x``, ``y`` become the box centre.

    :param points: the polygon of an instance-segmentation prediction.
    :param keypoints: the keypoints of a keypoint-detection prediction.
    """
    return Detection(
        x=round(float(x) + float(w) / 2, 1),
        y=round(float(y) + float(h) / 2, 1),
        width=float(w),
        height=float(h),
        confidence=round(min(1.0, max(0.0, float(confidence))), 4),
        class_name=class_name,
        class_id=int(class_id),
        detection_id=str(uuid.uuid4()),
        points=points,
        keypoints=keypoints,
    )


def detections_result(
    frame: VideoFrame, predictions: list[Detection], elapsed: float, inference_type: str = "object-detection"
) -> Detections:
    """The result of a detection model on ``frame``.

    :param elapsed: inference time in seconds, reported as ``time`` like the hosted service does.
    :param inference_type: ``object-detection`` (default), ``instance-segmentation`` or ``keypoint-detection``.
    """
    record = DETECTION_RECORDS[inference_type]
    return record(time=round(elapsed, 5), image=frame.size, predictions=tuple(predictions))


def classification_result(
    frame: VideoFrame, scores: Mapping[str, float], class_ids: Mapping[str, int], elapsed: float
) -> Classification:
    """A classification result from per-class confidences, best first.

    :param elapsed: inference time in seconds, reported as ``time`` like the hosted service does.
    """
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    predictions = tuple(
        ClassPrediction(class_name=name, class_id=class_ids[name], confidence=round(float(conf), 4))
        for name, conf in ranked
    )
    return Classification(
        time=round(elapsed, 5),
        image=frame.size,
        predictions=predictions,
        top=ranked[0][0],
        confidence=round(float(ranked[0][1]), 4),
    )

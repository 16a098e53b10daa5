"""Turn batches of a result file's lists into typed values, with msgspec where the shape allows.

Each list of a result file gets one decoder. The frame and time offsets decode straight into
numbers. A model's frames decode, batch by batch, straight into the records of
:mod:`~videoinfer_contract.results` once the model's task type is known (from a
hint or from its first frames); a batch that does not fit is decoded frame by frame, and a frame
that fits no type becomes an ``UnknownResult`` (or an error, for a model whose type was given).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

from airflow_provider_videoinfer.contract import INFERENCE_TYPES
from videoinfer_contract.results import (
    DETECTION_RECORDS,
    RECORD_TYPES,
    Detections,
    Embedding,
    FrameResult,
    detections_type,
    parse_frame_result,
)

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()
_AT_LEAST_0 = msgspec.Meta(ge=0)


class FrameValueError(Exception):
    """One element of a list cannot be read; ``index`` is its position in the list.

    Not a ``ValueError``: the stream takes those for a badly cut batch.
    """

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


# What msgspec decodes a task type's frames into: its record, the very type the local server
# writes; a CLIP frame is its bare vector. Any other shape goes through parse_frame_result.
_DECODED: dict[str, Any] = {
    inference_type: tuple[float, ...] if record is Embedding else record
    for inference_type, record in RECORD_TYPES.items()
}
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(list[decoded | None])  # type: ignore[valid-type]
    for name, decoded in _DECODED.items()
}
_ELEMENT_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(decoded) for name, decoded in _DECODED.items()
}


class FrameDecoder:
    """Decode one model's list of frame results, batch by batch, remembering the model's type.

    :param model_id: the model's key in the file, for messages.
    :param inference_type: the model's task type when known; else read from the frames' shape.
    :param strict: the type was given by the user: a frame that contradicts it is an error
        (:class:`FrameValueError`) rather than an ``UnknownResult``.
    """

    def __init__(self, model_id: str, inference_type: str | None = None, strict: bool = False) -> None:
        self.model_id = model_id
        self.inference_type = inference_type
        self.strict = strict
        self.count = 0

    def decode(self, text: bytes) -> list[FrameResult | None]:
        """Decode the JSON text of a batch of frames (``b"[...]"``)."""
        decoder = _DECODERS.get(self.inference_type) if self.inference_type is not None else None
        if decoder is not None:
            try:
                decoded = decoder.decode(text)
            except msgspec.ValidationError:
                pass  # some frame has another shape: decode the batch frame by frame
            else:
                results = self._typed(decoded)
                self.count += len(results)
                return results
        return [self._element(raw) for raw in _RAW_LIST.decode(text)]

    def _typed(self, decoded: list[Any]) -> list[FrameResult | None]:
        """The records of frames msgspec decoded as the model's type."""
        default = self.inference_type or "object-detection"
        if default == "clip-embed-image":
            return [None if vector is None else Embedding(vector) for vector in decoded]
        if self.strict or not issubclass(RECORD_TYPES[default], Detections):
            return decoded
        # Without a hint, a frame's first prediction says which detection type it is.
        results: list[FrameResult | None] = []
        for record in decoded:
            if record is not None and record.predictions:
                inference_type = self.inference_type = detections_type(record.predictions, default)
                if inference_type != record.inference_type:
                    cls = DETECTION_RECORDS[inference_type]
                    record = cls(time=record.time, image=record.image, predictions=record.predictions)
            results.append(record)
        return results

    def _element(self, raw: msgspec.Raw) -> FrameResult | None:
        if self.inference_type is not None and not (len(raw) == 4 and bytes(raw) == b"null"):
            # A model's type is known from its first frames: decode the rest of that batch typed too.
            decoder = _ELEMENT_DECODERS.get(self.inference_type)
            if decoder is not None:
                try:
                    decoded = decoder.decode(raw)
                except msgspec.ValidationError:
                    pass
                else:
                    self.count += 1
                    return self._typed([decoded])[0]
        try:
            value = _ANY.decode(raw)
        except msgspec.DecodeError:  # e.g. a number out of msgspec's range: the standard library reads it
            import json

            value = json.loads(bytes(raw))
        return self.convert(value)

    def convert(self, value: Any) -> FrameResult | None:
        """Type one frame result decoded in Python's types (the stream's fallback)."""
        index = self.count
        self.count += 1
        try:
            result = parse_frame_result(value, self.inference_type, strict=self.strict)
        except ValueError as err:
            raise FrameValueError(
                index,
                f"frame {index} of model {self.model_id!r} does not have the shape of a "
                f"{self.inference_type or 'known'} result: {err}",
            ) from None
        if result is not None and not self.strict and result.inference_type in INFERENCE_TYPES:
            # Remember the model's type, so that frames without predictions keep it.
            self.inference_type = result.inference_type
        return result


class CountedDetection(msgspec.Struct, gc=False):
    """What a summary reads of one prediction of a detection model: its class, and what its kind is.

    ``x`` is required because it tells a detection from another kind of prediction; the other
    fields of :class:`~videoinfer_contract.results.Detection` are skipped (in C, by msgspec).
    ``points`` and ``keypoints`` are only told apart from absent (they make the model an
    instance-segmentation or keypoint-detection one).
    """

    x: float
    class_name: str | None = msgspec.field(default=None, name="class")
    points: Any = None
    keypoints: Any = None


class CountedDetections(msgspec.Struct, gc=False):
    """What a summary reads of one frame of a detection model: its predictions."""

    predictions: list[CountedDetection]


class CountedBatch(list[CountedDetections | None]):
    """A batch of a detection model's frames decoded for a summary only.

    :param inference_type: the model's task type when the batch was decoded: that of its frames
        without predictions (a frame with some has the type its first prediction says).
    :param strict: the type was given by the user: it is every frame's.
    """

    def __init__(self, frames: list[CountedDetections | None], inference_type: str, strict: bool) -> None:
        super().__init__(frames)
        self.inference_type = inference_type
        self.strict = strict


_COUNTED = msgspec.json.Decoder(list[CountedDetections | None])


def counted_type(detection: CountedDetection) -> str:
    """The detection task type a prediction's shape says, as :func:`~videoinfer_contract.results.detections_type`."""
    if detection.points is not None:
        return "instance-segmentation"
    if detection.keypoints is not None:
        return "keypoint-detection"
    return "object-detection"


class LeanDetectionsDecoder(FrameDecoder):
    """A :class:`FrameDecoder` whose detection frames decode into leaner structs than the contract's records.

    Once the model's type is known to be a detection type (from a hint or from its first frames),
    each batch is decoded by :attr:`lean`; a batch that does not fit is decoded as
    :class:`FrameDecoder` does, into records, and so is every other type. Subclasses set
    :attr:`lean`, say a prediction's type (:meth:`prediction_type`) and may wrap the batch (:meth:`wrap`).
    """

    #: Decodes a batch of frames (``list[X | None]``) whose ``predictions`` a subclass reads.
    lean: msgspec.json.Decoder[Any]

    def prediction_type(self, first: Any) -> str:
        """The detection type that a frame's first prediction, as decoded, says."""
        raise NotImplementedError

    def wrap(self, frames: list[Any], inference_type: str) -> list[Any]:
        """The batch as the reader yields it; ``inference_type`` is the model's when it was decoded."""
        return frames

    def decode(self, text: bytes) -> list[Any]:
        """Decode the JSON text of a batch of frames (``b"[...]"``)."""
        kind = self.inference_type
        if kind is not None and kind in DETECTION_RECORDS:
            try:
                frames = self.lean.decode(text)
            except msgspec.ValidationError:
                pass  # some frame has another shape: records, frame by frame where need be
            else:
                self.count += len(frames)
                if not self.strict:
                    # As FrameDecoder does: the last frame with predictions says the type of the next ones.
                    last = next((frame for frame in reversed(frames) if frame is not None and frame.predictions), None)
                    if last is not None:
                        self.inference_type = self.prediction_type(last.predictions[0])
                return self.wrap(frames, kind)
        return super().decode(text)


class SummaryDecoder(LeanDetectionsDecoder):
    """A :class:`FrameDecoder` for a summary: a detection model's frames decode into :class:`CountedBatch` es.

    Their :class:`CountedDetections` hold only what a summary reads.
    """

    lean = _COUNTED

    def prediction_type(self, first: CountedDetection) -> str:
        """The detection type that a frame's first prediction says."""
        return counted_type(first)

    def wrap(self, frames: list[Any], inference_type: str) -> CountedBatch:
        """The batch with the model's type and whether it was given."""
        return CountedBatch(frames, inference_type, self.strict)


class OffsetDecoder:
    """Decode the ``frame_offset`` (whole numbers) or ``time_offset`` (numbers or null) list.

    :param key: the list's key, for messages.
    :param integer: whether every element must be a whole number (frame offsets).
    """

    def __init__(self, key: str, integer: bool) -> None:
        self.key = key
        self.integer = integer
        self.count = 0
        # Offsets count from 0: a negative one is refused (by the checked slow path below).
        kind: Any = list[Annotated[int, _AT_LEAST_0]] if integer else list[Annotated[float, _AT_LEAST_0] | None]
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(kind)

    def decode(self, text: bytes) -> list[Any]:
        """Decode the JSON text of a batch of offsets."""
        try:
            values: list[Any] = self._decoder.decode(text)
        except msgspec.ValidationError:
            values = [self.convert(_ANY.decode(raw)) for raw in _RAW_LIST.decode(text)]
        else:
            self.count += len(values)
        return values

    def convert(self, value: Any) -> Any:
        """Check one offset decoded in Python's types."""
        index = self.count
        self.count += 1
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if value is None and not self.integer:
                return None
            raise FrameValueError(index, f"{self.key}[{index}] is {value!r}, not a number")
        if value < 0:
            raise FrameValueError(
                index, f"{self.key}[{index}] is {value!r}: offsets count from 0 at the video's start, none is negative"
            )
        if not self.integer:
            return float(value)
        if not math.isfinite(value) or value != int(value):
            raise FrameValueError(index, f"{self.key}[{index}] is {value!r}, not a whole number of frames")
        return int(value)

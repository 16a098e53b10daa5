"""Export a result file as one row per prediction, streaming, as JSON Lines, CSV or Parquet.

Each row is one detected object (object-detection, instance-segmentation, keypoint-detection),
one face (gaze-detection) or one frame's top class (classification). Semantic-segmentation
masks and CLIP embeddings have no per-prediction rows and are left out. Parquet needs the
optional ``pyarrow`` package.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from collections.abc import Iterator, Mapping
from typing import IO, Any

import msgspec

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.results.decoding import LeanDetectionsDecoder
from airflow_provider_videoinfer.results.reader import ResultReader
from airflow_provider_videoinfer.storage import Location, atomic_write
from videoinfer_contract.results import (
    Classification,
    Detections,
    FrameResult,
    GazeResult,
    Image,
    Keypoint,
    ResultFrame,
)

ROW_FORMATS = ("jsonl", "csv", "parquet")
ROW_COLUMNS = (
    "frame_index",
    "frame_offset",
    "time_offset",
    "model_id",
    "inference_type",
    "class",
    "class_id",
    "confidence",
    "x",
    "y",
    "width",
    "height",
    "detection_id",
    "yaw",
    "pitch",
    "points",
    "keypoints",
)
PARQUET_BATCH_ROWS = 65_536
JSONL_BATCH_ROWS = 4_096
_JSONL_FLUSH_BYTES = 1 << 20
_INT_COLUMNS = frozenset({"frame_index", "frame_offset", "class_id"})
_FLOAT_COLUMNS = frozenset({"time_offset", "confidence", "x", "y", "width", "height", "yaw", "pitch"})
_NESTED = (ROW_COLUMNS.index("points"), ROW_COLUMNS.index("keypoints"))


class Row(msgspec.Struct, gc=False):
    """One row of the export: one object, face or top class of one model on one frame.

    The fields are :data:`ROW_COLUMNS`, in order (``class_name`` is the column ``class``); those
    that do not apply are None. ``points`` is a list of ``[x, y]`` pairs, ``keypoints`` a list of
    dicts.
    """

    frame_index: int
    frame_offset: int | None
    time_offset: float | None
    model_id: str
    inference_type: str
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None
    confidence: float | None = None
    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None
    detection_id: str | None = None
    yaw: float | None = None
    pitch: float | None = None
    points: list[list[float]] | None = None
    keypoints: list[dict[str, Any]] | None = None


def validate_rows_format(rows_format: Any) -> str:
    """Check a rows format name: ``jsonl``, ``csv`` or ``parquet`` (any case).

    :param rows_format: the format the user asked for.
    """
    name = rows_format.strip().lower() if isinstance(rows_format, str) else rows_format
    if name not in ROW_FORMATS:
        raise VideoInferValidationError(f"rows_format must be one of {', '.join(ROW_FORMATS)}, got {rows_format!r}.")
    return name


def require_pyarrow() -> Any:
    """Import and return ``pyarrow`` (with ``pyarrow.parquet``); raise a clear error when it is missing."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise VideoInferValidationError(
            "rows_format 'parquet' needs the optional pyarrow package, which is not installed: "
            "run `pip install pyarrow`, or use rows_format 'jsonl' or 'csv'."
        ) from None
    return pyarrow


def rows_of(frame: ResultFrame) -> Iterator[Row]:
    """Yield the :class:`Row` values of one frame."""
    for model_id, result in frame.results.items():
        yield from rows_of_result(frame.index, frame.frame_offset, frame.time_offset, model_id, result)


def rows_of_result(
    index: int, frame_offset: int | None, time_offset: float | None, model_id: str, result: FrameResult | None
) -> Iterator[Row]:
    """Yield the :class:`Row` values of one model's result on one frame.

    :param index: the frame's position in the file.
    :param frame_offset: its index in the video.
    :param time_offset: its time.
    :param model_id: the model.
    :param result: the model's result on that frame.
    """
    if isinstance(result, Detections):
        kind = result.inference_type
        for d in result.predictions:
            yield Row(
                index,
                frame_offset,
                time_offset,
                model_id,
                kind,
                d.class_name,
                d.class_id,
                d.confidence,
                d.x,
                d.y,
                d.width,
                d.height,
                d.detection_id,
                None,
                None,
                None if d.points is None else [[p.x, p.y] for p in d.points],
                None if d.keypoints is None else [_keypoint(k) for k in d.keypoints],
            )
    elif isinstance(result, GazeResult):
        for g in result.predictions:
            face = g.face
            yield Row(
                index, frame_offset, time_offset, model_id, result.inference_type, "face", None, face.confidence,
                face.x, face.y, face.width, face.height, None, g.yaw, g.pitch,
            )  # fmt: skip
    elif isinstance(result, Classification) and result.top is not None:
        top_id = next((p.class_id for p in result.predictions if p.class_name == result.top), None)
        yield Row(
            index, frame_offset, time_offset, model_id, result.inference_type, result.top, top_id,
            result.confidence,
        )  # fmt: skip


class _KeypointColumns(msgspec.Struct, gc=False):
    """A keypoint as the rows write it: every key, None where the file has none (see :func:`_keypoint`)."""

    x: float
    y: float
    confidence: float | None = None
    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None


class _DetectionColumns(msgspec.Struct, kw_only=True, gc=False):
    """One prediction of a detection model decoded straight into the columns of its row after ``inference_type``.

    The same fields and types as :class:`~videoinfer_contract.results.Detection`, in the order of
    :data:`ROW_COLUMNS`, so that msgspec writes the row's end as it is. A polygon (``points``) is
    written as pairs, which no decoding gives: its frames are read as records.
    """

    class_name: str | None = msgspec.field(default=None, name="class")
    class_id: int | None = None
    confidence: float
    x: float
    y: float
    width: float
    height: float
    detection_id: str | None = None
    yaw: None = None
    pitch: None = None
    points: None = None
    keypoints: list[_KeypointColumns] | None = None


class _DetectionRows(msgspec.Struct, kw_only=True, gc=False):
    """A detection model's frame decoded for the rows: as :class:`~videoinfer_contract.results.Detections`."""

    time: float | None = None
    image: Image | None = None
    predictions: list[_DetectionColumns]


class _FrameColumns(msgspec.Struct, gc=False):
    """The columns of a row before the prediction's: the frame's, the model and its type."""

    frame_index: int
    frame_offset: int | None
    time_offset: float | None
    model_id: str
    inference_type: str


_DETECTION_ROWS = msgspec.json.Decoder(list[_DetectionRows | None])


class _RowsDecoder(LeanDetectionsDecoder):
    """A :class:`FrameDecoder` for the rows: a detection model's frames decode into :class:`_DetectionRows`.

    A batch that does not fit (polygons, another shape) is decoded into records, as FrameDecoder does.
    """

    lean = _DETECTION_ROWS

    def prediction_type(self, first: _DetectionColumns) -> str:
        """The detection type that a frame's first prediction says (polygons are not decoded here)."""
        return _detection_type(first)


def _detection_type(first: _DetectionColumns) -> str:
    return "object-detection" if first.keypoints is None else "keypoint-detection"


def _write_jsonl(reader: ResultReader, out: IO[bytes]) -> int:
    """Write the rows of every frame as JSON Lines, detections from their columns as decoded; return the rows."""
    models = reader.model_ids
    hints = [reader.inference_type_hints.get(model) for model in models]
    encode, encode_lines = _ENCODER.encode, _ENCODER.encode_lines
    rows = 0
    chunks: list[bytes] = []
    size = 0
    for index, frame_offset, time_offset, results in reader.iter_results(_RowsDecoder):
        for model_id, hint, result in zip(models, hints, results, strict=True):
            if result is None:
                continue
            if type(result) is _DetectionRows:
                predictions = result.predictions
                if not predictions:
                    continue
                kind = hint or _detection_type(predictions[0])
                # Each line is the frame's columns, then the prediction's: msgspec writes both halves.
                head = encode(_FrameColumns(index, frame_offset, time_offset, model_id, kind))[:-1] + b","
                chunk = head + (b"\n" + head).join(encode_lines(predictions)[1:].split(b"\n{"))
                rows += len(predictions)
            else:
                found = list(rows_of_result(index, frame_offset, time_offset, model_id, result))
                if not found:
                    continue
                chunk = encode_lines(found)
                rows += len(found)
            chunks.append(chunk)
            size += len(chunk)
            if size > _JSONL_FLUSH_BYTES:
                out.write(b"".join(chunks))
                chunks, size = [], 0
    out.write(b"".join(chunks))
    return rows


def _keypoint(k: Keypoint) -> dict[str, Any]:
    """A keypoint as a dict with every key, None where the file has none."""
    return {"x": k.x, "y": k.y, "confidence": k.confidence, "class": k.class_name, "class_id": k.class_id}


def _parquet_type(pa: Any, column: str) -> Any:
    if column in _INT_COLUMNS:
        return pa.int64()
    return pa.float64() if column in _FLOAT_COLUMNS else pa.string()


def _flat(values: tuple[Any, ...]) -> list[Any]:
    """A row's values for the flat formats: nested values as JSON text, non-finite numbers as None."""
    flat = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    for i in _NESTED:
        if flat[i] is not None:
            flat[i] = _ENCODER.encode(flat[i]).decode()
    return flat


# msgspec writes NaN and infinities as null, so JSON Lines stays valid JSON.
_ENCODER = msgspec.json.Encoder()


class RowsWriter:
    """Write rows of frames to a file as they come; use it as a context manager.

    The file appears complete when the block ends, or not at all (see
    :func:`~airflow_provider_videoinfer.storage.atomic_write`). Non-finite numbers are written
    as ``null`` (JSON Lines, Parquet) or an empty cell (CSV).

    :param destination: a local path, a storage URI or an ``ObjectStoragePath``; replaced.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs pyarrow).
    """

    def __init__(self, destination: Location, rows_format: str = "jsonl") -> None:
        self.rows_format = validate_rows_format(rows_format)
        self._pyarrow: Any = require_pyarrow() if self.rows_format == "parquet" else None
        self.destination = destination
        self.rows = 0
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._batch: list[Row] = []

    def __enter__(self) -> RowsWriter:
        self._stack = contextlib.ExitStack()
        self._file = self._stack.enter_context(atomic_write(self.destination))
        if self.rows_format == "csv":
            self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")  # type: ignore[arg-type]
            self._csv = csv.writer(self._text)
            self._csv.writerow(ROW_COLUMNS)
        return self

    def add(self, frame: ResultFrame) -> None:
        """Write the rows of one frame (see :func:`rows_of`)."""
        rows = list(rows_of(frame))
        if not rows:
            return
        self.rows += len(rows)
        if self.rows_format == "csv":
            self._csv.writerows(_flat(msgspec.structs.astuple(row)) for row in rows)
            return
        self._batch.extend(rows)
        if len(self._batch) >= (PARQUET_BATCH_ROWS if self.rows_format == "parquet" else JSONL_BATCH_ROWS):
            self._flush()

    write = add

    def read(self, reader: ResultReader) -> None:
        """Write the rows of every frame of a reader, faster than by :meth:`add` for JSON Lines.

        :param reader: an open reader of the result file.
        """
        if self.rows_format != "jsonl":
            reader.feed(self)
            return
        self._flush()
        self.rows += _write_jsonl(reader, self._file)  # type: ignore[arg-type]

    def _flush(self) -> None:
        if self.rows_format == "jsonl":
            self._file.write(_ENCODER.encode_lines(self._batch))  # type: ignore[union-attr]
            self._batch = []
            return
        pa = self._pyarrow
        if self._parquet is None:
            schema = pa.schema([(name, _parquet_type(pa, name)) for name in ROW_COLUMNS])
            self._parquet = pa.parquet.ParquetWriter(self._file, schema)
        if self._batch:
            schema = self._parquet.schema
            columns = zip(*(_flat(msgspec.structs.astuple(row)) for row in self._batch), strict=True)
            arrays = [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)]
            self._parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))
            self._batch = []

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None, "RowsWriter is not open"
        with stack:
            if exc is not None:
                raise exc  # inside the atomic writer, which then discards the file
            if self.rows_format != "csv":
                self._flush()
            if self._parquet is not None:
                self._parquet.close()
            if self._text is not None:
                self._text.flush()
                self._text.detach()  # the atomic writer closes the file


def write_rows(
    source: Location,
    destination: Location,
    rows_format: str = "jsonl",
    inference_types: Mapping[str, str] | None = None,
) -> int:
    """Write one row per prediction of a result file to ``destination``; return the number of rows.

    :param source: the result file: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param destination: where to write the rows, in the same forms; replaced, whole or not at all.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs ``pip install pyarrow``).
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    """
    with ResultReader(source, inference_types) as reader, RowsWriter(destination, rows_format) as writer:
        writer.read(reader)
    return writer.rows

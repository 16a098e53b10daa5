"""Export a result file as one row per prediction, streaming, as JSON Lines, CSV or Parquet.

Each row is one detected object (object-detection, instance-segmentation, keypoint-detection),
one face (gaze-detection) or one frame's top class (classification). Semantic-segmentation
masks and CLIP embeddings have no per-prediction rows and are left out. Parquet needs the
optional ``pyarrow`` package.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import IO, Any

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.results.reader import ResultLocation, ResultReader
from airflow_provider_videoinfer.results.records import Classification, Detection, Detections, GazeResult, ResultFrame
from airflow_provider_videoinfer.storage import open_location

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
_INT_COLUMNS = frozenset({"frame_index", "frame_offset", "class_id"})
_FLOAT_COLUMNS = frozenset({"time_offset", "confidence", "x", "y", "width", "height", "yaw", "pitch"})


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


def frame_rows(frame: ResultFrame) -> Iterator[dict[str, Any]]:
    """Yield the rows of one frame, with the keys of :data:`ROW_COLUMNS` (None where not applicable).

    ``points`` is a list of ``[x, y]`` pairs and ``keypoints`` a list of dicts, or None.
    """
    base = {"frame_index": frame.index, "frame_offset": frame.frame_offset, "time_offset": frame.time_offset}
    for model_id, result in frame.results.items():
        if isinstance(result, Detections):
            for detection in result.detections:
                yield _detection_row(base, model_id, result.inference_type, detection)
        elif isinstance(result, GazeResult):
            for gaze in result.gazes:
                row = dict.fromkeys(ROW_COLUMNS)
                row.update(base, model_id=model_id, inference_type=result.inference_type, yaw=gaze.yaw)
                row.update({"class": "face", "confidence": gaze.confidence, "pitch": gaze.pitch})
                row.update(x=gaze.x, y=gaze.y, width=gaze.width, height=gaze.height)
                yield row
        elif isinstance(result, Classification) and result.top is not None:
            top_id = next((p.class_id for p in result.predictions if p.class_name == result.top), None)
            row = dict.fromkeys(ROW_COLUMNS)
            row.update(base, model_id=model_id, inference_type=result.inference_type)
            row.update({"class": result.top, "class_id": top_id, "confidence": result.confidence})
            yield row


def _detection_row(base: Mapping[str, Any], model_id: str, inference_type: str, d: Detection) -> dict[str, Any]:
    return {
        **base,
        "model_id": model_id,
        "inference_type": inference_type,
        "class": d.class_name,
        "class_id": d.class_id,
        "confidence": d.confidence,
        "x": d.x,
        "y": d.y,
        "width": d.width,
        "height": d.height,
        "detection_id": d.detection_id,
        "yaw": None,
        "pitch": None,
        "points": None if d.points is None else [[p.x, p.y] for p in d.points],
        "keypoints": None
        if d.keypoints is None
        else [
            {"x": k.x, "y": k.y, "confidence": k.confidence, "class": k.class_name, "class_id": k.class_id}
            for k in d.keypoints
        ],
    }


def _parquet_type(pa: Any, column: str) -> Any:
    if column in _INT_COLUMNS:
        return pa.int64()
    return pa.float64() if column in _FLOAT_COLUMNS else pa.string()


def _as_text(value: Any) -> Any:
    """Nested values (points, keypoints) as JSON text, for the flat formats."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list) else value


class RowsWriter:
    """Write rows of frames to a file as they come; use it as a context manager.

    :param destination: a local path, an fsspec URI or an ``ObjectStoragePath``; overwritten.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs pyarrow).
    """

    def __init__(self, destination: ResultLocation, rows_format: str = "jsonl") -> None:
        self.rows_format = validate_rows_format(rows_format)
        self._pyarrow: Any = require_pyarrow() if self.rows_format == "parquet" else None
        self.destination = destination
        self.rows = 0
        self._file: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._batch: list[dict[str, Any]] = []

    def __enter__(self) -> RowsWriter:
        self._file = open_location(self.destination, "wb")
        if self.rows_format != "parquet":
            self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")  # type: ignore[arg-type]
        if self.rows_format == "csv":
            self._csv = csv.DictWriter(self._text, fieldnames=ROW_COLUMNS)  # type: ignore[arg-type]
            self._csv.writeheader()
        return self

    def write(self, frame: ResultFrame) -> None:
        """Write the rows of one frame (see :func:`frame_rows`)."""
        for row in frame_rows(frame):
            self.rows += 1
            if self.rows_format == "jsonl":
                self._text.write(json.dumps(row, separators=(",", ":")) + "\n")  # type: ignore[union-attr]
            elif self.rows_format == "csv":
                self._csv.writerow({key: _as_text(value) for key, value in row.items()})
            else:
                self._batch.append({key: _as_text(value) for key, value in row.items()})
                if len(self._batch) >= PARQUET_BATCH_ROWS:
                    self._flush_parquet()

    def _flush_parquet(self) -> None:
        pa = self._pyarrow
        if self._parquet is None:
            schema = pa.schema([(name, _parquet_type(pa, name)) for name in ROW_COLUMNS])
            self._parquet = pa.parquet.ParquetWriter(self._file, schema)
        if self._batch:
            self._parquet.write_table(pa.Table.from_pylist(self._batch, schema=self._parquet.schema))
            self._batch = []

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.rows_format == "parquet" and exc_info[0] is None:
                self._flush_parquet()
            if self._parquet is not None:
                self._parquet.close()
            if self._text is not None:
                self._text.close()
        finally:
            if self._file is not None:
                self._file.close()


def write_rows(
    source: ResultLocation,
    destination: ResultLocation,
    rows_format: str = "jsonl",
    inference_types: Mapping[str, str] | None = None,
) -> int:
    """Write one row per prediction of a result file to ``destination``; return the number of rows.

    :param source: the result file: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param destination: where to write the rows, in the same forms; overwritten.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs ``pip install pyarrow``).
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    """
    with ResultReader(source, inference_types) as reader, RowsWriter(destination, rows_format) as writer:
        for frame in reader:
            writer.write(frame)
    return writer.rows

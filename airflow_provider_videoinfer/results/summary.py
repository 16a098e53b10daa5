"""The summary of a result file: what ``VideoInferResultsOperator`` returns (XCom) and the results view draws.

One typed definition: :class:`ResultSummary` and the dicts it holds are ``TypedDict`` s, so that the
summary stays a plain JSON-serialisable dict in XCom while the code that writes it
(:mod:`.summarizer`, the operator) and the code that reads it (the results view) are checked
against the same keys. Each key's meaning is the text of its ``Annotated`` type; the README's
table of the summary's keys is generated from it (and a test keeps the two equal).

Its size is bounded whatever the video's length: the timeline is bucketed and class listings
keep only their largest entries. Non-finite numbers (``NaN``) are left out of every figure.
"""

from __future__ import annotations

from typing import Annotated, TypedDict


class Range(TypedDict):
    """The smallest, largest and mean of a model's finite values."""

    min: Annotated[float, "the smallest value"]
    max: Annotated[float, "the largest value"]
    mean: Annotated[float, "their mean"]


class FrameTime(TypedDict):
    """Which frame: its position in the file, in the video, and its time."""

    frame_index: Annotated[int, "the frame's position in the result file's lists, from 0"]
    frame_offset: Annotated[int | None, "the index of the frame in the video"]
    time_offset: Annotated[float | None, "its time in seconds; null when the file's is not a finite number"]


class MaxObjects(FrameTime):
    """The first frame with the most objects, and how many."""

    count: Annotated[int, "the most detections (or faces) in one frame"]


class SceneChange(FrameTime):
    """One of the largest changes between the embeddings of consecutive frames: at which frame, how large."""

    change: Annotated[float, "the cosine distance to the previous frame's embedding (0 = same, 2 = opposite)"]


class _TimelineBucket(TypedDict):
    start: Annotated[int, "the bucket's start, in whole seconds"]
    counts: Annotated[
        dict[str, int], "per class: the most objects in one frame (detections), or frames (classification)"
    ]


class TimelineBucket(_TimelineBucket, total=False):
    """One bucket of a timeline: the seconds from ``start`` to ``start + bucket_seconds``."""

    top: Annotated[str, "classification: the class of most frames of the bucket (absent when it has none)"]


class Timeline(TypedDict):
    """Class counts over time, in buckets of whole seconds (widened by doubling to stay within a bound)."""

    bucket_seconds: Annotated[int, "the width of every bucket, in seconds (1, 2, 4, ...)"]
    counts: Annotated[str, "what the counts are, in words"]
    buckets: Annotated[list[TimelineBucket], "the buckets with a frame, in time order"]


class _ModelSummary(TypedDict):
    inference_type: Annotated[str | None, "the model's task type, read from its results or given"]
    frames: Annotated[int, "frames of the file"]
    null_frames: Annotated[int, "frames where inference failed (null)"]
    unknown_frames: Annotated[int, "frames whose result has no known shape"]
    frames_with_predictions: Annotated[
        int, "frames with at least one detection or face, a top class, a mask or an embedding"
    ]


class ModelSummary(_ModelSummary, total=False):
    """One model's figures; which optional keys are present depends on its task type."""

    class_counts: Annotated[
        dict[str, int],
        "detections per class (classification: frames per top class), largest first; not for "
        "semantic-segmentation and clip-embed-image",
    ]
    classes_truncated: Annotated[bool, "whether class_counts lists only the largest classes; with class_counts"]
    classes: Annotated[list[str], "semantic-segmentation: the classes of the class maps, sorted"]
    predictions: Annotated[int, "detections (or faces) in all frames; when there are some, not for classification"]
    max_objects: Annotated[MaxObjects, "the frame with the most detections (or faces); with predictions"]
    dimensions: Annotated[int | None, "clip-embed-image: the embeddings' length; null without any"]
    change: Annotated[
        Range | None, "clip-embed-image: cosine distance between consecutive frames' embeddings; null below 2 frames"
    ]
    change_measure: Annotated[str, "clip-embed-image: what change measures, in words"]
    largest_changes: Annotated[
        list[SceneChange], "clip-embed-image: the largest changes (scene changes, cuts), in time order"
    ]
    faces_per_frame: Annotated[float | None, "gaze-detection: faces per frame with a result"]
    yaw: Annotated[Range | None, "gaze-detection: where faces look sideways, radians, positive to the image's right"]
    pitch: Annotated[Range | None, "gaze-detection: where faces look up or down, radians, positive up"]
    angles: Annotated[str, "gaze-detection: the unit of yaw and pitch (radians)"]
    timeline: Annotated[Timeline, "class counts over time; for detections, gaze and classification"]


class RowsExport(TypedDict):
    """Where the operator exported one row per prediction."""

    destination: Annotated[str, "the rows file"]
    format: Annotated[str, "jsonl, csv or parquet"]
    count: Annotated[int, "rows written"]


class ContactSheetFrame(TypedDict):
    """One tile of the contact sheet."""

    frame_offset: Annotated[int | None, "the frame's index in the video"]
    time_offset: Annotated[float | None, "its time in seconds"]
    objects: Annotated[int, "detections and faces of every model on it"]


class ContactSheet(TypedDict):
    """The contact sheet the operator kept beside the result."""

    location: Annotated[str, "the PNG file"]
    frames: Annotated[list[ContactSheetFrame], "its tiles, in video order"]


class _ResultSummary(TypedDict):
    source: Annotated[str | None, "the summarised file (the operator: where it was kept, null without destination)"]
    frames: Annotated[int, "sampled frames in the file"]
    last_time_offset: Annotated[float | None, "the largest finite time_offset, seconds"]
    models: Annotated[dict[str, ModelSummary], "per model_id, in file order"]


class ResultSummary(_ResultSummary, total=False):
    """The summary of a result file, per model: the XCom value of ``VideoInferResultsOperator``.

    ``summarize_result`` and ``ResultReader.summarize`` return the four keys that are always
    present; the operator adds ``rows`` and, with ``video``, ``contact_sheet``.
    """

    rows: Annotated[RowsExport | None, "the operator: the rows export, null without rows_destination"]
    contact_sheet: Annotated[
        ContactSheet | None, "the operator, with video: the contact sheet, null when it could not be made"
    ]

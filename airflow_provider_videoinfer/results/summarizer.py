"""Summarise a result file per model, one frame at a time, into a :class:`~.summary.ResultSummary`.

The summary is meant for XCom, so its size is bounded whatever the video's length: the per-second
timeline is bucketed (a bucket's width doubles whenever there would be more than
``max_timeline_buckets`` of them) and class listings keep only their largest entries.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.results.decoding import CountedBatch, counted_type
from airflow_provider_videoinfer.results.summary import (
    FrameTime,
    MaxObjects,
    ModelSummary,
    Range,
    ResultSummary,
    SceneChange,
    Timeline,
    TimelineBucket,
)
from videoinfer_contract.results import (
    Classification,
    Detections,
    Embedding,
    FrameResult,
    GazeResult,
    ResultFrame,
    SemanticSegmentation,
    UnknownResult,
)

DEFAULT_MAX_TIMELINE_BUCKETS = 600
DEFAULT_MAX_CLASSES = 100
DEFAULT_MAX_SCENE_CHANGES = 10
MAX_CLASSES_PER_BUCKET = 20
UNLABELLED = "unlabelled"
_CLASS_NAME = operator.attrgetter("class_name")
_PREDICTIONS = operator.attrgetter("predictions")


def _top(counter: Counter[str], limit: int) -> dict[str, int]:
    return dict(counter.most_common(limit))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# Counts an iterable's elements into a dict, in C: what Counter(iterable) does after its Python-level checks,
# which cost more than the counting for the twenty detections of a frame.
_count_elements: Callable[[dict[Any, int], Iterable[Any]], None] = collections._count_elements  # type: ignore[attr-defined]

_dot: Any = getattr(math, "sumprod", None) or (lambda a, b: sum(map(operator.mul, a, b)))


class _Range:
    """Minimum, maximum and mean of the finite numbers added."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self.count += 1
            self.total += value
            self.low = min(self.low, value)
            self.high = max(self.high, value)

    def extend(self, values: Iterable[float]) -> None:
        finite = [value for value in values if math.isfinite(value)]
        if finite:
            self.count += len(finite)
            self.total += math.fsum(finite)
            self.low = min(self.low, *finite)
            self.high = max(self.high, *finite)

    def summary(self) -> Range | None:
        if not self.count:
            return None
        return Range(min=self.low, max=self.high, mean=self.total / self.count)


class _EmbeddingChanges:
    """How much consecutive embeddings differ (cosine distance), and where they differ most.

    A large distance between two consecutive sampled frames marks a cut or a scene change.
    """

    def __init__(self, max_changes: int) -> None:
        self.max_changes = max_changes
        self.dimensions: int | None = None
        self.previous: tuple[tuple[float, ...], float] | None = None
        self.changes = _Range()
        self.largest: list[tuple[float, int, SceneChange]] = []

    def add(self, when: FrameTime, vector: tuple[float, ...]) -> None:
        self.dimensions = len(vector)
        norm = math.hypot(*vector)
        if not math.isfinite(norm) or norm == 0:
            return  # a vector with NaN, or all zeros, has no direction to compare
        previous, self.previous = self.previous, (vector, norm)
        if previous is None or len(previous[0]) != len(vector):
            return
        distance = 1.0 - _dot(previous[0], vector) / (previous[1] * norm)
        self.changes.add(distance)
        if self.max_changes:
            entry = (distance, when["frame_index"], SceneChange(change=round(distance, 6), **when))
            if len(self.largest) < self.max_changes:
                heapq.heappush(self.largest, entry)
            elif distance > self.largest[0][0]:
                heapq.heapreplace(self.largest, entry)

    def add_to(self, summary: ModelSummary) -> None:
        summary["dimensions"] = self.dimensions
        summary["change"] = self.changes.summary()
        summary["change_measure"] = "cosine distance between consecutive frames' embeddings (0 = same, 2 = opposite)"
        summary["largest_changes"] = [entry for _, _, entry in sorted(self.largest, key=lambda e: e[1])]


def _when(index: int, frame_offset: int | None, time_offset: float | None) -> FrameTime:
    time_offset = time_offset if _finite(time_offset) else None
    return FrameTime(frame_index=index, frame_offset=frame_offset, time_offset=time_offset)


class _Timeline:
    """Per-bucket class counts, merged pairwise whenever there are too many buckets.

    :param peak: merge counts by their maximum (objects seen at once), else by their sum (frames).
    """

    def __init__(self, max_buckets: int, peak: bool) -> None:
        self.max_buckets = max_buckets
        self.peak = peak
        self.width = 1
        self.buckets: dict[int, Counter[str]] = {}

    def add(self, time_offset: float, counts: Mapping[str, int]) -> None:
        key = int(time_offset // self.width)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Counter()
        if self.peak:
            get = bucket.get
            for name, count in counts.items():
                if count > get(name, 0):
                    bucket[name] = count
        else:
            bucket.update(counts)
        if len(self.buckets) > self.max_buckets:
            self._widen()

    def _widen(self) -> None:
        self.width *= 2
        merged: dict[int, Counter[str]] = {}
        for key, counts in self.buckets.items():
            target = merged.setdefault(key // 2, Counter())
            if self.peak:
                target |= counts
            else:
                target.update(counts)
        self.buckets = merged

    def summary(self) -> Timeline:
        buckets = []
        for key in sorted(self.buckets):
            counts = self.buckets[key]
            entry = TimelineBucket(start=key * self.width, counts=_top(counts, MAX_CLASSES_PER_BUCKET))
            if not self.peak and counts:
                entry["top"] = counts.most_common(1)[0][0]
            buckets.append(entry)
        what = "most objects of each class in one frame" if self.peak else "frames of each top class"
        return Timeline(bucket_seconds=self.width, counts=what, buckets=buckets)


class _ModelSummarizer:
    def __init__(self, inference_type: str | None, max_buckets: int, max_classes: int, max_changes: int) -> None:
        self.inference_type = inference_type
        self.max_buckets = max_buckets
        self.max_classes = max_classes
        self.max_changes = max_changes
        self.frames = 0
        self.null_frames = 0
        self.unknown_frames = 0
        self.predictions = 0
        self.frames_with_predictions = 0
        self.class_counts: Counter[str] = Counter()
        self.max_objects: MaxObjects | None = None
        self.timeline: _Timeline | None = None
        self.embeddings: _EmbeddingChanges | None = None
        self.yaw = _Range()
        self.pitch = _Range()

    def add(self, index: int, frame_offset: int | None, time_offset: float | None, result: FrameResult | None) -> None:
        """Count one frame's result."""
        self.frames += 1
        if result is None:
            self.null_frames += 1
            return
        if isinstance(result, UnknownResult):
            self.unknown_frames += 1
            return
        if self.inference_type is None or isinstance(result, Detections):
            self.inference_type = result.inference_type
        if isinstance(result, Detections):
            if result.predictions:
                counts = Counter(map(_CLASS_NAME, result.predictions))
                if None in counts:
                    counts[UNLABELLED] += counts.pop(None)  # type: ignore[call-overload]
                self._add_objects(index, frame_offset, time_offset, len(result.predictions), counts)
        elif isinstance(result, GazeResult):
            if result.predictions:
                faces = len(result.predictions)
                self._add_objects(index, frame_offset, time_offset, faces, {"face": faces})
                self.yaw.extend(gaze.yaw for gaze in result.predictions)
                self.pitch.extend(gaze.pitch for gaze in result.predictions)
        elif isinstance(result, Classification):
            if result.top is not None:
                self.frames_with_predictions += 1
                self.class_counts[str(result.top)] += 1
                self._add_timeline(time_offset, {str(result.top): 1}, peak=False)
        elif isinstance(result, SemanticSegmentation):
            self.frames_with_predictions += 1
            for name in result.predictions.class_map.values():
                self.class_counts[name] += 1
        elif isinstance(result, Embedding):
            self.frames_with_predictions += 1
            if self.embeddings is None:
                self.embeddings = _EmbeddingChanges(self.max_changes)
            self.embeddings.add(_when(index, frame_offset, time_offset), result.vector)

    def add_counted(
        self, start: int, frame_offsets: list[int], time_offsets: list[float | None], batch: CountedBatch
    ) -> None:
        """Count a batch of a detection model's frames decoded for a summary (see :class:`.SummaryDecoder`).

        The same figures as :meth:`add` of the records of those frames, at a fraction of the cost.

        :param start: the first frame's index.
        :param frame_offsets: the frames' offsets, one per frame of ``batch``.
        :param time_offsets: their times.
        """
        self.frames += len(batch)
        names: dict[str | None, int] = {}
        frames = [frame for frame in batch if frame is not None]
        _count_elements(names, map(_CLASS_NAME, itertools.chain.from_iterable(map(_PREDICTIONS, frames))))
        if None in names:  # unlabelled predictions: counted frame by frame, as add() does
            self._add_counted_frames(start, frame_offsets, time_offsets, batch)
        else:
            self.null_frames += len(batch) - len(frames)
            self._add_counted_batch(start, frame_offsets, time_offsets, batch, names)  # type: ignore[arg-type]
        last = next((frame for frame in reversed(batch) if frame is not None), None)
        if last is not None:
            # The type of the last frame, as add() would have taken it from that frame's record.
            if batch.strict or not last.predictions:
                self.inference_type = batch.inference_type
            else:
                self.inference_type = counted_type(last.predictions[0])

    def _add_counted_frames(
        self, start: int, frame_offsets: list[int], time_offsets: list[float | None], batch: CountedBatch
    ) -> None:
        for i, frame in enumerate(batch):
            if frame is None:
                self.null_frames += 1
            elif frame.predictions:
                counts = Counter(map(_CLASS_NAME, frame.predictions))
                if None in counts:
                    counts[UNLABELLED] += counts.pop(None)  # type: ignore[call-overload]
                self._add_objects(start + i, frame_offsets[i], time_offsets[i], len(frame.predictions), counts)

    def _add_counted_batch(
        self,
        start: int,
        frame_offsets: list[int],
        time_offsets: list[float | None],
        batch: CountedBatch,
        names: dict[str, int],
    ) -> None:
        """:meth:`_add_counted_frames` with the classes counted once per batch: the summary's hot loop.

        The same steps as :meth:`_add_objects` and :meth:`_Timeline.add`, inlined.
        """
        class_counts = self.class_counts
        for name, count in names.items():  # in the order add() meets them
            class_counts[name] += count
        most = self.max_objects["count"] if self.max_objects is not None else 0
        if self.timeline is None:
            self.timeline = _Timeline(self.max_buckets, peak=True)
        timeline = self.timeline
        width, buckets, max_buckets = timeline.width, timeline.buckets, timeline.max_buckets
        predictions_total = with_predictions = 0
        for i, frame in enumerate(batch):
            if frame is None:
                continue
            predictions = frame.predictions
            count = len(predictions)
            if not count:
                continue
            predictions_total += count
            with_predictions += 1
            if count > most:
                most = count
                self.max_objects = MaxObjects(count=count, **_when(start + i, frame_offsets[i], time_offsets[i]))
            time_offset = time_offsets[i]
            # A finite time from 0 on (NaN fails both comparisons).
            if time_offset is not None and 0 <= time_offset < math.inf:
                counts: dict[str, int] = {}
                _count_elements(counts, map(_CLASS_NAME, predictions))
                key = int(time_offset // width)
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = Counter()
                get = bucket.get
                for name, number in counts.items():
                    if number > get(name, 0):
                        bucket[name] = number
                if len(buckets) > max_buckets:
                    timeline._widen()
                    width, buckets = timeline.width, timeline.buckets
        self.predictions += predictions_total
        self.frames_with_predictions += with_predictions
        if not timeline.buckets:
            self.timeline = None  # as add() leaves it: no timeline without a frame of a usable time

    def _add_objects(
        self, index: int, frame_offset: int | None, time_offset: float | None, count: int, counts: Mapping[str, int]
    ) -> None:
        self.predictions += count
        self.frames_with_predictions += 1
        class_counts = self.class_counts
        for name, number in counts.items():  # a few classes: faster than Counter.update's checks
            class_counts[name] += number
        if self.max_objects is None or count > self.max_objects["count"]:
            self.max_objects = MaxObjects(count=count, **_when(index, frame_offset, time_offset))
        self._add_timeline(time_offset, counts, peak=True)

    def _add_timeline(self, time_offset: float | None, counts: Mapping[str, int], peak: bool) -> None:
        if time_offset is None or not math.isfinite(time_offset) or time_offset < 0:
            return
        if self.timeline is None:
            self.timeline = _Timeline(self.max_buckets, peak)
        self.timeline.add(time_offset, counts)

    def summary(self) -> ModelSummary:
        summary = ModelSummary(
            inference_type=self.inference_type,
            frames=self.frames,
            null_frames=self.null_frames,
            unknown_frames=self.unknown_frames,
            frames_with_predictions=self.frames_with_predictions,
        )
        if self.inference_type == "semantic-segmentation":
            summary["classes"] = sorted(self.class_counts)[: self.max_classes]
        elif self.inference_type == "clip-embed-image":
            if self.embeddings is not None:
                self.embeddings.add_to(summary)
            else:
                summary["dimensions"] = None
        else:
            summary["class_counts"] = _top(self.class_counts, self.max_classes)
            summary["classes_truncated"] = len(self.class_counts) > self.max_classes
        if self.inference_type != "classification" and self.predictions and self.max_objects is not None:
            summary["predictions"] = self.predictions
            summary["max_objects"] = self.max_objects
        if self.inference_type == "gaze-detection":
            counted = self.frames - self.null_frames - self.unknown_frames
            summary["faces_per_frame"] = round(self.predictions / counted, 4) if counted else None
            summary["yaw"] = self.yaw.summary()
            summary["pitch"] = self.pitch.summary()
            summary["angles"] = "radians"
        if self.timeline is not None:
            summary["timeline"] = self.timeline.summary()
        return summary


class Summarizer:
    """Accumulate a per-model summary of a result file's frames; add frames, then take :meth:`summary`.

    Per model: its inference type, frames and null frames, frames with predictions, and, by type,
    the number of predictions per class (frames per top class for classification, the classes of
    the class maps for semantic segmentation), the most objects seen in one frame and when, and a
    timeline in buckets of whole seconds. For embeddings: their length, how much consecutive frames
    differ (cosine distance: minimum, maximum, mean) and the largest changes, which mark scene
    changes. For gaze: faces per frame and the range of yaw and pitch. Non-finite numbers (``NaN``)
    are left out of every figure.

    :param source: a name of the summarised file, echoed in the summary; optional.
    :param inference_types: optional ``{model_id: inference_type}``, reported for models without
        any result.
    :param max_timeline_buckets: the most timeline buckets per model; a bucket is 1 second wide,
        doubled as often as needed to stay within this bound (default 600, i.e. 10 minutes of seconds).
    :param max_classes: the most classes listed per model, largest counts first (default 100).
    :param max_scene_changes: for embeddings, the most largest changes between consecutive frames
        listed (default 10).
    """

    def __init__(
        self,
        source: str | None = None,
        inference_types: Mapping[str, str] | None = None,
        max_timeline_buckets: int = DEFAULT_MAX_TIMELINE_BUCKETS,
        max_classes: int = DEFAULT_MAX_CLASSES,
        max_scene_changes: int = DEFAULT_MAX_SCENE_CHANGES,
    ) -> None:
        if max_timeline_buckets < 1 or max_classes < 1:
            raise VideoInferValidationError(
                f"max_timeline_buckets and max_classes must be at least 1, got {max_timeline_buckets} "
                f"and {max_classes}."
            )
        self.source = source
        self.inference_types = dict(inference_types or {})
        self.max_timeline_buckets = max_timeline_buckets
        self.max_classes = max_classes
        self.max_scene_changes = max_scene_changes
        self.frames = 0
        self.duration: float | None = None
        self.models: dict[str, _ModelSummarizer] = {}

    def add(self, frame: ResultFrame) -> None:
        """Count one frame of every model."""
        self.frames += 1
        if _finite(frame.time_offset) and (self.duration is None or frame.time_offset > self.duration):  # type: ignore[operator]
            self.duration = frame.time_offset
        for model_id, result in frame.results.items():
            model = self.models.get(model_id) or self.model(model_id)
            model.add(frame.index, frame.frame_offset, frame.time_offset, result)

    def model(self, model_id: str) -> _ModelSummarizer:
        """A new summarizer of one model's frames, which :meth:`summary` then lists (replacing any before).

        For a reader that reads the file model by model rather than frame by frame; it adds the
        frames' times with :meth:`add_times`.
        """
        self.models.pop(model_id, None)
        model = self.models[model_id] = _ModelSummarizer(
            self.inference_types.get(model_id), self.max_timeline_buckets, self.max_classes, self.max_scene_changes
        )
        return model

    def add_times(self, time_offsets: list[float | None]) -> None:
        """Count frames by their times only, for a reader that adds the models' frames apart."""
        self.frames += len(time_offsets)
        finite = [t for t in time_offsets if t is not None and math.isfinite(t)]
        if finite:
            latest = max(finite)
            if self.duration is None or latest > self.duration:
                self.duration = latest

    def summary(self) -> ResultSummary:
        """Return the summary of the frames added so far: a JSON-serialisable dict of bounded size."""
        return ResultSummary(
            source=self.source,
            frames=self.frames,
            last_time_offset=self.duration,
            models={model_id: model.summary() for model_id, model in self.models.items()},
        )

"""Read video inference result files as typed frames, streaming, and summarise them.

A result file is one JSON object of parallel lists (``frame_offset``, ``time_offset`` and one list
per ``model_id``) that reaches gigabytes for long videos. :class:`ResultReader` never loads it
whole: it indexes the lists once, then walks them in lockstep, one file handle per list (see
:mod:`airflow_provider_videoinfer.results.jsonstream`), and yields one :class:`ResultFrame` at a time.

Typical use::

    from airflow_provider_videoinfer.results.reader import iter_frames, summarize_result

    for frame in iter_frames("result.json"):
        detections = frame.results["my-model"]
    summary = summarize_result("s3://bucket/result.json")

The typed records live in :mod:`airflow_provider_videoinfer.results.records`, the summary in
:mod:`airflow_provider_videoinfer.results.summary` and the rows export in
:mod:`airflow_provider_videoinfer.results.rows`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_videoinfer.api import INFERENCE_TYPES
from airflow_provider_videoinfer.exceptions import VideoInferResponseError, VideoInferValidationError
from airflow_provider_videoinfer.results.format import FRAME_OFFSET_KEY, TIME_OFFSET_KEY
from airflow_provider_videoinfer.results.jsonstream import (
    DEFAULT_CHUNK_SIZE,
    ArrayInfo,
    JSONStreamError,
    index_arrays,
    iter_array,
)
from airflow_provider_videoinfer.results.records import FrameResult, ResultFrame, parse_frame_result
from airflow_provider_videoinfer.storage import Location, describe_location, local_path, open_location

if TYPE_CHECKING:

    from airflow_provider_videoinfer.results.summary import ResultSummary

ResultLocation = Location



class VideoInferResultFileError(VideoInferResponseError):
    """A result file does not follow the API contract (bad JSON, missing or unequal lists)."""


class ResultReader:
    """Iterate over the frames of a result file, reading it in a bounded amount of memory.

    Use it as a context manager, or call :meth:`close`. Each model's frame results are typed from
    their shape; ``inference_types`` overrides that for the models it names.

    :param source: a local path, a ``file://``/``memory://``/``s3://`` URI or an ``ObjectStoragePath``.
        A source that cannot seek is first copied, streaming, to a local temporary file.
    :param inference_types: optional ``{model_id: inference_type}``; each must be one of
        :data:`~airflow_provider_videoinfer.api.INFERENCE_TYPES` and each model must be in the file.
    :param chunk_size: bytes read at a time by each of the file handles (one per list).
    :raises VideoInferResultFileError: the file is not valid JSON, lacks ``frame_offset`` or
        ``time_offset``, or has lists of unequal length.
    """

    def __init__(
        self,
        source: ResultLocation,
        inference_types: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.name = describe_location(source)
        self.chunk_size = chunk_size
        self._inference_types = validate_inference_types(inference_types)
        self._stack = contextlib.ExitStack()
        try:
            self._open = self._opener(source)
            with self._open() as fh:
                self.arrays = self._index(fh)
        except BaseException:
            self.close()
            raise

    def _opener(self, source: ResultLocation) -> Callable[[], IO[bytes]]:
        path = local_path(source)
        if path is None:
            with open_location(source) as probe:
                if probe.seekable():
                    return lambda: open_location(source)
                # Copy once so that every list can have its own handle and offset.
                temp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="videoinfer-result-"))
                path = os.path.join(temp, "result.json")
                with open(path, "wb") as copy:
                    shutil.copyfileobj(probe, copy, DEFAULT_CHUNK_SIZE)
        return lambda: open(path, "rb")  # noqa: SIM115 - the caller closes it

    def _index(self, fh: IO[bytes]) -> dict[str, ArrayInfo]:
        try:
            arrays = index_arrays(fh, self.chunk_size)
        except JSONStreamError as err:
            raise VideoInferResultFileError(f"result file {self.name} is not valid: {err}.") from None
        for key in (FRAME_OFFSET_KEY, TIME_OFFSET_KEY):
            if key not in arrays:
                raise VideoInferResultFileError(
                    f"result file {self.name} has no {key!r} list (found {sorted(arrays)}): it is not a "
                    "video inference result; check the output URL."
                )
        expected = arrays[FRAME_OFFSET_KEY].length
        for key, info in arrays.items():
            if info.length != expected:
                raise VideoInferResultFileError(
                    f"result file {self.name}: list {key!r} has {info.length} elements but "
                    f"{FRAME_OFFSET_KEY!r} has {expected}; every list must have one element per frame."
                )
        missing = set(self._inference_types) - set(arrays)
        if missing:
            raise VideoInferResultFileError(
                f"result file {self.name} has no results for model(s) {sorted(missing)}; it holds "
                f"{[key for key in arrays if key not in (FRAME_OFFSET_KEY, TIME_OFFSET_KEY)]}."
            )
        return arrays

    @property
    def model_ids(self) -> list[str]:
        """The model ids whose results the file holds, in file order."""
        return [key for key in self.arrays if key not in (FRAME_OFFSET_KEY, TIME_OFFSET_KEY)]

    def __len__(self) -> int:
        """The number of sampled frames."""
        return self.arrays[FRAME_OFFSET_KEY].length

    def _iter_list(self, key: str) -> Iterator[Any]:
        with self._open() as fh:
            try:
                yield from iter_array(fh, self.arrays[key].offset, self.chunk_size)
            except JSONStreamError as err:
                raise VideoInferResultFileError(f"result file {self.name}, list {key!r}: {err}.") from None

    def __iter__(self) -> Iterator[ResultFrame]:
        """Yield every frame in order; each call starts from the first frame."""
        models = self.model_ids
        lists = [self._iter_list(key) for key in (FRAME_OFFSET_KEY, TIME_OFFSET_KEY, *models)]
        types: dict[str, str | None] = {model: self._inference_types.get(model) for model in models}
        hinted = set(self._inference_types)
        try:
            for index, (frame_offset, time_offset, *raw) in enumerate(zip(*lists, strict=True)):
                results: dict[str, FrameResult | None] = {}
                for model, data in zip(models, raw, strict=True):
                    try:
                        result = parse_frame_result(data, types[model], strict=model in hinted)
                    except (TypeError, ValueError, KeyError) as err:
                        raise VideoInferResultFileError(
                            f"result file {self.name}: frame {index} of model {model!r} does not have "
                            f"the shape of a {types[model] or 'known'} result: {err}."
                        ) from None
                    if result is not None and model not in hinted and result.inference_type in INFERENCE_TYPES:
                        # Remember a model's type, so that frames without predictions keep it.
                        types[model] = result.inference_type
                    results[model] = result
                yield ResultFrame(index, _number(frame_offset, int), _number(time_offset, float), results)
        finally:
            for generator in lists:
                generator.close()  # type: ignore[attr-defined]

    def summarize(self, **options: Any) -> dict[str, Any]:
        """Return :meth:`ResultSummary.to_dict` of every frame; ``options`` go to :class:`ResultSummary`."""
        summary = self.summary(**options)
        for frame in self:
            summary.add(frame)
        return summary.to_dict()

    def summary(self, **options: Any) -> ResultSummary:
        """Return an empty :class:`~airflow_provider_videoinfer.results.summary.ResultSummary` for this file."""
        from airflow_provider_videoinfer.results.summary import ResultSummary

        return ResultSummary(source=self.name, inference_types=self._inference_types, **options)

    def close(self) -> None:
        """Close every file handle and delete any temporary copy."""
        self._stack.close()

    def __enter__(self) -> ResultReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _number(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def validate_inference_types(inference_types: Mapping[str, str] | None) -> dict[str, str]:
    """Check an optional ``{model_id: inference_type}`` hint; return it as a dict (empty for None)."""
    if inference_types is None:
        return {}
    if not isinstance(inference_types, Mapping):
        raise VideoInferValidationError(
            f"inference_types must be a dict {{model_id: inference_type}}, got {type(inference_types).__name__}."
        )
    for model_id, inference_type in inference_types.items():
        if inference_type not in INFERENCE_TYPES:
            raise VideoInferValidationError(
                f"inference_types[{model_id!r}] is {inference_type!r}: use one of {', '.join(INFERENCE_TYPES)}."
            )
    return dict(inference_types)


def iter_frames(source: ResultLocation, inference_types: Mapping[str, str] | None = None) -> Iterator[ResultFrame]:
    """Yield the typed frames of a result file, streaming; see :class:`ResultReader`.

    :param source: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    """
    with ResultReader(source, inference_types) as reader:
        yield from reader


def summarize_result(
    source: ResultLocation, inference_types: Mapping[str, str] | None = None, **options: Any
) -> dict[str, Any]:
    """Summarise a result file per model, streaming; return a small JSON-serialisable dict.

    :param source: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    :param options: passed to :class:`~airflow_provider_videoinfer.results.summary.ResultSummary`, e.g.
        ``max_timeline_buckets``.
    """
    with ResultReader(source, inference_types) as reader:
        return reader.summarize(**options)

"""Read video inference result files as typed frames, streaming, and summarise them.

A result file is one JSON object of parallel lists (``frame_offset``, ``time_offset`` and one list
per ``model_id``) that reaches gigabytes for long videos. :class:`ResultReader` never loads it
whole: it locates the lists once, then walks them in lockstep, one file handle per list, each
decoded by msgspec in batches (see :mod:`airflow_provider_videoinfer.results.jsonstream`), and
yields one :class:`ResultFrame` at a time. :meth:`ResultReader.feed` is the one frame loop that
the summary, the rows export and the operator share.

Typical use::

    from airflow_provider_videoinfer.results import ResultReader, summarize_result

    with ResultReader("result.json") as reader:
        for frame in reader:
            detections = frame.results["my-model"]  # None where inference failed on that frame
    summary = summarize_result("s3://aws_default@bucket/result.json")

The typed records live in :mod:`videoinfer_contract.results`, the summary's definition in
:mod:`airflow_provider_videoinfer.results.summary` (computed by :mod:`.summarizer`) and the rows
export in :mod:`airflow_provider_videoinfer.results.rows`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Protocol

from airflow_provider_videoinfer.contract import validate_inference_types
from airflow_provider_videoinfer.exceptions import VideoInferResponseError
from airflow_provider_videoinfer.results.decoding import FrameDecoder, FrameValueError, OffsetDecoder
from airflow_provider_videoinfer.results.jsonstream import (
    DEFAULT_CHUNK_SIZE,
    ArrayInfo,
    JSONStreamError,
    index_arrays,
    iter_batches,
)
from airflow_provider_videoinfer.storage import (
    Location,
    describe_location,
    local_path,
    open_location,
    require_regular_file,
)
from videoinfer_contract.results import FRAME_OFFSET_KEYS, TIME_OFFSET_KEYS, ResultFrame

if TYPE_CHECKING:
    from airflow_provider_videoinfer.results.summary import ResultSummary

log = logging.getLogger(__name__)

#: Bytes fetched per request by each list's handle on a remote result file.
REMOTE_BLOCK_SIZE = 2 << 20


class FrameSink(Protocol):
    """Anything fed frames by :meth:`ResultReader.feed`: the summarizer, the rows writer, ..."""

    def add(self, frame: ResultFrame) -> None:
        """Take one frame."""


class VideoInferResultFileError(VideoInferResponseError):
    """A result file does not follow the API contract (bad JSON, missing or unequal lists)."""


class ResultReader:
    """Iterate over the frames of a result file, reading it in a bounded amount of memory.

    Use it as a context manager, or call :meth:`close`. Each model's frame results are typed from
    their shape; ``inference_types`` overrides that for the models it names. Both spellings of
    the offsets' keys are read (``frame_offset``/``frame_offsets``, ``time_offset``/``time_offsets``);
    top-level values that are not lists of one element per frame are ignored (logged at debug level).

    :param source: a local path, a ``file://``/``memory://``/``s3://conn_id@bucket/key`` URI or an
        ``ObjectStoragePath``. A source that cannot seek is first copied, streaming, to a local
        temporary file.
    :param inference_types: optional ``{model_id: inference_type}``; each must be one of
        :data:`~videoinfer_contract.validation.INFERENCE_TYPES` and each model must be in the file.
    :param chunk_size: bytes decoded at a time by each of the file handles (one per list).
    :param name: how messages name the file; default its location.
    :raises VideoInferResultFileError: the file is not valid JSON, lacks the frame or time offsets,
        or they differ in length.
    :raises VideoInferStorageError: it cannot be read; a local path that is not a regular file (a
        folder, a FIFO, a device) is refused before it is opened.
    """

    def __init__(
        self,
        source: Location,
        inference_types: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        name: str | None = None,
    ) -> None:
        self.name = name or describe_location(source)
        self.chunk_size = chunk_size
        self._inference_types = validate_inference_types(inference_types)
        self._stack = contextlib.ExitStack()
        try:
            self._open = self._opener(source)
            with self._open() as fh:
                self._locate(self._index(fh))
        except BaseException:
            self.close()
            raise

    def _opener(self, source: Location) -> Callable[[], IO[bytes]]:
        require_regular_file(source)
        path = local_path(source)
        if path is None:
            with open_location(source) as probe:
                if probe.seekable():
                    # One handle per list: a small read-ahead each keeps several lists' memory low.
                    return lambda: open_location(source, block_size=REMOTE_BLOCK_SIZE)
                # Copy once so that every list can have its own handle and offset.
                temp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="videoinfer-result-"))
                path = os.path.join(temp, "result.json")
                with open(path, "wb") as copy:
                    shutil.copyfileobj(probe, copy, DEFAULT_CHUNK_SIZE)
        return lambda: open(path, "rb")  # noqa: SIM115 - the caller closes it

    def _index(self, fh: IO[bytes]) -> dict[str, ArrayInfo]:
        try:
            return index_arrays(fh, self.chunk_size)
        except JSONStreamError as err:
            raise VideoInferResultFileError(f"result file {self.name} is not valid JSON: {err}.") from None

    def _locate(self, arrays: dict[str, ArrayInfo]) -> None:
        """Choose the offsets' lists and the models' lists among the file's top-level lists."""
        offsets = []
        for keys in (FRAME_OFFSET_KEYS, TIME_OFFSET_KEYS):
            key = next((key for key in keys if key in arrays), None)
            if key is None:
                raise VideoInferResultFileError(
                    f"result file {self.name} has no {keys[0]!r} list (found {sorted(arrays)}): it is not a "
                    "video inference result; check the output URL."
                )
            offsets.append(key)
        self.frame_offset_key, self.time_offset_key = offsets
        frames = arrays[self.frame_offset_key].length
        if arrays[self.time_offset_key].length != frames:
            raise VideoInferResultFileError(
                f"result file {self.name}: list {self.time_offset_key!r} has {arrays[self.time_offset_key].length} "
                f"elements but {self.frame_offset_key!r} has {frames}; every list must have one element per frame."
            )
        self.arrays = {key: arrays[key] for key in offsets}
        for key, info in arrays.items():
            if key in FRAME_OFFSET_KEYS or key in TIME_OFFSET_KEYS:
                continue
            if info.length == frames:
                self.arrays[key] = info
            else:
                length = info.length
                log.debug("Result file %s: ignoring list %r of %d elements, not one per frame.", self.name, key, length)
        missing = set(self._inference_types) - set(self.arrays)
        if missing:
            raise VideoInferResultFileError(
                f"result file {self.name} has no results of one element per frame for model(s) {sorted(missing)}; "
                f"it holds {self.model_ids}. Check inference_types."
            )

    @property
    def model_ids(self) -> list[str]:
        """The model ids whose results the file holds, in file order."""
        return list(self.arrays)[2:]

    def __len__(self) -> int:
        """The number of sampled frames."""
        return self.arrays[self.frame_offset_key].length

    def _iter_batches(self, key: str, decoder: FrameDecoder | OffsetDecoder) -> Iterator[list[Any]]:
        with self._open() as fh:
            try:
                yield from iter_batches(fh, self.arrays[key], decoder.decode, decoder.convert, self.chunk_size)
            except JSONStreamError as err:
                raise VideoInferResultFileError(f"result file {self.name}, list {key!r}: {err}.") from None
            except FrameValueError as err:
                raise VideoInferResultFileError(f"result file {self.name}: {err}.") from None

    def __iter__(self) -> Iterator[ResultFrame]:
        """Yield every frame in order; each call starts from the first frame."""
        models = self.model_ids
        decoders: list[FrameDecoder | OffsetDecoder] = [
            OffsetDecoder(self.frame_offset_key, integer=True),
            OffsetDecoder(self.time_offset_key, integer=False),
            *(
                FrameDecoder(model, self._inference_types.get(model), strict=model in self._inference_types)
                for model in models
            ),
        ]
        batches = [self._iter_batches(key, decoder) for key, decoder in zip(self.arrays, decoders, strict=True)]
        lists = map(itertools.chain.from_iterable, batches)  # elements in C, one Python call per batch
        try:
            for index, (frame_offset, time_offset, *results) in enumerate(zip(*lists, strict=True)):
                yield ResultFrame(index, frame_offset, time_offset, dict(zip(models, results, strict=True)))
        finally:
            for generator in batches:
                generator.close()  # type: ignore[attr-defined]

    def feed(self, *sinks: FrameSink) -> int:
        """Read every frame once and give it to each sink in turn; return the number of frames.

        :param sinks: e.g. a :class:`~airflow_provider_videoinfer.results.summarizer.Summarizer` and a
            :class:`~airflow_provider_videoinfer.results.rows.RowsWriter`.
        """
        adders = [sink.add for sink in sinks]
        frames = 0
        for frame in self:
            frames += 1
            for add in adders:
                add(frame)
        return frames

    def summarize(self, *sinks: FrameSink, **options: Any) -> ResultSummary:
        """Read every frame once and return their summary; ``sinks`` are fed the same frames.

        :param sinks: more sinks to feed in the same pass, e.g. a
            :class:`~airflow_provider_videoinfer.results.rows.RowsWriter`.
        :param options: passed to :class:`~airflow_provider_videoinfer.results.summarizer.Summarizer`,
            e.g. ``max_timeline_buckets``.
        """
        from airflow_provider_videoinfer.results.summarizer import Summarizer

        summarizer = Summarizer(source=self.name, inference_types=self._inference_types, **options)
        self.feed(summarizer, *sinks)
        return summarizer.summary()

    def close(self) -> None:
        """Close every file handle and delete any temporary copy."""
        self._stack.close()

    def __enter__(self) -> ResultReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_frames(source: Location, inference_types: Mapping[str, str] | None = None) -> Iterator[ResultFrame]:
    """Yield the typed frames of a result file, streaming; see :class:`ResultReader`.

    :param source: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    """
    with ResultReader(source, inference_types) as reader:
        yield from reader


def summarize_result(
    source: Location, inference_types: Mapping[str, str] | None = None, **options: Any
) -> ResultSummary:
    """Summarise a result file per model, streaming; return a small JSON-serialisable dict.

    :param source: a local path, an fsspec URI or an ``ObjectStoragePath``.
    :param inference_types: optional ``{model_id: inference_type}`` overriding shape detection.
    :param options: passed to :class:`~airflow_provider_videoinfer.results.summarizer.Summarizer`, e.g.
        ``max_timeline_buckets``.
    """
    with ResultReader(source, inference_types) as reader:
        return reader.summarize(**options)

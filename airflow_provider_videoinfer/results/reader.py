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
from airflow_provider_videoinfer.results.decoding import (
    CountedBatch,
    FrameDecoder,
    FrameValueError,
    OffsetDecoder,
    SummaryDecoder,
)
from airflow_provider_videoinfer.results.jsonstream import (
    DEFAULT_CHUNK_SIZE,
    ArrayInfo,
    JSONStreamError,
    index_arrays,
    index_head,
    iter_batches,
    tail_closes_a_list,
    walk_arrays,
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
    from airflow_provider_videoinfer.results.summarizer import Summarizer
    from airflow_provider_videoinfer.results.summary import ResultSummary

log = logging.getLogger(__name__)

#: Bytes fetched per request by each list's handle on a remote result file.
REMOTE_BLOCK_SIZE = 2 << 20
#: Bytes decoded at a time of the offsets read beside a model's list, whose values are kept a batch at a time.
OFFSETS_CHUNK_SIZE = 64 << 10


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
        self._arrays: dict[str, ArrayInfo] | None = None
        try:
            self._open = self._opener(source)
            with self._open() as fh:
                self._locate(*self._index_head(fh))
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

    def _index_head(self, fh: IO[bytes]) -> tuple[dict[str, ArrayInfo], bool]:
        """The lists of the file's start and whether they are all; a large file is read at both ends only.

        This is the check a download passes before it may replace a kept file: the object, its keys
        up to the models' lists, the offsets read whole, and its end closing a list and the object.
        Each model's list is read whole by whoever reads the frames. When the end says nothing
        clear, the whole file is indexed (as every file was before).
        """
        try:
            arrays, complete = index_head(fh, (FRAME_OFFSET_KEYS, TIME_OFFSET_KEYS), chunk_size=self.chunk_size)
            if complete or tail_closes_a_list(fh, max(info.end for info in arrays.values()) + 1):
                return arrays, complete
        except JSONStreamError:
            pass  # the whole file's index says where and what, in the same words as before
        fh.seek(0)
        return self._index(fh), True

    def _locate(self, arrays: dict[str, ArrayInfo], complete: bool) -> None:
        """Choose the offsets' lists among the file's top-level lists and check them."""
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
        self._offsets = {key: arrays[key] for key in offsets}
        if complete:
            self._arrays = self._select(arrays)

    def _select(self, arrays: dict[str, ArrayInfo]) -> dict[str, ArrayInfo]:
        """The offsets' lists and the models' lists (those of one element per frame), in file order."""
        frames = len(self)
        selected = dict(self._offsets)
        for key, info in arrays.items():
            if key in FRAME_OFFSET_KEYS or key in TIME_OFFSET_KEYS:
                continue
            if info.length == frames:
                selected[key] = info
            else:
                length = info.length
                log.debug("Result file %s: ignoring list %r of %d elements, not one per frame.", self.name, key, length)
        missing = set(self._inference_types) - set(selected)
        if missing:
            raise VideoInferResultFileError(
                f"result file {self.name} has no results of one element per frame for model(s) {sorted(missing)}; "
                f"it holds {list(selected)[2:]}. Check inference_types."
            )
        return selected

    def _same_offsets(self, arrays: dict[str, ArrayInfo]) -> bool:
        """Whether the whole file's index chooses the offsets' lists that its start did."""
        chosen = [next((key for key in keys if key in arrays), None) for keys in (FRAME_OFFSET_KEYS, TIME_OFFSET_KEYS)]
        return all(key is not None and arrays[key] == self._offsets.get(key) for key in chosen)

    @property
    def arrays(self) -> dict[str, ArrayInfo]:
        """Where the offsets' lists and each model's list are (the file is indexed whole on first use)."""
        if self._arrays is None:
            with self._open() as fh:
                arrays = self._index(fh)
            if not self._same_offsets(arrays):
                self._locate(arrays, complete=True)  # a key given again further on: the last counts
            self._arrays = self._select(arrays)
        return self._arrays

    @property
    def inference_type_hints(self) -> dict[str, str]:
        """The models' types given by the caller (``inference_types``), checked."""
        return dict(self._inference_types)

    @property
    def model_ids(self) -> list[str]:
        """The model ids whose results the file holds, in file order."""
        return list(self.arrays)[2:]

    def __len__(self) -> int:
        """The number of sampled frames."""
        return self._offsets[self.frame_offset_key].length

    def _iter_batches(
        self, key: str, decoder: FrameDecoder | OffsetDecoder, small: bool = False
    ) -> Iterator[list[Any]]:
        info = self._offsets.get(key) or self.arrays[key]
        chunk_size = min(self.chunk_size, OFFSETS_CHUNK_SIZE) if small else self.chunk_size
        with self._open() as fh:
            try:
                yield from iter_batches(fh, info, decoder.decode, decoder.convert, chunk_size)
            except JSONStreamError as err:
                raise VideoInferResultFileError(f"result file {self.name}, list {key!r}: {err}.") from None
            except FrameValueError as err:
                raise VideoInferResultFileError(f"result file {self.name}: {err}.") from None

    def __iter__(self) -> Iterator[ResultFrame]:
        """Yield every frame in order; each call starts from the first frame."""
        models = self.model_ids
        for index, frame_offset, time_offset, results in self.iter_results():
            yield ResultFrame(index, frame_offset, time_offset, dict(zip(models, results, strict=True)))

    def iter_results(
        self, decoder: Callable[[str, str | None, bool], FrameDecoder] = FrameDecoder
    ) -> Iterator[tuple[int, int, float | None, tuple[Any, ...]]]:
        """Yield every frame in order as ``(index, frame_offset, time_offset, results)``, with no record of it.

        ``results`` holds the models' results in the order of :attr:`model_ids`.

        :param decoder: makes the decoder of a model's list from the model id, its type when known
            and whether that type was given; a subclass of :class:`.FrameDecoder` may decode into
            other records than the contract's.
        """
        models = self.model_ids
        decoders: list[FrameDecoder | OffsetDecoder] = [
            OffsetDecoder(self.frame_offset_key, integer=True),
            OffsetDecoder(self.time_offset_key, integer=False),
            *(decoder(model, self._inference_types.get(model), model in self._inference_types) for model in models),
        ]
        batches = [self._iter_batches(key, decoder) for key, decoder in zip(self.arrays, decoders, strict=True)]
        lists = map(itertools.chain.from_iterable, batches)  # elements in C, one Python call per batch
        try:
            for index, (frame_offset, time_offset, *results) in enumerate(zip(*lists, strict=True)):
                yield index, frame_offset, time_offset, results  # type: ignore[misc]
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

        Without sinks, the file is read in one pass, model after model, each detection model's
        frames decoded into records of only what the summary reads (see
        :class:`~airflow_provider_videoinfer.results.decoding.SummaryDecoder`). A file that this pass
        cannot read is read again frame by frame, which names the problem.

        :param sinks: more sinks to feed in the same pass, e.g. a
            :class:`~airflow_provider_videoinfer.results.rows.RowsWriter`.
        :param options: passed to :class:`~airflow_provider_videoinfer.results.summarizer.Summarizer`,
            e.g. ``max_timeline_buckets``.
        """
        from airflow_provider_videoinfer.results.summarizer import Summarizer

        if not sinks:
            summarizer = Summarizer(source=self.name, inference_types=self._inference_types, **options)
            try:
                if self._summarize_models(summarizer):
                    return summarizer.summary()
            except (JSONStreamError, FrameValueError, VideoInferResultFileError) as err:
                log.debug("Result file %s: reading it again frame by frame (%s).", self.name, err)
        summarizer = Summarizer(source=self.name, inference_types=self._inference_types, **options)
        self.feed(summarizer, *sinks)
        return summarizer.summary()

    def _summarize_models(self, summarizer: Summarizer) -> bool:
        """Summarise the file in one pass, model after model; False when the frame by frame reading must.

        The offsets are read beside each model's list, through handles of their own.
        """
        frames = len(self)
        passes: dict[str, _ModelPass] = {}
        with contextlib.ExitStack() as stack:

            def open_list(key: str) -> tuple[Any, Any, Callable[[list[Any]], None]] | None:
                if key in FRAME_OFFSET_KEYS or key in TIME_OFFSET_KEYS:
                    return None
                passes.pop(key, None)
                hint = self._inference_types.get(key)
                decoder = SummaryDecoder(key, hint, strict=hint is not None)
                model_pass = passes[key] = _ModelPass(summarizer.model(key), frames, self._offset_values)
                stack.callback(model_pass.close)
                return decoder.decode, decoder.convert, model_pass.add

            with self._open() as fh:
                try:
                    arrays = walk_arrays(fh, open_list, self.chunk_size)
                except JSONStreamError:
                    return False
            if not self._same_offsets(arrays):
                return False
            self._arrays = selected = self._select(arrays)
            # The offsets read whole, checked as frame by frame reading checks them, even without a model.
            for _ in self._iter_batches(self.frame_offset_key, OffsetDecoder(self.frame_offset_key, integer=True)):
                pass
            for times in self._iter_batches(self.time_offset_key, OffsetDecoder(self.time_offset_key, integer=False)):
                summarizer.add_times(times)
        # Only lists of one element per frame are models' results; with no frame, no model.
        summarizer.models = {key: summarizer.models[key] for key in list(selected)[2:] if frames}
        return True

    def _offset_values(self) -> tuple[_Values, _Values]:
        """The frame and time offsets, in small batches: a model's frames are read beside them."""
        frame_key, time_key = self.frame_offset_key, self.time_offset_key
        return (
            _Values(self._iter_batches(frame_key, OffsetDecoder(frame_key, integer=True), small=True)),
            _Values(self._iter_batches(time_key, OffsetDecoder(time_key, integer=False), small=True)),
        )

    def close(self) -> None:
        """Close every file handle and delete any temporary copy."""
        self._stack.close()

    def __enter__(self) -> ResultReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Values:
    """The elements of a list's batches, iterated in C; :meth:`close` closes the list's file handle."""

    def __init__(self, batches: Iterator[list[Any]]) -> None:
        self._batches = batches
        self._values = itertools.chain.from_iterable(batches)

    def __iter__(self) -> Iterator[Any]:
        return self._values

    def close(self) -> None:
        self._batches.close()  # type: ignore[attr-defined]


class _ModelPass:
    """One model's frames as the one-pass summary reads them: batches, with the offsets beside them.

    :param model: the model's summarizer.
    :param frames: the file's frames; a longer list is no model's (its figures are dropped).
    :param frame_offsets: the frame offsets, from the first.
    :param time_offsets: the time offsets, from the first.
    """

    def __init__(self, model: Any, frames: int, open_offsets: Callable[[], tuple[_Values, _Values]]) -> None:
        self.model = model
        self.frames = frames
        self.open_offsets = open_offsets
        self.offsets: tuple[_Values, _Values] | None = None
        self.index = 0

    def add(self, batch: list[Any]) -> None:
        """Count one batch of the model's frames."""
        start, count = self.index, len(batch)
        self.index += count
        if self.index > self.frames:
            self.close()
            return  # not one element per frame: not a model's list, left out in the end
        if self.offsets is None:
            self.offsets = self.open_offsets()
        frame_offsets = list(itertools.islice(self.offsets[0], count))
        time_offsets = list(itertools.islice(self.offsets[1], count))
        if self.index == self.frames:
            self.close()  # the offsets' handles, before the next list
        if type(batch) is CountedBatch:
            self.model.add_counted(start, frame_offsets, time_offsets, batch)
            return
        add = self.model.add
        for i, result in enumerate(batch):
            add(start + i, frame_offsets[i], time_offsets[i], result)

    def close(self) -> None:
        """Close the offsets' handles."""
        if self.offsets is not None:
            for values in self.offsets:
                values.close()


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

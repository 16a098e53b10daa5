"""Stream the top-level lists of a JSON object in batches of elements, without loading the file.

A result file is one JSON object of parallel lists that can reach gigabytes. :func:`index_arrays`
walks the object once and notes where each top-level list starts and ends and how many elements
it has; :func:`iter_batches` then decodes one list from its offset, so that several lists can be read
in lockstep through one file handle each.

The decoding is msgspec's (an Airflow core dependency, written in C): a list is cut into batches
of about ``chunk_size`` bytes, each decoded by one msgspec call. A cut is chosen by counting
brackets back from the end of the window, which strings holding brackets can fool; msgspec then
proves it, because ``[`` + the text up to a comma + ``]`` is valid JSON only when that comma
separates two elements of the list. When no proven cut is found (a string with brackets, the
list's end while indexing, ``NaN``/``Infinity`` that msgspec refuses, a malformed file), a few
elements are decoded one by one with the standard library's decoder, which also reads ``NaN``,
``Infinity`` and ``-Infinity`` as Python writes them, and gives the position of any real error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import msgspec

DEFAULT_CHUNK_SIZE = 512 << 10
# One list element (one frame's result) larger than this is taken for a malformed file rather
# than buffered further; semantic-segmentation masks are the largest elements, a few MB at most.
DEFAULT_MAX_ELEMENT_CHARS = 256 << 20
# After a cut msgspec could not prove, elements decoded one at a time before trying again.
SLOW_ELEMENTS = 32
#: Bytes of a list read past the offsets before :func:`index_head` may stop.
DEFAULT_HEAD_BYTES = 1 << 20
#: Bytes at the end of a file read by :func:`tail_closes_a_list`.
DEFAULT_TAIL_CHECK_BYTES = 64 << 10
# Bytes at the end of a window searched for a cut before searching the whole window.
_TAIL_BYTES = 256 << 10

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_STRUCTURE = re.compile(rb"[\[\]{},]")
_DECODE = json.JSONDecoder().raw_decode
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_DEPTH = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_FIRST_KEY = re.compile(rb'\{\s*"(?:[^"\\]|\\.)*"')
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_TOO_DEEP = (
    "a value is nested too deeply to decode (lists or objects inside each other thousands of levels deep); "
    "a result file nests a few levels only"
)

#: Decodes the JSON text of a list (``b"[...]"``) into its elements; raises ``msgspec.DecodeError``
#: (or ``ValueError``) when the text is not one valid JSON list.
BatchDecoder = Callable[[bytes], list[Any]]
#: Turns one element decoded by the standard library into what the batch decoder would give.
Converter = Callable[[Any], Any]


class JSONStreamError(ValueError):
    """The stream is not the JSON this module expects; ``position`` is a byte offset, if known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message if position is None else f"{message} (near byte {position})")


@dataclass(frozen=True)
class ArrayInfo:
    """Where one top-level list is and how many elements it has.

    :param offset: byte offset of the list's opening ``[`` in the file.
    :param length: number of elements.
    :param end: byte offset of its closing ``]``.
    """

    offset: int
    length: int
    end: int


def _identity(value: Any) -> Any:
    return value


def _cuts(buf: bytearray, start: int, stop: int, prefix: bytes | None) -> Iterator[int]:
    """Positions of commas in ``buf[start:stop]`` likely to separate two list elements, best first.

    :param start: where an element of the list starts.
    :param prefix: how the list's elements start (``b","`` for numbers), or None if not known.
    """
    if prefix == b",":
        cut = buf.rfind(b",", start, stop)
        if cut > start:
            yield cut
    elif prefix:
        end = stop
        for _ in range(2):
            found = buf.rfind(prefix, start + 1, end)
            if found < 0:
                break
            cut = found - 1
            while cut > start and buf[cut] in b" \t\r\n":
                cut -= 1
            if buf[cut] == 44:  # ","
                yield cut
            end = found
    cut = _last_cut(buf, start, stop)  # type: ignore[assignment]
    if cut is not None:
        yield cut


def _last_cut(buf: bytearray, start: int, stop: int) -> int | None:
    """The last comma of ``buf[start:stop]`` that brackets say is between two list elements.

    ``start`` is where an element of the list starts. Only a guess: strings may hold brackets.
    """
    depth = sum(buf.count(c, start, stop) for c in b"[{") - sum(buf.count(c, start, stop) for c in b"]}")
    for tail in (max(start, stop - _TAIL_BYTES), start):
        # Walk back from the end: a comma after which the brackets account for the whole
        # window's depth is at the list's level.
        after = 0
        for match in _STRUCTURE.finditer(buf[tail:stop][::-1]):
            char = match.group()[0]
            if char != 44:  # ","
                after += _DEPTH[char]
            elif after == depth:
                return stop - match.start() - 1
        if tail == start:
            break
    return None


class _Cursor:
    """A position in a binary file with a buffer of bytes around it.

    Batches are decoded in place: the byte before a batch becomes ``[`` and the comma after it
    ``]`` for the time of one msgspec call, so that no batch is copied.

    :param fh: the file, positioned at ``base``.
    :param base: byte offset of ``fh``'s position in the file.
    """

    def __init__(self, fh: IO[bytes], chunk_size: int, max_element_chars: int, base: int = 0) -> None:
        self.fh = fh
        self.chunk_size = max(1, chunk_size)
        self.max_element_chars = max_element_chars
        self.buf = bytearray()
        self.pos = 0
        self.base = base
        self.eof = False
        self._text: str | None = None
        #: How the elements of the list being read start (see :func:`_cuts`).
        self.prefix: bytes | None = None
        #: Offset of the closing ``]`` of the last list read to its end.
        self.list_end = -1

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def fill(self, want: int) -> None:
        """Read until ``want`` bytes follow the position, or the file ends."""
        have = len(self.buf) - self.pos
        if have >= want or self.eof:
            return
        keep = max(0, self.pos - 1)  # the byte before the position, for in-place decoding
        del self.buf[:keep]
        self.base += keep
        self.pos -= keep
        self._text = None
        while have < want:
            data = self.fh.read(max(self.chunk_size, want - have))
            if not data:
                self.eof = True
                break
            self.buf += data
            have += len(data)

    def grow(self) -> bool:
        """Read more than is buffered (doubling); return False at the end of the file."""
        pending = len(self.buf) - self.pos
        if pending > self.max_element_chars:
            raise JSONStreamError(
                f"a value is larger than {self.max_element_chars} characters or never ends", self.offset
            )
        self.fill(pending + max(self.chunk_size, pending))
        return len(self.buf) - self.pos > pending

    def peek(self) -> int:
        """Skip whitespace and return the next byte without consuming it; -1 at the end."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            self.fill(1)
            if self.pos >= len(self.buf):
                return -1

    def expect(self, chars: bytes, what: str) -> int:
        """Consume the next non-blank byte, which must be one of ``chars``."""
        char = self.peek()
        if char < 0 or char not in chars:
            found = repr(chr(char)) if char >= 0 else "the end of the file"
            raise JSONStreamError(f"expected {what}, found {found}", self.offset)
        self.pos += 1
        return char

    def value(self) -> tuple[Any, bytes]:
        """Decode the next value with the standard library; return it and its source bytes."""
        self.peek()
        while True:
            if self._text is None:
                # Latin-1 maps each byte to one character, so text positions are byte positions;
                # JSON's structure is ASCII, and strings are re-decoded as UTF-8 below.
                self._text = self.buf.decode("latin-1")
            try:
                value, end = _DECODE(self._text, self.pos)
            except RecursionError:
                raise JSONStreamError(_TOO_DEEP, self.offset) from None
            except json.JSONDecodeError as err:
                # Most often the value runs past the buffer: read on, doubling, and retry.
                if self.grow():
                    continue
                raise JSONStreamError(f"invalid JSON: {err.msg}", self.base + err.pos) from None
            # A number cut by the buffer's end decodes as a shorter number ("1.5e" as 1.5).
            if (
                not isinstance(value, (str, dict, list))
                and (end == len(self._text) or self._text[end] in _NUMBER_CHARS)
                and self.grow()
            ):
                continue
            raw = bytes(self.buf[self.pos : end])
            if not raw.isascii():
                try:
                    value = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as err:
                    raise JSONStreamError(f"invalid UTF-8: {err.reason}", self.offset + err.start) from None
                except RecursionError:
                    raise JSONStreamError(_TOO_DEEP, self.offset) from None
            self.pos = end
            return value, raw

    def batches(self, decode: BatchDecoder, convert: Converter, end: int | None = None) -> Iterator[list[Any]]:
        """Yield the elements of the list whose ``[`` is the next byte, in lists of one batch each.

        Batches rather than elements, so that callers iterate over the elements in C
        (``itertools.chain.from_iterable``) rather than through a generator per element.

        :param end: the offset of the list's ``]`` when known, so that batches never pass it.
        """
        self.expect(b"[", "'['")
        self.prefix = None
        if self.peek() == 93:  # "]"
            self.pos += 1
            self.list_end = self.offset - 1
            return
        slow = 0
        failures = 0
        while True:
            if not slow:
                batch = self._batch(decode, end)
                if batch is not None:
                    failures = 0
                    values, done = batch
                    yield values
                    if done:
                        return
                    continue
                # Each failure in a row doubles the elements decoded one by one before the next try.
                slow = SLOW_ELEMENTS << min(failures, 10)
                failures += 1
            slow -= 1
            yield [convert(self.value()[0])]
            if self.expect(b",]", "',' or ']' after a list element") == 93:
                self.list_end = self.offset - 1
                return

    def _decode(self, decode: BatchDecoder, close: int) -> list[Any]:
        """Decode ``buf[pos:close]`` as a list, in place."""
        first, before = self.pos - 1, self.buf[self.pos - 1]
        after = self.buf[close]
        self.buf[first] = 91  # "["
        self.buf[close] = 93  # "]"
        try:
            # Not released explicitly: an error's traceback may still refer to the view; it goes
            # with the last reference, before the buffer is next resized.
            return decode(memoryview(self.buf)[first : close + 1])  # type: ignore[arg-type]
        finally:
            self.buf[first] = before
            self.buf[close] = after

    def _batch(self, decode: BatchDecoder, end: int | None) -> tuple[list[Any], bool] | None:
        """Decode the elements of about one chunk from the position, proven by msgspec; None if none."""
        self.peek()
        want = self.chunk_size
        while True:
            self.fill(want)
            stop = len(self.buf) if end is None else min(len(self.buf), end - self.base)
            if end is not None and stop < len(self.buf):  # the rest of the list, up to its "]"
                try:
                    values = self._decode(decode, stop)
                except (msgspec.DecodeError, ValueError):
                    return None
                self.pos = stop + 1
                self.list_end = end
                return values, True
            self._learn()
            for tries, cut in enumerate(_cuts(self.buf, self.pos, stop, self.prefix)):
                try:
                    values = self._decode(decode, cut)
                except (msgspec.DecodeError, ValueError) as err:
                    # The list may end inside the window (when its end is not known yet): msgspec
                    # then stops at the trailing text, just past the list's "]".
                    if end is None and (batch := self._batch_to_end(decode, stop, err)) is not None:
                        return batch
                    if tries:
                        return None
                    continue
                self.pos = cut + 1
                return values, False
            if self.eof or stop - self.pos >= self.max_element_chars:
                return None
            want = 2 * (stop - self.pos)  # no cut: an element longer than the window; read on

    def _learn(self) -> None:
        """Note how the list's elements start, to find the next cut faster."""
        first = self.buf[self.pos]
        if first == 123:  # "{"
            key = _FIRST_KEY.match(self.buf, self.pos)
            if key is not None:
                self.prefix = key.group()
        elif first == 91:  # "["
            self.prefix = b"["
        elif first in b"-0123456789":
            self.prefix = b","

    def _batch_to_end(self, decode: BatchDecoder, stop: int, err: Exception) -> tuple[list[Any], bool] | None:
        """The rest of the list, when a failed batch says where the list ends; else None."""
        found = _TRAILING.search(str(err))
        # msgspec counts from the "[" put before the position.
        close = -1 if found is None else self.buf.rfind(b"]", self.pos, self.pos - 1 + int(found.group(1)))
        if close < 0:
            return None
        try:
            values = self._decode(decode, close)
        except (msgspec.DecodeError, ValueError):
            return None
        self.pos = close + 1
        self.list_end = self.offset - 1
        return values, True


def _count(text: bytes) -> list[Any]:
    # Raw values refer to the buffer, which must be free again once the batch is decoded.
    return [None] * len(_RAW_LIST.decode(text))


#: Reads one top-level list at the cursor (its ``[`` is next) and returns where it is, or None to
#: stop the walk there (the rest of the object is then not read).
ListReader = Callable[[str, "_Cursor"], "ArrayInfo | None"]


def _count_list(key: str, cursor: _Cursor) -> ArrayInfo:
    offset = cursor.offset
    length = sum(map(len, cursor.batches(_count, _identity)))
    return ArrayInfo(offset, length, cursor.list_end)


def _walk(cursor: _Cursor, read_list: ListReader) -> tuple[dict[str, ArrayInfo], bool]:
    """Walk the JSON object at the cursor; return its top-level lists and whether it was read to its end."""
    cursor.fill(3)
    if cursor.buf.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
        cursor.pos = 3
    arrays: dict[str, ArrayInfo] = {}
    cursor.expect(b"{", "a JSON object '{'")
    if cursor.peek() == 125:  # "}"
        cursor.pos += 1
        _expect_end(cursor)
        return arrays, True
    while True:
        if cursor.peek() != 34:  # '"'
            cursor.expect(b'"', "a key")
        key = cursor.value()[0]
        cursor.expect(b":", "':' after a key")
        arrays.pop(key, None)
        if cursor.peek() == 91:  # "["
            info = read_list(key, cursor)
            if info is None:
                return arrays, False
            arrays[key] = info
        else:
            cursor.value()
        if cursor.expect(b",}", "',' or '}' after a value") == 125:
            _expect_end(cursor)
            return arrays, True


def index_arrays(
    fh: IO[bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> dict[str, ArrayInfo]:
    """Walk a JSON object once and locate each of its top-level lists.

    Values that are not lists are skipped; of a key given twice, the last value counts. Anything
    but blanks after the object is an error.

    :param fh: a binary file positioned at the start of the JSON object.
    :param chunk_size: bytes read at a time.
    :param max_element_chars: largest single value accepted before giving up.
    """
    return _walk(_Cursor(fh, chunk_size, max_element_chars), _count_list)[0]


def index_head(
    fh: IO[bytes],
    needed: Sequence[Sequence[str]],
    head_bytes: int = DEFAULT_HEAD_BYTES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> tuple[dict[str, ArrayInfo], bool]:
    """Locate the top-level lists at the start of a JSON object, reading little of a large one.

    The walk stops inside the first list that runs more than ``head_bytes`` past the point where
    every list named in ``needed`` has been found (lists before that are read whole): a result
    file's offsets come first and are small, its models' lists are the bulk. Returns the lists
    read whole and whether the walk reached the object's end (then they are all of them, as
    :func:`index_arrays` gives).

    :param needed: the lists always read whole, each as the tuple of its key's spellings.
    :param head_bytes: bytes read past those lists before the walk may stop.
    """
    cursor = _Cursor(fh, chunk_size, max_element_chars)
    limit: list[int] = []

    def read_list(key: str, cursor: _Cursor) -> ArrayInfo | None:
        offset, length = cursor.offset, 0
        for batch in cursor.batches(_count, _identity):
            length += len(batch)
            if limit and cursor.offset > limit[0]:
                return None
        info = ArrayInfo(offset, length, cursor.list_end)
        found.add(key)
        if not limit and all(found.intersection(keys) for keys in needed):
            limit.append(cursor.offset + head_bytes)
        return info

    found: set[str] = set()
    return _walk(cursor, read_list)


def walk_arrays(
    fh: IO[bytes],
    open_list: Callable[[str], tuple[BatchDecoder, Converter, Callable[[list[Any]], None]] | None],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> dict[str, ArrayInfo]:
    """Walk a JSON object once, giving the elements of some of its top-level lists to a sink as it goes.

    One pass over the file, with no index before it: ``open_list(key)`` returns the decoder, the
    converter (see :func:`iter_batches`) and the sink of a list's batches, or None to only count
    that list's elements. Returns every top-level list, as :func:`index_arrays` does.

    :param fh: a binary file positioned at the start of the JSON object.
    :param open_list: called with each top-level key whose value is a list, when its ``[`` is reached.
    """

    def read_list(key: str, cursor: _Cursor) -> ArrayInfo:
        reader = open_list(key)
        if reader is None:
            return _count_list(key, cursor)
        decode, convert, sink = reader
        offset, length = cursor.offset, 0
        for batch in cursor.batches(decode, convert):
            length += len(batch)
            sink(batch)
        return ArrayInfo(offset, length, cursor.list_end)

    return _walk(_Cursor(fh, chunk_size, max_element_chars), read_list)[0]


def tail_closes_a_list(fh: IO[bytes], start: int, tail_bytes: int = DEFAULT_TAIL_CHECK_BYTES) -> bool:
    """Whether a JSON object's last bytes close a top-level list and the object, with nothing after.

    Reads the last ``tail_bytes`` of the file only (never before ``start``): the end must be
    ``]`` and ``}`` (blanks allowed), and the elements of the list that end there, back to the
    window's start, must be valid JSON values (msgspec proves it). False when it cannot tell
    (the list starts within the window, strings hold brackets, the object ends with another kind of
    value): the caller then reads the whole file. A file cut short ends anywhere else, so this
    tells it from a whole one without reading it; only a cut right after an element that itself
    ends with ``]}`` and whose inner list is longer than the window could pass.

    :param fh: a seekable binary file.
    :param start: where the caller's own reading stopped; the window starts no earlier.
    """
    size = fh.seek(0, 2)
    begin = max(start, size - tail_bytes)
    fh.seek(begin)
    data = fh.read(size - begin)
    end = len(data.rstrip(b" \t\r\n"))
    if end < 2 or data[end - 1] != 125:  # "}"
        return False
    close = len(data[: end - 1].rstrip(b" \t\r\n")) - 1
    if close < 0 or data[close] != 93:  # "]"
        return False
    depth, first = 0, -1
    for match in _STRUCTURE.finditer(data[:close][::-1]):
        char = match.group()[0]
        if char == 44:  # ","
            if depth == 0:
                first = close - match.start() - 1
            continue
        depth += _DEPTH[char]
        if depth > 0:  # an opening bracket without its closing one: not inside a long list
            return False
    if first < 0:
        return False
    try:
        _RAW_LIST.decode(b"[" + data[first + 1 : close + 1])
    except msgspec.DecodeError:
        return False
    return True


def _expect_end(cursor: _Cursor) -> None:
    """Refuse anything but blanks after the object: a second document or a cut-and-pasted tail is no result."""
    if cursor.peek() >= 0:
        raise JSONStreamError("unexpected bytes after the end of the JSON object", cursor.offset)


def iter_batches(
    fh: IO[bytes],
    info: ArrayInfo,
    decode: BatchDecoder | None = None,
    convert: Converter | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> Iterator[list[Any]]:
    """Yield the decoded elements of the list that :func:`index_arrays` found at ``info``, batch by batch.

    :param fh: a seekable binary file; this iterator owns its position.
    :param info: the list's place in the file.
    :param decode: decodes a batch, the JSON text of a list (a buffer); default ``msgspec.json.decode``.
    :param convert: turns an element decoded one at a time by the standard library (in
        Python's types) into what ``decode`` gives; default: as it is.
    :param chunk_size: bytes read at a time.
    :param max_element_chars: largest single element accepted before giving up.
    """
    fh.seek(info.offset)
    cursor = _Cursor(fh, chunk_size, max_element_chars, base=info.offset)
    yield from cursor.batches(decode or msgspec.json.decode, convert or _identity, info.end)

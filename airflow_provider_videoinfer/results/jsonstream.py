"""Stream the top-level arrays of a JSON object element by element, without loading the file.

A result file is one JSON object of parallel lists that can reach gigabytes. :func:`index_arrays`
walks the object once and notes, for each key whose value is a list, the byte offset of its ``[``
and its length; :func:`iter_array` then decodes one list's elements from that offset with
:meth:`json.JSONDecoder.raw_decode` over a bounded sliding window, so that several lists can be
read in lockstep through one file handle each. Only the standard library is used (Airflow does
not ship ijson).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

DEFAULT_CHUNK_SIZE = 1 << 20
# One list element (one frame's result) larger than this is taken for a malformed file rather
# than buffered further; semantic-segmentation masks are the largest elements, a few MB at most.
DEFAULT_MAX_ELEMENT_CHARS = 256 << 20

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODE = json.JSONDecoder().raw_decode
_NUMBER_CHARS = frozenset("0123456789+-.eE")


class JSONStreamError(ValueError):
    """The stream is not the JSON this module expects; ``position`` is a byte offset, if known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message if position is None else f"{message} (near byte {position})")


@dataclass(frozen=True)
class ArrayInfo:
    """Where one top-level list starts and how many elements it has.

    :param offset: byte offset of the list's opening ``[`` in the file.
    :param length: number of elements.
    """

    offset: int
    length: int


class _Window:
    """A bounded sliding window of decoded text over a binary file.

    :param fh: the file, positioned where the window starts.
    :param decode: turns bytes into text; ``final`` is set on the last call.
    :param base: byte offset of the window's first character; exact only for single-byte decoding.
    """

    def __init__(
        self,
        fh: IO[bytes],
        decode: Callable[[bytes, bool], str],
        chunk_size: int,
        max_element_chars: int,
        base: int = 0,
    ) -> None:
        self.fh = fh
        self.decode = decode
        self.chunk_size = chunk_size
        self.max_element_chars = max_element_chars
        self.buf = ""
        self.pos = 0
        self.start = 0
        self.base = base
        self.eof = False

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def grow(self, size: int | None = None) -> bool:
        """Drop the consumed text and read more; return False at end of file."""
        if self.eof:
            return False
        pending = len(self.buf) - self.pos
        if pending > self.max_element_chars:
            raise JSONStreamError(
                f"a value is larger than {self.max_element_chars} characters or never ends", self.offset
            )
        data = self.fh.read(size or self.chunk_size)
        self.eof = not data
        self.base += self.pos
        self.buf = self.buf[self.pos :] + self.decode(data, self.eof)
        self.pos = 0
        return not self.eof

    def peek(self) -> str:
        """Skip whitespace and return the next character without consuming it; ``""`` at the end."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.grow():
                return ""

    def expect(self, chars: str, what: str) -> str:
        """Consume the next non-blank character, which must be one of ``chars``."""
        char = self.peek()
        if not char or char not in chars:
            found = repr(char) if char else "the end of the file"
            raise JSONStreamError(f"expected {what}, found {found}", self.offset)
        self.pos += 1
        return char

    def value(self) -> Any:
        """Decode the next value; its source text is ``buf[start:pos]`` until the next read."""
        self.peek()
        while True:
            try:
                value, end = _DECODE(self.buf, self.pos)
            except json.JSONDecodeError as err:
                # Most often the value runs past the window: read on, doubling, and retry.
                if self.grow(max(self.chunk_size, len(self.buf) - self.pos)):
                    continue
                raise JSONStreamError(f"invalid JSON: {err.msg}", self.base + err.pos) from None
            # A number cut by the window's edge decodes as a shorter number ("1.5e" as 1.5):
            # read on until a character that cannot continue it follows.
            if (
                not isinstance(value, (str, dict, list))
                and (end == len(self.buf) or self.buf[end] in _NUMBER_CHARS)
                and self.grow()
            ):
                continue
            self.start, self.pos = self.pos, end
            return value


def _elements(window: _Window) -> Iterator[Any]:
    """Yield the elements of the list whose ``[`` is the window's next character."""
    window.expect("[", "'['")
    if window.peek() == "]":
        window.pos += 1
        return
    while True:
        yield window.value()
        if window.expect(",]", "',' or ']' after a list element") == "]":
            return


def _latin1(data: bytes, final: bool) -> str:
    return data.decode("latin-1")


def index_arrays(
    fh: IO[bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> dict[str, ArrayInfo]:
    """Walk a JSON object once and locate each of its top-level lists.

    Values that are not lists are skipped. The walk decodes as Latin-1, where one character is
    one byte, so that window positions are byte offsets: the structure of UTF-8 JSON is ASCII,
    and keys are re-decoded as UTF-8.

    :param fh: a binary file positioned at the start of the JSON object.
    :param chunk_size: bytes read at a time.
    :param max_element_chars: largest single value accepted before giving up.
    """
    window = _Window(fh, _latin1, chunk_size, max_element_chars)
    window.peek()
    if window.buf.startswith("\xef\xbb\xbf", window.pos):  # UTF-8 byte order mark
        window.pos += 3
    arrays: dict[str, ArrayInfo] = {}
    window.expect("{", "a JSON object '{'")
    if window.peek() == "}":
        return arrays
    while True:
        if window.peek() != '"':
            window.expect('"', "a key")
        window.value()
        raw_key = window.buf[window.start : window.pos]
        key = json.loads(raw_key.encode("latin-1").decode("utf-8"))
        window.expect(":", "':' after a key")
        if window.peek() == "[":
            offset = window.offset
            arrays[key] = ArrayInfo(offset, sum(1 for _ in _elements(window)))
        else:
            window.value()
            arrays.pop(key, None)
        if window.expect(",}", "',' or '}' after a value") == "}":
            return arrays


def iter_array(
    fh: IO[bytes],
    offset: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_element_chars: int = DEFAULT_MAX_ELEMENT_CHARS,
) -> Iterator[Any]:
    """Yield the decoded elements of the list whose ``[`` is at byte ``offset`` of ``fh``.

    :param fh: a seekable binary file; this iterator owns its position.
    :param offset: as found by :func:`index_arrays`.
    :param chunk_size: bytes read at a time.
    :param max_element_chars: largest single element accepted before giving up.
    """
    fh.seek(offset)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    yield from _elements(_Window(fh, utf8.decode, chunk_size, max_element_chars, base=offset))

"""A video's facts (duration, frame rate, frame count, size, codec, container), read from its container.

The facts decide what a job costs before it is paid for (:mod:`videoinfer_contract.estimate`), so
they are read without decoding and without reading the video: only the container's headers, through
ranged reads of a :class:`ByteSource`, in a bounded number of requests and bytes
(:data:`MAX_REQUESTS`, :data:`MAX_BYTES`), wherever the headers sit (an MP4's ``moov`` box after
a 1 GiB ``mdat`` costs two reads). Containers: MP4/MOV (ISO base media), Matroska/WebM and AVI.

Nothing here guesses: a fact the headers do not hold (an unknown codec, a damaged header, a
Matroska file without a frame duration) is ``None``, and :attr:`VideoFacts.problem` says why.

The readers of this module parse bytes only; the I/O is a ``fetch(offset, length)`` callable
given to :class:`ByteSource` (:func:`file_source` for a local file, :func:`http_source` for an
http(s) URL; the provider adds one for object storage), which counts requests and bytes.
"""

from __future__ import annotations

import os
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

__all__ = [
    "BLOCK_SIZE",
    "MAX_BYTES",
    "MAX_REQUESTS",
    "ByteSource",
    "FactsUnreadable",
    "VideoFacts",
    "file_source",
    "http_source",
    "local_facts",
    "read_facts",
]

#: Bytes per read: one read of a video's start usually holds every header but an MP4's ``moov`` at the end.
BLOCK_SIZE = 64 << 10
#: The most reads and bytes one video's facts may cost; past either, the facts read so far are kept and
#: the rest is unknown.
MAX_REQUESTS = 16
MAX_BYTES = 4 << 20
#: An MP4's ``stts`` table (the frames' durations) is read when at most this big; a longer one (a
#: long variable-frame-rate video) leaves the frame rate to the track's duration.
MAX_STTS_BYTES = 1 << 20

Fetch = Callable[[int, int], bytes]


class FactsUnreadable(Exception):
    """The container's headers cannot be read (damaged, truncated, or past the read budget)."""


class ByteSource:
    """Ranged reads of one file, cached by block, counted, and bounded.

    :param fetch: ``fetch(offset, length)`` returns up to ``length`` bytes from ``offset`` (fewer at
        the end of the file); one call is one request.
    :param size: the file's size in bytes, when known.
    :param name: the file, for messages.
    :param block_size: bytes fetched at least per request.
    :param max_requests: the most requests allowed.
    :param max_bytes: the most bytes fetched in all.
    """

    def __init__(
        self,
        fetch: Fetch,
        size: int | None = None,
        name: str = "video",
        *,
        block_size: int = BLOCK_SIZE,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._fetch = fetch
        self.size = size
        self.name = name
        self.block_size = block_size
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes_read = 0
        self._chunks: list[tuple[int, bytes]] = []

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the file), from the cache or one request.

        :raises FactsUnreadable: the read would pass :attr:`max_requests` or :attr:`max_bytes`.
        """
        if length <= 0 or (self.size is not None and offset >= self.size):
            return b""
        for start, data in self._chunks:
            end = start + len(data)
            if start <= offset and (offset + length <= end or end == self.size):
                return data[offset - start : offset - start + length]
        want = max(length, self.block_size)
        if self.size is not None:
            want = min(want, self.size - offset)
        if self.requests + 1 > self.max_requests or self.bytes_read + want > self.max_bytes:
            raise FactsUnreadable(
                f"reading {self.name}'s headers needs more than {self.max_requests} requests or {self.max_bytes} bytes"
            )
        self.requests += 1
        data = self._fetch(offset, want)
        self.bytes_read += len(data)
        if len(data) < want and self.size is None:
            self.size = offset + len(data)
        self._chunks.append((offset, data))
        return data[:length]


def file_source(handle: Any, name: str, **limits: Any) -> ByteSource:
    """A :class:`ByteSource` of an open binary file (each read is one ``seek`` and ``read``).

    :param handle: a file object opened for reading bytes, seekable.
    :param name: the file, for messages.
    :param limits: ``block_size``, ``max_requests``, ``max_bytes`` of :class:`ByteSource`.
    """
    size = handle.seek(0, os.SEEK_END)

    def fetch(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return bytes(handle.read(length))

    return ByteSource(fetch, size, name, **limits)


def local_facts(path: str | os.PathLike[str], **limits: Any) -> VideoFacts:
    """The facts of a local video file (:func:`read_facts`); unknown, saying why, when it cannot be opened.

    :param path: the file.
    :param limits: ``block_size``, ``max_requests``, ``max_bytes`` of :class:`ByteSource`.
    """
    try:
        with open(path, "rb") as handle:
            return read_facts(file_source(handle, os.fspath(path), **limits))
    except OSError as err:
        return VideoFacts(problem=f"{os.fspath(path)} cannot be read ({type(err).__name__}: {err.strerror})")


def http_source(url: str, name: str, timeout: float = 10.0, **limits: Any) -> ByteSource:
    """A :class:`ByteSource` of an http(s) URL: each read is one GET with a ``Range`` header.

    A server that ignores ``Range`` (answers 200 with the whole body) is read no further than asked.

    :param url: the video's URL; a credential when signed, so it appears in no message.
    :param name: what to call it in messages (a redacted URL).
    :param timeout: seconds per request.
    :param limits: ``block_size``, ``max_requests``, ``max_bytes`` of :class:`ByteSource`.
    """
    source: ByteSource

    def fetch(offset: int, length: int) -> bytes:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 -- http(s) only
                if answer.status == 206:
                    total = answer.headers.get("Content-Range", "").rpartition("/")[2]
                    if total.isdigit():
                        source.size = int(total)
                    return bytes(answer.read(length))
                if offset:  # 200: the whole body from byte 0; never read it all
                    raise FactsUnreadable(f"{name} answered without honouring a range request")
                return bytes(answer.read(length))
        except urllib.error.HTTPError as err:
            if err.code == 416:  # the range starts past the end
                return b""
            raise FactsUnreadable(f"{name} answered HTTP {err.code}") from None
        except (urllib.error.URLError, OSError) as err:
            raise FactsUnreadable(f"{name} could not be read ({type(err).__name__})") from None

    source = ByteSource(fetch, None, name, **limits)
    return source


@dataclass(frozen=True)
class VideoFacts:
    """What a video's container says about its video track; ``None`` for what it does not say.

    :param container: ``"MP4"``, ``"Matroska"``, ``"WebM"`` or ``"AVI"``; None when not recognised.
    :param codec: the video codec as ``ffprobe`` names it (``"h264"``, ``"hevc"``, ``"vp9"``,
        ``"mpeg4"``...); None when unknown (:attr:`codec_tag` then holds the container's name for it).
    :param codec_tag: the container's own name for the codec (``"avc1"``, ``"V_VP9"``, ``"FMP4"``).
    :param width: the frame width in pixels.
    :param height: the frame height in pixels.
    :param frame_rate: the average frame rate, exact: frames ÷ duration (``30000/1001`` for 29.97).
    :param frame_count: the number of frames of the video track.
    :param duration: the video track's duration in seconds (the file's, for Matroska).
    :param constant_frame_rate: whether every frame lasts as long; None when the container does not say.
    :param has_video: False when the file has no video track (then every other fact but the container is None).
    :param problem: why some facts are unknown, or None.
    :param requests: reads it took.
    :param bytes_read: bytes those reads fetched.
    """

    container: str | None = None
    codec: str | None = None
    codec_tag: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: Fraction | None = None
    frame_count: int | None = None
    duration: float | None = None
    constant_frame_rate: bool | None = None
    has_video: bool | None = None
    problem: str | None = None
    requests: int = 0
    bytes_read: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The facts as JSON values (XCom, logs): the frame rate as ``"30000/1001"`` and as a float."""
        return {
            "container": self.container,
            "codec": self.codec,
            "codec_tag": self.codec_tag,
            "width": self.width,
            "height": self.height,
            "frame_rate": None if self.frame_rate is None else _fraction_text(self.frame_rate),
            "fps": None if self.frame_rate is None else round(float(self.frame_rate), 6),
            "frame_count": self.frame_count,
            "duration": self.duration,
            "constant_frame_rate": self.constant_frame_rate,
            "has_video": self.has_video,
            "problem": self.problem,
        }

    def describe(self) -> str:
        """One line for a log: ``MP4 h264 1920x1080, 29.97 fps (30000/1001), 900 frames, 30.03 s``."""
        if self.container is None:
            return f"facts unknown ({self.problem})" if self.problem else "facts unknown"
        parts = [self.container, self.codec or self.codec_tag or "unknown codec"]
        if self.has_video is False:
            return f"{parts[0]}, no video track"
        size = f"{self.width}x{self.height}" if self.width and self.height else "unknown size"
        rate = "unknown frame rate"
        if self.frame_rate is not None:
            rate = f"{float(self.frame_rate):.6g} fps"
            if self.frame_rate.denominator != 1:
                rate += f" ({_fraction_text(self.frame_rate)})"
            if self.constant_frame_rate is False:
                rate += " on average (variable frame rate)"
        frames = "unknown frame count" if self.frame_count is None else f"{self.frame_count} frames"
        seconds = "unknown duration" if self.duration is None else f"{self.duration:.6g} s"
        line = f"{' '.join(parts)} {size}, {rate}, {frames}, {seconds}"
        return f"{line} ({self.problem})" if self.problem else line


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def read_facts(source: ByteSource) -> VideoFacts:
    """Read a video's facts from its container's headers; never raises for a bad file.

    :param source: the video's bytes; see :class:`ByteSource`.
    :return: the facts, ``None`` where unknown, with the requests and bytes it took.
    """
    facts = VideoFacts()
    try:
        head = source.read(0, 16)
        if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
            facts = replace(facts, container="AVI")
            facts = _read_avi(source, facts)
        elif head[:4] == b"\x1a\x45\xdf\xa3":
            facts = replace(facts, container="Matroska")
            facts = _read_matroska(source, facts)
        elif head[4:8] in _MP4_TOP_LEVEL:
            facts = replace(facts, container="MP4")
            facts = _read_mp4(source, facts)
        else:
            facts = replace(facts, problem="its first bytes match no video container (MP4, Matroska/WebM, AVI)")
    except (FactsUnreadable, struct.error, ValueError, IndexError, OverflowError, ZeroDivisionError) as err:
        facts = replace(facts, problem=_damaged(err))
    return replace(facts, requests=source.requests, bytes_read=source.bytes_read)


def _damaged(err: Exception) -> str:
    if isinstance(err, FactsUnreadable):
        return str(err)
    return f"its headers are damaged or truncated ({type(err).__name__})"


def _rate_facts(facts: VideoFacts, frames: int | None, seconds: Fraction | None) -> VideoFacts:
    """Frame count, duration and the average frame rate frames ÷ seconds."""
    rate = Fraction(frames) / seconds if frames and seconds else None
    return replace(facts, frame_count=frames, duration=None if seconds is None else float(seconds), frame_rate=rate)


# --- MP4 / QuickTime -----------------------------------------------------------------------------

_MP4_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"sidx"}
_MP4_CODECS = {
    "avc1": "h264",
    "avc3": "h264",
    "hvc1": "hevc",
    "hev1": "hevc",
    "mp4v": "mpeg4",
    "av01": "av1",
    "vp09": "vp9",
    "vp08": "vp8",
    "jpeg": "mjpeg",
    "mjpa": "mjpeg",
    "apch": "prores",
    "apcn": "prores",
    "apcs": "prores",
    "apco": "prores",
    "ap4h": "prores",
    "s263": "h263",
    "h263": "h263",
    "dvh1": "hevc",
    "dvhe": "hevc",
}
_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(source: ByteSource, start: int, end: int | None) -> Any:
    """(type, payload offset, payload size) of each box between ``start`` and ``end`` (None: the file's end)."""
    offset = start
    while end is None or offset + 8 <= end:
        header = source.read(offset, 16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        skip = 8
        if size == 1:
            size = struct.unpack(">Q", header[8:16])[0]
            skip = 16
        elif size == 0:  # to the end of the file (or of its parent)
            limit = end if end is not None else source.size
            if limit is None:
                raise FactsUnreadable(f"{source.name}: a box runs to the end of a file of unknown size")
            size = limit - offset
        if size < skip:
            raise ValueError("box smaller than its header")
        yield kind, offset + skip, size - skip
        offset += size


def _read_mp4(source: ByteSource, facts: VideoFacts) -> VideoFacts:
    for kind, payload, size in _boxes(source, 0, None):
        if kind == b"moov":
            return _read_moov(source, payload, size, facts)
    return replace(facts, problem="it has no moov box (a truncated upload, or a fragment without its header)")


def _read_moov(source: ByteSource, start: int, size: int, facts: VideoFacts) -> VideoFacts:
    for kind, payload, length in _boxes(source, start, start + size):
        if kind == b"cmov":
            return replace(facts, problem="its moov box is compressed (cmov), which this reader does not inflate")
        if kind != b"trak":
            continue
        track = _read_trak(source, payload, length)
        if track is not None:
            return _track_facts(track, replace(facts, has_video=True))
    return replace(facts, has_video=False, problem="it has no video track")


@dataclass
class _Mp4Track:
    timescale: int = 0
    duration: int = 0
    tag: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    stts: list[tuple[int, int]] | None = None
    fragmented: bool = False


def _read_trak(source: ByteSource, start: int, size: int) -> _Mp4Track | None:
    """The track's facts when it is a video track, else None."""
    track = _Mp4Track()
    for kind, payload, length in _boxes(source, start, start + size):
        if kind != b"mdia":
            continue
        for sub, sub_payload, sub_length in _boxes(source, payload, payload + length):
            if sub == b"hdlr":
                if source.read(sub_payload + 8, 4) != b"vide":
                    return None
            elif sub == b"mdhd":
                body = source.read(sub_payload, 36)
                if body[0] == 1:
                    track.timescale, track.duration = struct.unpack(">IQ", body[20:32])
                else:
                    track.timescale, track.duration = struct.unpack(">II", body[12:20])
            elif sub == b"minf":
                _read_stbl(source, sub_payload, sub_length, track)
        return track if track.tag is not None or track.timescale else None
    return None


def _read_stbl(source: ByteSource, start: int, size: int, track: _Mp4Track) -> None:
    """Walk minf/stbl for the sample entry, the durations (stts) and the sample count (stsz/stz2)."""
    for kind, payload, length in _boxes(source, start, start + size):
        if kind == b"stbl":
            for sub, sub_payload, sub_length in _boxes(source, payload, payload + length):
                if sub == b"stsd":
                    entry = source.read(sub_payload + 8, 8 + 78)
                    track.tag = entry[4:8].decode("latin-1")
                    track.width, track.height = struct.unpack(">HH", entry[8 + 24 : 8 + 28])
                elif sub == b"stts":
                    count = struct.unpack(">I", source.read(sub_payload + 4, 4))[0]
                    if 8 * count <= min(MAX_STTS_BYTES, sub_length - 8):
                        table = source.read(sub_payload + 8, 8 * count)
                        track.stts = [struct.unpack_from(">II", table, 8 * i) for i in range(count)]
                elif sub in (b"stsz", b"stz2"):
                    track.frames = struct.unpack(">I", source.read(sub_payload + 8, 4))[0]
                if track.tag is not None and track.frames is not None and sub in (b"stsz", b"stz2"):
                    return


def _track_facts(track: _Mp4Track, facts: VideoFacts) -> VideoFacts:
    tag = track.tag
    facts = replace(
        facts,
        codec_tag=tag,
        codec=_MP4_CODECS.get(tag or ""),
        width=track.width or None,
        height=track.height or None,
    )
    frames = track.frames or None
    if track.stts is not None and track.timescale:
        counted = sum(count for count, _ in track.stts)
        ticks = sum(count * delta for count, delta in track.stts)
        deltas = {delta for count, delta in track.stts if count}
        frames = frames or counted or None
        seconds = Fraction(ticks, track.timescale) if ticks else None
        constant = len(deltas) == 1 if deltas else None
        facts = replace(_rate_facts(facts, frames, seconds), constant_frame_rate=constant)
    elif track.timescale and track.duration:
        facts = _rate_facts(facts, frames, Fraction(track.duration, track.timescale))
    else:
        facts = replace(facts, frame_count=frames)
    if not frames:
        facts = replace(facts, problem="its sample tables are empty (a fragmented MP4): frame count unknown")
    elif facts.codec is None:
        facts = replace(facts, problem=f"unknown codec {tag!r}")
    return facts


# --- Matroska / WebM -----------------------------------------------------------------------------

_SEGMENT, _SEEK_HEAD, _INFO, _TRACKS, _CLUSTER, _CUES = (
    0x18538067,
    0x114D9B74,
    0x1549A966,
    0x1654AE6B,
    0x1F43B675,
    0x1C53BB6B,
)
_SEEK, _SEEK_ID, _SEEK_POSITION = 0x4DBB, 0x53AB, 0x53AC
_TIMESTAMP_SCALE, _DURATION = 0x2AD7B1, 0x4489
_TRACK_ENTRY, _TRACK_TYPE, _CODEC_ID, _DEFAULT_DURATION, _VIDEO = 0xAE, 0x83, 0x86, 0x23E383, 0xE0
_PIXEL_WIDTH, _PIXEL_HEIGHT, _DOC_TYPE, _EBML = 0xB0, 0xBA, 0x4282, 0x1A45DFA3
_MATROSKA_CODECS = {
    "V_MPEG4/ISO/AVC": "h264",
    "V_MPEGH/ISO/HEVC": "hevc",
    "V_VP8": "vp8",
    "V_VP9": "vp9",
    "V_AV1": "av1",
    "V_MPEG4/ISO/ASP": "mpeg4",
    "V_MPEG4/ISO/SP": "mpeg4",
    "V_MPEG2": "mpeg2video",
    "V_MJPEG": "mjpeg",
    "V_THEORA": "theora",
    "V_PRORES": "prores",
    "V_FFV1": "ffv1",
}
_UNKNOWN_SIZE = -1


def _vint(data: bytes, at: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``at``: (value, its length). An all-ones size is -1 (unknown)."""
    first = data[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("invalid EBML integer")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    if len(data) < at + length:
        raise ValueError("truncated EBML integer")
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return _UNKNOWN_SIZE, length
    return value, length


def _elements(source: ByteSource, start: int, end: int | None) -> Any:
    """(id, payload offset, payload size or -1) of each EBML element between ``start`` and ``end``."""
    offset = start
    while end is None or offset < end:
        header = source.read(offset, 12)
        if len(header) < 2:
            return
        element, id_length = _vint(header, 0, keep_marker=True)
        size, size_length = _vint(header, id_length, keep_marker=False)
        payload = offset + id_length + size_length
        yield element, payload, size
        if size == _UNKNOWN_SIZE:
            return
        offset = payload + size


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _float(data: bytes) -> float:
    return struct.unpack(">f" if len(data) == 4 else ">d", data)[0] if data else 0.0


def _read_matroska(source: ByteSource, facts: VideoFacts) -> VideoFacts:
    segment = None
    for element, payload, size in _elements(source, 0, None):
        if element == _EBML:
            for sub, sub_payload, sub_size in _elements(source, payload, payload + size):
                if sub == _DOC_TYPE and source.read(sub_payload, sub_size) == b"webm":
                    facts = replace(facts, container="WebM")
        elif element == _SEGMENT:
            segment = (payload, None if size == _UNKNOWN_SIZE else payload + size)
            break
    if segment is None:
        return replace(facts, problem="it has no Matroska segment")
    found: dict[int, tuple[int, int]] = {}
    seeks: dict[int, int] = {}
    for element, payload, size in _elements(source, *segment):
        if element in (_INFO, _TRACKS):
            found[element] = (payload, size)
        elif element == _SEEK_HEAD:
            seeks.update(_seek_head(source, payload, size))
        if element in (_CLUSTER, _CUES) or len(found) == 2 or size == _UNKNOWN_SIZE:
            break
    for element, position in seeks.items():
        if element in (_INFO, _TRACKS) and element not in found:
            header = next(_elements(source, segment[0] + position, None), None)
            if header is not None and header[0] == element:
                found[element] = (header[1], header[2])
    if _TRACKS not in found:
        return replace(facts, problem="its Tracks element was not found")
    scale, duration = 1_000_000, None
    if _INFO in found:
        payload, size = found[_INFO]
        for element, sub_payload, sub_size in _elements(source, payload, payload + size):
            if element == _TIMESTAMP_SCALE:
                scale = _uint(source.read(sub_payload, sub_size))
            elif element == _DURATION:
                duration = _float(source.read(sub_payload, sub_size))
    track = _matroska_video_track(source, *found[_TRACKS])
    if track is None:
        return replace(facts, has_video=False, problem="it has no video track")
    codec_id, frame_ns, width, height, single = track
    facts = replace(
        facts,
        has_video=True,
        codec_tag=codec_id,
        codec=_MATROSKA_CODECS.get(codec_id),
        width=width,
        height=height,
    )
    seconds = Fraction(duration).limit_denominator(10**9) * scale / 10**9 if duration else None
    facts = replace(facts, duration=None if seconds is None else float(seconds))
    if frame_ns:
        # A frame duration in whole nanoseconds (33366666 for 29.97, 1001/30000 s): the simplest rate
        # whose frame duration rounds to it is the one the file was written at.
        rate = Fraction(10**9, frame_ns)
        near = rate.limit_denominator(1001)
        facts = replace(facts, frame_rate=near if abs(10**9 / near - frame_ns) < 1 else rate)
        if seconds is not None and single:
            # Matroska stores no frame count: with the one track, the segment lasts its frames' durations.
            assert facts.frame_rate is not None
            facts = replace(facts, frame_count=round(seconds * facts.frame_rate))
    problems = []
    if facts.frame_rate is None:
        problems.append("no frame duration in its track header: frame rate unknown")
    if facts.frame_count is None:
        problems.append("Matroska stores no frame count")
    if facts.codec is None:
        problems.append(f"unknown codec {codec_id!r}")
    return replace(facts, problem="; ".join(problems) or None)


def _seek_head(source: ByteSource, start: int, size: int) -> dict[int, int]:
    seeks = {}
    for element, payload, length in _elements(source, start, start + size):
        if element != _SEEK:
            continue
        target = position = None
        for sub, sub_payload, sub_size in _elements(source, payload, payload + length):
            if sub == _SEEK_ID:
                target = _uint(source.read(sub_payload, sub_size))
            elif sub == _SEEK_POSITION:
                position = _uint(source.read(sub_payload, sub_size))
        if target is not None and position is not None:
            seeks[target] = position
    return seeks


def _matroska_video_track(
    source: ByteSource, start: int, size: int
) -> tuple[str, int | None, int | None, int | None, bool] | None:
    """(codec id, frame duration in ns, width, height, whether it is the only track) of the first video track."""
    tracks = 0
    video = None
    for element, payload, length in _elements(source, start, start + size):
        if element != _TRACK_ENTRY:
            continue
        tracks += 1
        kind, codec_id, frame_ns, width, height = None, "", None, None, None
        for sub, sub_payload, sub_size in _elements(source, payload, payload + length):
            if sub == _TRACK_TYPE:
                kind = _uint(source.read(sub_payload, sub_size))
            elif sub == _CODEC_ID:
                codec_id = source.read(sub_payload, sub_size).decode("ascii", "replace").rstrip("\0")
            elif sub == _DEFAULT_DURATION:
                frame_ns = _uint(source.read(sub_payload, sub_size)) or None
            elif sub == _VIDEO:
                for item, item_payload, item_size in _elements(source, sub_payload, sub_payload + sub_size):
                    if item == _PIXEL_WIDTH:
                        width = _uint(source.read(item_payload, item_size)) or None
                    elif item == _PIXEL_HEIGHT:
                        height = _uint(source.read(item_payload, item_size)) or None
        if kind == 1 and video is None:
            video = (codec_id, frame_ns, width, height)
    if video is None:
        return None
    return (*video, tracks == 1)


# --- AVI -----------------------------------------------------------------------------------------

_AVI_CODECS = {
    "FMP4": "mpeg4",
    "DIVX": "mpeg4",
    "DX50": "mpeg4",
    "XVID": "mpeg4",
    "MP4V": "mpeg4",
    "H264": "h264",
    "X264": "h264",
    "AVC1": "h264",
    "HEVC": "hevc",
    "H265": "hevc",
    "MJPG": "mjpeg",
    "VP80": "vp8",
    "VP90": "vp9",
    "AV01": "av1",
    "MPG2": "mpeg2video",
}


def _chunks(source: ByteSource, start: int, end: int) -> Any:
    """(fourcc, payload offset, payload size) of each RIFF chunk (a ``LIST``'s fourcc is its list type)."""
    offset = start
    while offset + 8 <= end:
        header = source.read(offset, 12)
        if len(header) < 8:
            return
        kind, size = header[:4], struct.unpack("<I", header[4:8])[0]
        if kind == b"LIST":
            yield header[8:12], offset + 12, size - 4
        else:
            yield kind, offset + 8, size
        offset += 8 + size + (size & 1)


def _read_avi(source: ByteSource, facts: VideoFacts) -> VideoFacts:
    riff_size = struct.unpack("<I", source.read(4, 4))[0]
    end = 8 + riff_size
    stream: dict[str, Any] | None = None
    total_frames = None
    for kind, payload, size in _chunks(source, 12, end):
        if kind == b"movi":
            break
        if kind != b"hdrl":
            continue
        for sub, sub_payload, sub_size in _chunks(source, payload, payload + size):
            if sub == b"strl" and stream is None:
                stream = _avi_stream(source, sub_payload, sub_size)
            elif sub == b"odml":
                for item, item_payload, _ in _chunks(source, sub_payload, sub_payload + sub_size):
                    if item == b"dmlh":
                        total_frames = struct.unpack("<I", source.read(item_payload, 4))[0]
        break
    if stream is None:
        return replace(facts, has_video=False, problem="it has no video stream")
    tag = stream["tag"]
    facts = replace(
        facts,
        has_video=True,
        codec_tag=tag,
        codec=_AVI_CODECS.get(tag.upper()),
        width=stream["width"],
        height=stream["height"],
        constant_frame_rate=True,  # AVI has one frame duration per stream
    )
    frames = stream["length"] or total_frames or None
    if stream["rate"] and stream["scale"]:
        rate = Fraction(stream["rate"], stream["scale"])
        facts = replace(
            facts, frame_rate=rate, frame_count=frames, duration=None if frames is None else float(frames / rate)
        )
    return replace(facts, problem=None if facts.codec else f"unknown codec {tag!r}")


def _avi_stream(source: ByteSource, start: int, size: int) -> dict[str, Any] | None:
    header: dict[str, Any] | None = None
    for kind, payload, _length in _chunks(source, start, start + size):
        if kind == b"strh":
            body = source.read(payload, 36)
            if body[:4] != b"vids":
                return None
            scale, rate, _start, length_frames = struct.unpack("<IIII", body[20:36])
            header = {"handler": body[4:8], "scale": scale, "rate": rate, "length": length_frames}
        elif kind == b"strf" and header is not None:
            body = source.read(payload, 20)
            width, height = struct.unpack("<ii", body[4:12])
            compression = body[16:20]
            tag = compression if compression.strip(b"\0") else header["handler"]
            header.update(tag=tag.decode("latin-1").strip("\0 "), width=width or None, height=abs(height) or None)
    if header is None or "tag" not in header:
        return None
    return header

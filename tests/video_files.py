"""Real video files made at test time with Debian's ffmpeg, what ffprobe says of them, and a 1 GiB MP4.

Shared by tests/test_video_facts*.py and benchmarks/bench_video_facts.py.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Made:
    """How to make one test video: ``ffmpeg`` arguments after the inputs.

    :param name: the file name (its extension chooses the container).
    :param rate: the frame rate of ffmpeg's test pattern, as ffmpeg takes it (``30000/1001``).
    :param seconds: the duration.
    :param output: codec and container options.
    :param filters: a ``-vf`` filter chain (variable frame rate), or None.
    :param audio: add a sine audio track (an MP4 without ``-an``), or make audio only (``"only"``).
    """

    name: str
    rate: str = "24"
    seconds: float = 2.0
    output: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p")
    filters: str | None = None
    audio: bool | str = False


VIDEOS = (
    Made("moov_first_24.mp4", "24", output=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart")),
    Made("moov_last_2997.mp4", "30000/1001"),
    Made("moov_last_23976_audio.mp4", "24000/1001", audio=True),
    Made("mpeg4_25.mp4", "25", output=("-c:v", "mpeg4")),
    Made("matroska_2997.mkv", "30000/1001"),
    Made("matroska_50.mkv", "50", seconds=1.0),
    Made("webm_25.webm", "25", output=("-c:v", "libvpx", "-b:v", "200k")),
    Made("webm_vp9_30.webm", "30", seconds=1.0, output=("-c:v", "libvpx-vp9", "-b:v", "200k", "-deadline", "realtime")),
    Made("avi_15.avi", "15", output=("-c:v", "mpeg4")),
    Made("avi_2997_mjpeg.avi", "30000/1001", output=("-c:v", "mjpeg")),
    # 30 fps for the first second, then a frame every 1/15 s: 30 + 15 frames over 2 s.
    Made(
        "vfr.mp4",
        "30",
        seconds=3.0,
        filters="select='lt(n,30)+not(mod(n,2))',setpts='if(lt(N,30),N/30/TB,(30+(N-30)*2)/30/TB)'",
        output=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-fps_mode", "vfr"),
    ),
)
AUDIO_ONLY = Made("audio_only.mp4", audio="only")


def have_ffmpeg() -> bool:
    """Whether ``ffmpeg`` and ``ffprobe`` are installed (``make test`` installs Debian's ``ffmpeg``)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def make(spec: Made, folder: Path, size: str = "160x120") -> Path:
    """Write ``spec``'s video into ``folder`` with ffmpeg; return its path."""
    path = folder / spec.name
    command = ["ffmpeg", "-v", "error", "-y"]
    if spec.audio != "only":
        command += ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={spec.rate}"]
    if spec.audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440"]
    command += ["-t", str(spec.seconds)]
    if spec.filters:
        command += ["-vf", spec.filters]
    if spec.audio != "only":
        command += list(spec.output)
    command.append(str(path))
    subprocess.run(command, check=True, capture_output=True)
    return path


def ffprobe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ffprobe says of a file's first video stream (frames counted by decoding for Matroska/WebM,
    which store no count) and of its format: ``{"stream": {...} or None, "format": {...}}``."""
    answer = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", os.fspath(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    probe = json.loads(answer.stdout)
    videos = [stream for stream in probe.get("streams", []) if stream.get("codec_type") == "video"]
    return {"stream": videos[0] if videos else None, "format": probe["format"]}


def ffprobe_facts(path: str | os.PathLike[str]) -> dict[str, Any]:
    """ffprobe's answers to the questions the facts answer, in the facts' terms."""
    probe = ffprobe(path)
    stream, fmt = probe["stream"], probe["format"]
    if stream is None:
        return {"has_video": False}
    frames = stream.get("nb_frames") or stream.get("nb_read_frames")
    duration = stream.get("duration") or fmt.get("duration")
    return {
        "has_video": True,
        "codec": stream["codec_name"],
        "width": stream["width"],
        "height": stream["height"],
        "frame_rate": Fraction(stream["avg_frame_rate"]),
        "frame_count": int(frames),
        "duration": float(duration),
        "format_name": fmt["format_name"],
    }


def top_level_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole box) of each top-level box of a small MP4 held in memory."""
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append((kind, data[offset : offset + size]))
        offset += size
    return boxes


def padded_mp4_parts(small: Path, total: int) -> tuple[bytes, int, bytes]:
    """A small MP4 with ``moov`` at the end grown to ``total`` bytes by a larger ``mdat``: (what comes
    before the padding, the padding's length in zero bytes, what comes after it: the ``moov`` box).

    The frames' offsets (``stco``) point into the original ``mdat`` payload, which stays where it was, so
    ffprobe reads the big file as it reads the small one.
    """
    boxes = top_level_boxes(small.read_bytes())
    kinds = [kind for kind, _ in boxes]
    assert kinds[-1] == b"moov" and b"mdat" in kinds, f"{small}: moov is not at the end ({kinds})"
    at = kinds.index(b"mdat")
    before = b"".join(box for _, box in boxes[:at])
    mdat, moov = boxes[at][1], boxes[-1][1]
    head = before + struct.pack(">I4s", total - len(before) - len(moov), b"mdat") + mdat[8:]
    return head, total - len(head) - len(moov), moov


def write_padded_mp4(small: Path, path: Path, total: int = GiB) -> Path:
    """Write the big MP4 of :func:`padded_mp4_parts` as a sparse file (its zeros take no disk)."""
    head, padding, moov = padded_mp4_parts(small, total)
    with open(path, "wb") as out:
        out.write(head)
        out.seek(padding, os.SEEK_CUR)
        out.write(moov)
    return path

"""Why the contract reads video facts itself: PyAV, hachoir and pymediainfo on the same files, in one run.

Each library reads each file through a counting file object: "reads" are the reads that do not follow
the previous one (what ranged requests would cost on object storage), "bytes" what they returned. The
files are those of the tests (tests/video_files.py, made with ffmpeg) and a 1 GiB MP4 whose ``moov``
follows its ``mdat`` (a sparse file). The libraries are not dependencies of the project: run this with
an interpreter that has them and the contract, e.g.::

    python -m venv /tmp/libs && /tmp/libs/bin/pip install av hachoir pymediainfo -e ./contract
    /tmp/libs/bin/python benchmarks/bench_video_facts_libraries.py

Usage: ``python benchmarks/bench_video_facts_libraries.py``
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from video_files import VIDEOS, GiB, ffprobe_facts, make, write_padded_mp4  # noqa: E402


class Counting(io.RawIOBase):
    """A file that counts the reads that do not follow the previous one, and the bytes read."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close()
        self.bytes = self.reads = self._pos = 0
        self._last: int | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._file.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer) or 0
        self.bytes += count
        if self._last != self._pos:
            self.reads += 1
        self._pos += count
        self._last = self._pos
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def with_pyav(handle: Counting) -> dict[str, Any]:
    import av

    with av.open(handle) as container:
        if not container.streams.video:
            return {}
        video = container.streams.video[0]
        seconds = float(video.duration * video.time_base) if video.duration else None
        context = video.codec_context
        return {
            "codec": context.name,
            "size": (context.width, context.height),
            "frame_rate": video.average_rate,
            "frame_count": video.frames or None,
            "duration": seconds,
        }


def with_hachoir(handle: Counting) -> dict[str, Any]:
    from hachoir.metadata import extractMetadata
    from hachoir.parser import guessParser
    from hachoir.stream import InputIOStream

    parser = guessParser(InputIOStream(io.BufferedReader(handle, 4096)))
    metadata = extractMetadata(parser) if parser else None
    found: dict[str, Any] = {}
    groups = list(metadata.iterGroups()) if metadata is not None and hasattr(metadata, "iterGroups") else []
    for group in [metadata, *groups] if metadata is not None else []:
        for item in group:
            if item.values:
                found.setdefault(item.key, item.values[0].value)
    duration = found.get("duration")
    return {
        "codec": found.get("compression"),
        "size": (found.get("width"), found.get("height")),
        "frame_rate": found.get("frame_rate"),
        "frame_count": found.get("nb_frames"),
        "duration": duration.total_seconds() if duration is not None else None,
    }


def with_mediainfo(handle: Counting) -> dict[str, Any]:
    from pymediainfo import MediaInfo

    tracks = [t for t in MediaInfo.parse(io.BufferedReader(handle, 65536)).tracks if t.track_type == "Video"]
    if not tracks:
        return {}
    video = tracks[0]
    return {
        "codec": video.format,
        "size": (video.width, video.height),
        "frame_rate": video.frame_rate,
        "frame_count": video.frame_count,
        "duration": float(video.duration) / 1000 if video.duration else None,
    }


def with_contract(handle: Counting) -> dict[str, Any]:
    from videoinfer_contract.facts import file_source, read_facts

    facts = read_facts(file_source(handle, "video"))
    return {
        "codec": facts.codec,
        "size": (facts.width, facts.height),
        "frame_rate": facts.frame_rate,
        "frame_count": facts.frame_count,
        "duration": facts.duration,
    }


READERS: dict[str, Callable[[Counting], dict[str, Any]]] = {
    "videoinfer_contract.facts": with_contract,
    "PyAV": with_pyav,
    "hachoir": with_hachoir,
    "pymediainfo": with_mediainfo,
}


def agrees(found: dict[str, Any], probe: dict[str, Any]) -> list[str]:
    """The facts a reader got wrong or missed, against ffprobe's."""
    from fractions import Fraction

    wrong = []
    if str(found.get("frame_count")) != str(probe["frame_count"]):
        wrong.append("frame_count")
    try:
        rate = Fraction(str(found.get("frame_rate")))
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate != probe["frame_rate"]:
        wrong.append("frame_rate")
    duration = found.get("duration")
    if duration is None or abs(float(duration) - probe["duration"]) > 1e-3:
        wrong.append("duration")
    if tuple(map(str, found.get("size", ()))) != (str(probe["width"]), str(probe["height"])):
        wrong.append("size")
    return wrong


def main() -> None:
    import videoinfer_contract.facts  # noqa: F401 -- imported before the clock starts, as the others are after one file

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        files = [make(spec, work) for spec in VIDEOS]
        (work / "big").mkdir()
        big = write_padded_mp4(make(VIDEOS[1], work / "big", size="320x240"), work / "big-1gib.mp4", GiB)
        files.insert(0, big)
        totals: dict[str, list[str]] = {name: [] for name in READERS}
        print(f"{'file':28} | {'reader':26} | reads | bytes   | ms    | wrong or missing (vs ffprobe)")
        for path in files:
            probe = ffprobe_facts(path)
            for name, read in READERS.items():
                handle = Counting(path)
                started = time.perf_counter()
                try:
                    found = read(handle)
                    wrong = agrees(found, probe)
                except Exception as err:  # a library that cannot read a file at all
                    wrong = [f"{type(err).__name__}"]
                seconds = time.perf_counter() - started
                totals[name] += [f"{path.name}:{fact}" for fact in wrong]
                shown = ", ".join(wrong) or "-"
                cells = [f"{path.name:28}", f"{name:26}", f"{handle.reads:5}", f"{handle.bytes:7}"]
                print(" | ".join([*cells, f"{seconds * 1000:5.1f}", shown]))
                handle.close()
        print()
        for name, wrong in totals.items():
            print(f"{name}: {len(wrong)} facts wrong or missing over {len(files)} files")


if __name__ == "__main__":
    main()

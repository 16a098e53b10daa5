"""The result file: per-frame results spooled to disk while a job runs, then one JSON file.

The layout is the contract's (``frame_offset``, ``time_offset``, then one list per ``model_id``), with
the key names and the frame records of :mod:`videoinfer_contract.results`, which the readers share:
each frame result is encoded by :func:`~videoinfer_contract.results.encode_frame_result`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import msgspec

from videoinfer_contract.results import FRAME_OFFSET_KEY, TIME_OFFSET_KEY
from videoinfer_server.models.base import VideoFrame

_encode = msgspec.json.encode


class ResultWriter:
    """Collect per-frame results without holding them in memory, then write the result JSON.

    Each model's frame results go to a line-per-frame spool file; :meth:`finish` streams them
    into ``{"frame_offset": [...], "time_offset": [...], "<model_id>": [...], ...}``.

    :param work_dir: a private folder for the spool files.
    :param model_ids: the result keys, in order.
    """

    def __init__(self, work_dir: Path, model_ids: list[str]) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self._model_ids = model_ids
        self._paths = [work_dir / f"model-{i}.jsonl" for i in range(len(model_ids))]
        self._spools: list[IO[bytes]] = [open(p, "wb") for p in self._paths]  # noqa: SIM115
        self.frame_offsets: list[int] = []
        self.time_offsets: list[float] = []

    def add(self, frame: VideoFrame, results: list[bytes]) -> None:
        """Record one sampled frame; ``results`` holds one encoded result (or ``b"null"``) per model."""
        self.frame_offsets.append(frame.index)
        self.time_offsets.append(frame.time)
        for spool, line in zip(self._spools, results, strict=True):
            spool.write(line)
            spool.write(b"\n")

    def close(self) -> None:
        """Close the spool files."""
        for spool in self._spools:
            spool.close()

    def finish(self, out_path: Path) -> None:
        """Write the result file atomically (``.part`` then rename)."""
        self.close()
        part = out_path.with_name(out_path.name + ".part")
        with open(part, "wb") as out:
            out.write(b"{" + _encode(FRAME_OFFSET_KEY) + b":")
            out.write(_encode(self.frame_offsets))
            out.write(b"," + _encode(TIME_OFFSET_KEY) + b":")
            out.write(_encode(self.time_offsets))
            for model_id, path in zip(self._model_ids, self._paths, strict=True):
                out.write(b"," + _encode(model_id) + b":[")
                with open(path, "rb") as spool:
                    for n, line in enumerate(spool):
                        if n:
                            out.write(b",")
                        out.write(line.rstrip(b"\n"))
                out.write(b"]")
            out.write(b"}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, out_path)

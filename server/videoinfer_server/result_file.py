"""The result file: per-frame results spooled to disk while a job runs, then one JSON file.

The layout is the contract's (``frame_offset``, ``time_offset``, then one list per ``model_id``), with
the key names of :mod:`videoinfer_contract.results`, which the readers share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from videoinfer_contract.results import FRAME_OFFSET_KEY, TIME_OFFSET_KEY
from videoinfer_server.models.base import VideoFrame


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Serialise a frame result (NumPy scalars and arrays allowed); NaN is refused."""
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


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
        self._spools: list[IO[str]] = [open(p, "w", encoding="utf-8") for p in self._paths]  # noqa: SIM115
        self.frame_offsets: list[int] = []
        self.time_offsets: list[float] = []

    def add(self, frame: VideoFrame, results: list[str]) -> None:
        """Record one sampled frame; ``results`` holds one serialised result (or ``"null"``) per model."""
        self.frame_offsets.append(frame.index)
        self.time_offsets.append(frame.time)
        for spool, line in zip(self._spools, results, strict=True):
            spool.write(line)
            spool.write("\n")

    def close(self) -> None:
        """Close the spool files."""
        for spool in self._spools:
            spool.close()

    def finish(self, out_path: Path) -> None:
        """Write the result file atomically (``.part`` then rename)."""
        self.close()
        part = out_path.with_name(out_path.name + ".part")
        with open(part, "w", encoding="utf-8") as out:
            out.write("{" + json.dumps(FRAME_OFFSET_KEY) + ":")
            out.write(json.dumps(self.frame_offsets))
            out.write("," + json.dumps(TIME_OFFSET_KEY) + ":")
            out.write(json.dumps(self.time_offsets))
            for model_id, path in zip(self._model_ids, self._paths, strict=True):
                out.write("," + json.dumps(model_id) + ":[")
                with open(path, encoding="utf-8") as spool:
                    for n, line in enumerate(spool):
                        if n:
                            out.write(",")
                        out.write(line.rstrip("\n"))
                out.write("]")
            out.write("}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, out_path)

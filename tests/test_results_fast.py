"""The fast paths of the results package give what frame by frame reading of records gives.

The one-pass summary (detections decoded into records of what a summary reads) and the JSON Lines
export (detections decoded straight into their rows' columns) are checked against the reading of
every frame into the contract's records, on files of every shape, with and without type hints,
whatever the batch size. Opening a large file reads it at both ends only: a file cut short or
followed by other bytes is still refused there.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videoinfer.results.jsonstream import DEFAULT_HEAD_BYTES
from airflow_provider_videoinfer.results.reader import ResultReader, VideoInferResultFileError
from airflow_provider_videoinfer.results.rows import RowsWriter
from airflow_provider_videoinfer.results.summarizer import Summarizer

KEYPOINTS = [{"x": 5, "y": 6, "confidence": 0.8, "class": "nose", "class_id": 0}, {"x": 1, "y": 2}]
FACE = {"face": {"x": 1, "y": 2, "width": 3, "height": 4, "confidence": 0.5}, "yaw": 0.1, "pitch": -0.2}


def box(cls: str | None, x: float, **extra: Any) -> dict[str, Any]:
    return {"x": x, "y": 2.0, "width": 3.0, "height": 4.0, "confidence": 0.5, "class": cls, "class_id": 1, **extra}


def frame(*predictions: dict[str, Any]) -> dict[str, Any]:
    return {"time": 0.01, "image": {"width": 64, "height": 48}, "predictions": list(predictions)}


def mixed_frames(rng: random.Random, count: int, odd: bool) -> list[Any]:
    """Detection frames of every kind the reader meets, a few of them unusual."""
    frames: list[Any] = []
    for i in range(count):
        draw = rng.random()
        if draw < 0.1:
            frames.append(None)
        elif draw < 0.2:
            frames.append(frame())
        elif draw < 0.3:
            frames.append(frame(box("person", float(i), keypoints=KEYPOINTS)))
        elif draw < 0.33:
            frames.append(frame(box(None, 1.0)))  # unlabelled
        elif draw < 0.35:
            frames.append(frame(box("car", 1.0, points=[{"x": 1, "y": 2}])))
        elif draw < 0.37 and odd:
            frames.append(rng.choice(["text", {"predictions": [{"y": 1}]}, 7]))
        else:
            classes = ["car", "bus", "é"]
            confidence = rng.choice([0.5, float("nan")])
            boxes = (box(rng.choice(classes), rng.random(), confidence=confidence) for _ in range(rng.randint(0, 6)))
            frames.append(frame(*boxes))
    return frames


def write(path: Path, models: dict[str, list[Any]]) -> Path:
    frames = len(next(iter(models.values())))
    times: list[Any] = [i / 10 for i in range(frames)]
    times[3] = float("nan")
    data = {"frame_offset": [i * 3 for i in range(frames)], "time_offset": times, **models}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = random.Random(11)
    folder = tmp_path_factory.mktemp("fast")
    odd = mixed_frames(rng, 1500, odd=True)
    clean = mixed_frames(rng, 1500, odd=False)
    label = {"predictions": [{"class": "day", "class_id": 0, "confidence": 0.8}], "top": "day", "confidence": 0.8}
    gaze = [rng.choice([None, {"predictions": []}, {"predictions": [FACE, FACE]}]) for _ in range(1500)]
    return {
        "odd": write(folder / "odd.json", {"a": odd, "b": odd[::-1], "scene": [label] * 1500, "gaze": gaze}),
        "clean": write(folder / "clean.json", {"a": clean, "b": clean[::-1]}),
    }


def frame_by_frame(reader: ResultReader, **options: Any) -> dict[str, Any]:
    summarizer = Summarizer(source=reader.name, inference_types=reader.inference_type_hints, **options)
    reader.feed(summarizer)
    return summarizer.summary()  # type: ignore[return-value]


CASES = [
    ("odd", None),
    ("clean", None),
    ("clean", {"a": "object-detection"}),
    ("clean", {"b": "keypoint-detection"}),
    ("clean", {"a": "instance-segmentation"}),
]


@pytest.mark.parametrize(("name", "hints"), CASES)
@pytest.mark.parametrize("chunk_size", [97, 4096, 1 << 19])
def test_the_one_pass_summary_is_the_frame_by_frame_summary(files, name, hints, chunk_size):
    with ResultReader(files[name], hints, chunk_size=chunk_size) as reader:
        fast = reader.summarize(max_timeline_buckets=7)
        slow = frame_by_frame(reader, max_timeline_buckets=7)
    assert json.dumps(fast) == json.dumps(slow)
    assert fast["models"]["a"]["predictions"] > 1000


@pytest.mark.parametrize(("name", "hints"), CASES)
@pytest.mark.parametrize("chunk_size", [97, 1 << 19])
def test_json_lines_rows_are_those_of_the_records(files, tmp_path, name, hints, chunk_size):
    written = []
    for fast in (True, False):
        target = tmp_path / f"rows-{fast}.jsonl"
        with ResultReader(files[name], hints, chunk_size=chunk_size) as reader, RowsWriter(target) as writer:
            if fast:
                writer.read(reader)
            else:
                reader.feed(writer)
        written.append((target.read_bytes(), writer.rows))
    assert written[0] == written[1]
    assert written[0][1] > 1000


def large_file(path: Path, end: bytes = b"]}") -> Path:
    """A result file larger than what opening it reads, whose last bytes are ``end``."""
    element = json.dumps(frame(*(box("car", float(n)) for n in range(20)))).encode()
    frames = 2 * DEFAULT_HEAD_BYTES // len(element) + 2
    with path.open("wb") as out:
        out.write(b'{"frame_offset": [' + b", ".join(b"%d" % i for i in range(frames)) + b"], ")
        out.write(b'"time_offset": [' + b", ".join(b"%d" % i for i in range(frames)) + b"], ")
        out.write(b'"cars": [' + b", ".join([element] * frames) + end)
    return path


def test_a_large_file_whole_at_its_end_opens_and_reads(tmp_path):
    path = large_file(tmp_path / "r.json")
    with ResultReader(path) as reader:
        assert len(reader) > 100
        summary = reader.summarize()
        assert reader.model_ids == ["cars"]
    assert summary["models"]["cars"]["predictions"] == 20 * len(reader)


@pytest.mark.parametrize(
    ("end", "message"),
    [
        (b"]", "is not valid JSON"),  # cut before the object's end
        (b", " + json.dumps(frame(box("car", 1.0))).encode(), "is not valid JSON"),  # cut after an element: ends ]}
        (b"]}\n<html>", "unexpected bytes after the end of the JSON object"),
        (b"]}}", "unexpected bytes after the end of the JSON object"),
    ],
    ids=["cut-before-the-end", "cut-after-an-element", "bytes-after", "brace-after"],
)
def test_a_large_file_not_whole_at_its_end_is_refused_on_opening(tmp_path, end, message):
    path = large_file(tmp_path / "r.json", end)
    with pytest.raises(VideoInferResultFileError, match=message):
        ResultReader(path)


def test_a_missing_hinted_model_of_a_large_file_is_named_when_read(tmp_path):
    path = large_file(tmp_path / "r.json")
    with (
        ResultReader(path, inference_types={"people": "object-detection"}) as reader,
        pytest.raises(VideoInferResultFileError, match=r"model\(s\) \['people'\]"),
    ):
        reader.summarize()

"""Every shape the service (or its docs) writes: key spellings, extra values, CLIP forms, NaN, odd frames.

Also the batch decoding itself: values that could fool the search for a cut between two list
elements (brackets and commas in strings, a repeated first key, NaN amid a long list) must read
back exactly as ``json.load`` reads them, whatever the chunk size.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videoinfer.results.jsonstream import index_arrays, iter_batches
from airflow_provider_videoinfer.results.reader import (
    ResultReader,
    VideoInferResultFileError,
    iter_frames,
    summarize_result,
)
from airflow_provider_videoinfer.results.rows import write_rows
from videoinfer_contract.results import Detections, Embedding, UnknownResult


def write(path: Path, data: dict[str, Any]) -> Path:
    # Python's json writes NaN and Infinity, as the service (written in Python) does.
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def box(cls: str = "car", **extra: Any) -> dict[str, Any]:
    return {"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0, "confidence": 0.5, "class": cls, "class_id": 0, **extra}


def test_both_spellings_of_the_offset_keys(tmp_path):
    frames = [{"predictions": [box()]}, None]
    plural = write(tmp_path / "p.json", {"frame_offsets": [0, 6], "time_offsets": [0, 0.25], "cars": frames})
    singular = write(tmp_path / "s.json", {"frame_offset": [0, 6], "time_offset": [0, 0.25], "cars": frames})

    assert list(iter_frames(plural)) == list(iter_frames(singular))
    assert [(f.frame_offset, f.time_offset) for f in iter_frames(plural)] == [(0, 0.0), (6, 0.25)]
    with ResultReader(plural) as reader:
        assert reader.model_ids == ["cars"]


def test_top_level_values_that_are_not_frame_lists_are_ignored(tmp_path, caplog):
    path = write(
        tmp_path / "r.json",
        {
            "warnings": ["low fps"],
            "frame_offset": [0, 6, 12],
            "status": "done",
            "time_offset": [0, 0.25, 0.5],
            "meta": {"model": [1, 2, 3]},
            "cars": [{"predictions": [box()]}, None, {"predictions": []}],
            "count": 3,
            "empty": [],
            "flag": None,
        },
    )
    with caplog.at_level("DEBUG", logger="airflow_provider_videoinfer.results.reader"), ResultReader(path) as reader:
        assert reader.model_ids == ["cars"]
        frames = list(reader)

    assert [f.results["cars"] is None for f in frames] == [False, True, False]
    assert "ignoring list 'warnings' of 1 elements" in caplog.text
    assert summarize_result(path)["models"].keys() == {"cars"}
    with pytest.raises(VideoInferResultFileError, match=r"model\(s\) \['warnings'\]"):
        ResultReader(path, inference_types={"warnings": "classification"})


@pytest.mark.parametrize(
    "element",
    [
        [0.6, 0.8],
        {"embeddings": [[0.6, 0.8]]},
        {"embedding": [0.6, 0.8]},
        {"embeddings": [[0.6, 0.8]], "time": 0.1},
    ],
)
def test_clip_embeddings_are_typed_in_every_shape_without_a_hint(tmp_path, element):
    path = write(tmp_path / "r.json", {"frame_offset": [0, 1], "time_offset": [0, 0.5], "clip": [element, None]})
    first, second = iter_frames(path)

    assert first.results["clip"] == Embedding((0.6, 0.8))
    assert second.results["clip"] is None
    assert summarize_result(path)["models"]["clip"]["dimensions"] == 2


def nan_file(path: Path) -> Path:
    nan, inf = float("nan"), float("inf")
    return write(
        path,
        {
            "frame_offset": [0, 6, 12],
            "time_offset": [0.0, nan, 0.5],
            "cars": [
                {"predictions": [box(confidence=nan), box("person", x=inf)]},
                {"predictions": [box(width=-inf)]},
                None,
            ],
            "clip": [[nan, 1.0], [0.0, 1.0], [1.0, 0.0]],
            "gaze": [
                {"predictions": [{"face": box("face"), "yaw": nan, "pitch": 0.1}]},
                {"predictions": [{"face": box("face"), "yaw": 0.3, "pitch": inf}]},
                None,
            ],
        },
    )


def test_non_finite_numbers_never_crash(tmp_path):
    path = nan_file(tmp_path / "r.json")
    assert "NaN" in path.read_text() and "Infinity" in path.read_text()

    frames = list(iter_frames(path))
    summary = summarize_result(path)
    json.dumps(summary, allow_nan=False)  # no NaN reaches the summary (XCom)

    assert math.isnan(frames[1].time_offset) and math.isnan(frames[0].results["cars"].predictions[0].confidence)
    assert frames[0].results["cars"].predictions[1].x == math.inf
    assert summary["last_time_offset"] == 0.5
    cars = summary["models"]["cars"]
    assert (cars["predictions"], cars["class_counts"]) == (3, {"car": 2, "person": 1})
    assert [b["start"] for b in cars["timeline"]["buckets"]] == [0]  # the NaN time is left out
    gaze = summary["models"]["gaze"]
    assert gaze["yaw"] == {"min": 0.3, "max": 0.3, "mean": 0.3}
    assert gaze["pitch"] == {"min": 0.1, "max": 0.1, "mean": 0.1}
    # The NaN vector has no direction: only frames 1 and 2 compare (orthogonal: distance 1).
    assert summary["models"]["clip"]["change"] == {"min": 1.0, "max": 1.0, "mean": 1.0}


def test_non_finite_numbers_are_null_in_every_rows_format(tmp_path):
    path = nan_file(tmp_path / "r.json")

    assert write_rows(path, tmp_path / "rows.jsonl") == 5
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()

    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant}")

    rows = [json.loads(line, parse_constant=refuse) for line in lines]
    assert [(r["confidence"], r["x"], r["width"], r["yaw"], r["pitch"]) for r in rows if r["time_offset"] is None] == [
        (0.5, 1.0, None, None, None),
        (0.5, 1.0, 3.0, 0.3, None),
    ]
    assert rows[0]["confidence"] is None and rows[1]["x"] is None

    write_rows(path, tmp_path / "rows.csv", rows_format="csv")
    table = list(csv.DictReader(io.StringIO((tmp_path / "rows.csv").read_text())))
    assert (table[0]["confidence"], table[1]["x"], table[3]["time_offset"]) == ("", "", "")

    parquet = pytest.importorskip("pyarrow.parquet")
    write_rows(path, tmp_path / "rows.parquet", rows_format="parquet")
    columns = parquet.read_table(tmp_path / "rows.parquet").to_pydict()
    assert columns["confidence"][0] is None and columns["x"][1] is None and columns["yaw"][2] is None


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ([0, 6.5, 12], r"frame_offset\[1\] is 6.5, not a whole number"),
        ([0, 6, float("nan")], r"frame_offset\[2\] is nan, not a whole number"),
        ([float("inf"), 6, 12], r"frame_offset\[0\] is inf, not a whole number"),
        ([0, "6", 12], r"frame_offset\[1\] is '6', not a number"),
        ([0, None, 12], r"frame_offset\[1\] is None, not a number"),
    ],
)
def test_a_bad_frame_offset_names_the_file_and_the_frame(tmp_path, offsets, message):
    path = write(tmp_path / "r.json", {"frame_offset": offsets, "time_offset": [0, 1, 2], "cars": [None] * 3})

    with pytest.raises(VideoInferResultFileError, match=message) as info:
        list(iter_frames(path))
    assert str(path) in str(info.value)


def test_whole_float_frame_offsets_are_accepted(tmp_path):
    path = write(tmp_path / "r.json", {"frame_offset": [0.0, 6.0], "time_offset": [0, 1], "cars": [None, None]})
    assert [f.frame_offset for f in iter_frames(path)] == [0, 6]


def test_frames_of_the_wrong_json_type_are_unknown(tmp_path):
    odd = ["text", 7, True, [], ["a", "b"], {"predictions": "none"}, {"predictions": [{"y": 1}]}, {"predictions": 3}]
    cars = [{"predictions": [box()]}, *odd]
    path = write(tmp_path / "r.json", {"frame_offset": list(range(9)), "time_offset": list(range(9)), "cars": cars})

    frames = list(iter_frames(path))
    summary = summarize_result(path)["models"]["cars"]
    write_rows(path, tmp_path / "rows.jsonl")

    assert isinstance(frames[0].results["cars"], Detections)
    assert [type(f.results["cars"]) for f in frames[1:]] == [UnknownResult] * len(odd)
    assert [f.results["cars"].data for f in frames[1:]] == odd
    assert (summary["unknown_frames"], summary["predictions"]) == (len(odd), 1)
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 1


def test_a_hinted_model_with_the_wrong_shape_is_still_an_error(tmp_path):
    path = write(tmp_path / "r.json", {"frame_offset": [0], "time_offset": [0], "cars": ["text"]})
    with pytest.raises(VideoInferResultFileError, match="frame 0 of model 'cars' .* object-detection"):
        list(iter_frames(path, inference_types={"cars": "object-detection"}))


# --- the batch decoding -------------------------------------------------------------------------


def tricky_values(rng: random.Random, depth: int = 0) -> Any:
    """Values whose text fools a cut search: brackets, commas and keys inside strings, nesting."""
    choice = rng.random()
    if depth > 3 or choice < 0.3:
        return rng.choice([1, -2.5e-7, 'a"],[{', '}, {"time": ', "é🚚", None, True, float("nan"), float("-inf")])
    if choice < 0.6:
        return [tricky_values(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["time", "x", "],"]): tricky_values(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_batches_read_exactly_what_json_load_reads(tmp_path):
    rng = random.Random(7)
    lists = {
        # Elements starting with the same key as nested objects, so the learned prefix misleads.
        "frames": [{"time": i, "nested": [{"time": tricky_values(rng)}], "v": tricky_values(rng)} for i in range(300)],
        "numbers": [rng.choice([i, i + 0.5, -i * 1e-9]) for i in range(300)],
        "mixed": [tricky_values(rng) for _ in range(300)],
        "vectors": [[rng.random() for _ in range(5)] for _ in range(300)],
    }
    data = {"first": "not a list", **lists, "last": {"a": [1, 2]}}
    for indent in (None, 2):
        path = tmp_path / "tricky.json"
        path.write_text(json.dumps(data, indent=indent, ensure_ascii=indent is None), encoding="utf-8")
        for chunk_size in (1, 5, 97, 4096, 1 << 20):
            with path.open("rb") as fh:
                arrays = index_arrays(fh, chunk_size)
                assert {key: info.length for key, info in arrays.items()} == {key: 300 for key in lists}
                for key, info in arrays.items():
                    batches = iter_batches(fh, info, chunk_size=chunk_size)
                    assert same(list(itertools.chain.from_iterable(batches)), lists[key]), (key, chunk_size)


def test_a_long_list_with_a_nan_in_the_middle_is_read_whole(tmp_path):
    cars = [{"predictions": [box(confidence=float("nan") if i == 2500 else 0.5)]} for i in range(5000)]
    path = write(
        tmp_path / "r.json", {"frame_offset": list(range(5000)), "time_offset": list(range(5000)), "cars": cars}
    )

    frames = list(ResultReader(path, chunk_size=4096))
    confidences = [f.results["cars"].predictions[0].confidence for f in frames]
    assert len(frames) == 5000 and math.isnan(confidences[2500])
    assert confidences[:2500] == [0.5] * 2500 and confidences[2501:] == [0.5] * 2499

"""Tests of reading, typing, summarising and exporting result files (results, records, summary, rows)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videoinfer.exceptions import VideoInferResponseError, VideoInferValidationError
from airflow_provider_videoinfer.results.reader import (
    ResultReader,
    VideoInferResultFileError,
    iter_frames,
    summarize_result,
)
from airflow_provider_videoinfer.results.rows import ROW_COLUMNS, write_rows
from videoinfer_contract.results import (
    Classification,
    Detections,
    Embedding,
    GazeResult,
    Image,
    SegmentedDetections,
    SemanticSegmentation,
    UnknownResult,
)

# A 1x1 PNG, as the service's base64 masks are.
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
        "0000000a49444154789c63600000000200015e2b3c6a0000000049454e44ae426082"
    )
).decode()


def write_result(path: Path, models: dict[str, list[Any]], fps: float = 4, step: int = 6, **extra: Any) -> Path:
    """Write a result file of ``models`` (one list per model); offsets follow from ``fps`` and ``step``."""
    frames = len(next(iter(models.values())))
    data = {
        "frame_offset": [i * step for i in range(frames)],
        "time_offset": [round(i / fps, 4) for i in range(frames)],
        **models,
        **extra,
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def box(cls: str, x: float = 10.0, confidence: float = 0.9, **extra: Any) -> dict[str, Any]:
    """One object-detection prediction."""
    return {
        "x": x,
        "y": 20.0,
        "width": 30.0,
        "height": 40.0,
        "confidence": confidence,
        "class": cls,
        "class_id": {"car": 0, "person": 1}.get(cls, 7),
        "detection_id": f"id-{cls}-{x}",
        **extra,
    }


def detection_frame(*predictions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"time": 0.01, "image": {"width": 640, "height": 480}, "predictions": list(predictions), **extra}


# --- reading each task type ---------------------------------------------------------------------


def test_object_detection_frames_with_null_and_unknown_keys(tmp_path):
    path = write_result(
        tmp_path / "r.json",
        {
            "cars": [
                detection_frame(box("car", 1.5), box("person", 2.5, tracker_id=7), new_field={"a": [1]}),
                None,
                detection_frame(),
            ]
        },
        version="2",  # an unknown top-level key that is not a list
        notes={"a": [1, 2]},
    )
    frames = list(iter_frames(path))

    assert [(f.index, f.frame_offset, f.time_offset) for f in frames] == [(0, 0, 0.0), (1, 6, 0.25), (2, 12, 0.5)]
    assert list(frames[0].results) == ["cars"]
    first = frames[0].results["cars"]
    assert isinstance(first, Detections)
    assert (first.inference_type, first.image, first.time) == ("object-detection", Image(640, 480), 0.01)
    car, person = first.predictions
    assert (car.x, car.y, car.width, car.height, car.confidence) == (1.5, 20.0, 30.0, 40.0, 0.9)
    assert (car.class_name, car.class_id, car.detection_id) == ("car", 0, "id-car-1.5")
    assert car.points is None and car.keypoints is None
    assert person.class_name == "person"
    assert frames[1].results["cars"] is None
    assert frames[2].results["cars"] == Detections(time=0.01, image=Image(640, 480), predictions=())


def test_instance_segmentation_points(tmp_path):
    polygon = [{"x": 1, "y": 2}, {"x": 3.5, "y": 4}, {"x": 0, "y": 9}]
    path = write_result(
        tmp_path / "r.json",
        {"seg": [detection_frame(), detection_frame(box("car", points=polygon)), None]},
    )
    frames = list(iter_frames(path))

    segmented = frames[1].results["seg"]
    assert isinstance(segmented, SegmentedDetections) and segmented.inference_type == "instance-segmentation"
    assert isinstance(segmented, Detections)  # the detection types share one base
    assert [(p.x, p.y) for p in segmented.predictions[0].points] == [(1, 2), (3.5, 4), (0, 9)]
    # The first frame has no prediction to tell the type by: shape alone says object-detection.
    assert frames[0].results["seg"].inference_type == "object-detection"


def test_keypoint_detection_keypoints(tmp_path):
    keypoints = [
        {"x": 5, "y": 6, "confidence": 0.8, "class": "nose", "class_id": 0},
        {"x": 7, "y": 8, "confidence": 0.7, "class": "left_eye", "class_id": 1, "visible": True},
    ]
    path = write_result(tmp_path / "r.json", {"pose": [detection_frame(box("person", keypoints=keypoints))]})
    (frame,) = iter_frames(path)

    result = frame.results["pose"]
    assert result.inference_type == "keypoint-detection"
    nose, eye = result.predictions[0].keypoints
    assert (nose.x, nose.y, nose.confidence, nose.class_name, nose.class_id) == (5, 6, 0.8, "nose", 0)
    assert eye.class_name == "left_eye"


def test_classification_top_confidence_and_predictions(tmp_path):
    single = {
        "time": 0.02,
        "image": {"width": 224, "height": 224},
        "predictions": [
            {"class": "rock", "class_id": 0, "confidence": 0.7},
            {"class": "paper", "class_id": 1, "confidence": 0.3},
        ],
        "top": "rock",
        "confidence": 0.7,
    }
    multi_label = {"predictions": {"cat": {"confidence": 0.4, "class_id": 2}, "dog": {"confidence": 0.9}}}
    path = write_result(tmp_path / "r.json", {"rps": [single, None]}, extra_model=None)
    path2 = write_result(tmp_path / "r2.json", {"pets": [multi_label]})
    first, second = iter_frames(path)
    (pets,) = iter_frames(path2)

    result = first.results["rps"]
    assert isinstance(result, Classification)
    assert (result.top, result.confidence, result.image, result.time) == ("rock", 0.7, Image(224, 224), 0.02)
    assert [(p.class_name, p.class_id, p.confidence) for p in result.predictions] == [
        ("rock", 0, 0.7),
        ("paper", 1, 0.3),
    ]
    assert second.results["rps"] is None
    labels = pets.results["pets"]
    assert isinstance(labels, Classification)
    assert (labels.top, labels.confidence) == ("dog", 0.9)


def test_semantic_segmentation_mask_and_class_map(tmp_path):
    frame = {
        "time": 0.5,
        "image": {"width": 1, "height": 1},
        "predictions": {
            "segmentation_mask": PNG_1X1,
            "class_map": {"0": "background", "1": "road"},
            "confidence_mask": PNG_1X1,
            "extra": 1,
        },
    }
    path = write_result(tmp_path / "r.json", {"roads": [None, frame]})
    frames = list(iter_frames(path))

    assert frames[0].results["roads"] is None
    mask = frames[1].results["roads"]
    assert isinstance(mask, SemanticSegmentation)
    assert mask.predictions.class_map == {0: "background", 1: "road"}
    assert mask.mask_png().startswith(b"\x89PNG")
    assert mask.predictions.confidence_mask == PNG_1X1


def test_gaze_detection_face_yaw_pitch(tmp_path):
    face = {
        "face": {
            "x": 100,
            "y": 120,
            "width": 50,
            "height": 60,
            "confidence": 0.95,
            "class": "face",
            "landmarks": [{"x": 90, "y": 110}, {"x": 110, "y": 110}],
        },
        "yaw": 0.25,
        "pitch": -0.1,
    }
    path = write_result(tmp_path / "r.json", {"gaze": [{"time": 0.1, "predictions": [face, face]}, None]})
    first, second = iter_frames(path)

    result = first.results["gaze"]
    assert isinstance(result, GazeResult) and len(result.predictions) == 2
    gaze = result.predictions[0]
    face = gaze.face
    assert (face.x, face.y, face.width, face.height) == (100, 120, 50, 60)
    assert (face.confidence, face.class_name, face.class_id) == (0.95, "face", None)
    assert (gaze.yaw, gaze.pitch) == (0.25, -0.1)
    assert [(p.x, p.y) for p in face.landmarks] == [(90, 110), (110, 110)]
    assert second.results["gaze"] is None


def test_clip_embedding_vector(tmp_path):
    vector = [i / 512 for i in range(512)]
    path = write_result(tmp_path / "r.json", {"clip": [vector, None]})
    first, second = iter_frames(path)

    assert isinstance(first.results["clip"], Embedding)
    assert first.results["clip"].vector == tuple(vector)
    assert first.results["clip"].dimensions == 512
    assert second.results["clip"] is None


def test_several_models_read_in_lockstep(tmp_path):
    path = write_result(
        tmp_path / "r.json",
        {
            "cars": [detection_frame(box("car", float(i))) for i in range(5)],
            "clip": [[float(i)] * 4 for i in range(5)],
            "odd": [{"status": "weird"}, "text", None, 3, [{"no": "numbers"}]],
        },
    )
    with ResultReader(path) as reader:
        assert reader.model_ids == ["cars", "clip", "odd"]
        assert len(reader) == 5
        frames = list(reader)
        again = list(reader)  # each iteration starts over

    assert frames == again
    for i, frame in enumerate(frames):
        assert frame.results["cars"].predictions[0].x == float(i)
        assert frame.results["clip"].vector == (float(i),) * 4
    assert [type(f.results["odd"]) for f in frames] == [
        UnknownResult,
        UnknownResult,
        type(None),
        UnknownResult,
        UnknownResult,
    ]
    assert frames[1].results["odd"].data == "text"


def test_empty_frames_keep_the_type_seen_earlier(tmp_path):
    polygon = [{"x": 1, "y": 2}]
    path = write_result(tmp_path / "r.json", {"seg": [detection_frame(box("car", points=polygon)), detection_frame()]})
    assert [f.results["seg"].inference_type for f in iter_frames(path)] == ["instance-segmentation"] * 2


def test_inference_types_hint(tmp_path):
    path = write_result(tmp_path / "r.json", {"gaze": [{"predictions": []}], "cars": [detection_frame()]})
    (frame,) = iter_frames(path, inference_types={"gaze": "gaze-detection", "cars": "keypoint-detection"})

    assert frame.results["gaze"] == GazeResult(predictions=())
    assert frame.results["cars"].inference_type == "keypoint-detection"


def test_inference_types_hint_errors(tmp_path):
    path = write_result(tmp_path / "r.json", {"cars": [detection_frame(box("car"))]})

    with pytest.raises(VideoInferResultFileError, match=r"model\(s\) \['missing'\]"):
        ResultReader(path, inference_types={"missing": "classification"})
    with pytest.raises(VideoInferValidationError, match="'segmentation': use one of"):
        ResultReader(path, inference_types={"cars": "segmentation"})
    with pytest.raises(VideoInferResultFileError, match="frame 0 of model 'cars' .* classification"):
        list(iter_frames(path, inference_types={"cars": "classification"}))


def test_reads_tiny_chunks_identically(tmp_path):
    """Window edges inside numbers, strings and multi-byte characters must not change the values."""
    models = {
        "vehicules": [
            detection_frame(box("voiture é", 1e-05 * i, confidence=0.123456789), box("camion 🚚", -1.5e20))
            for i in range(6)
        ],
        "clip": [[1.25e-3, -7, 3.0] for _ in range(6)],
    }
    path = write_result(tmp_path / "r.json", models)
    path.write_text(json.dumps(json.loads(path.read_text()), ensure_ascii=False, indent=2), encoding="utf-8")

    expected = list(iter_frames(path))
    for chunk_size in (1, 2, 3, 5, 64):
        with ResultReader(path, chunk_size=chunk_size) as reader:
            assert list(reader) == expected
    assert expected[3].results["vehicules"].predictions[0].x == pytest.approx(3e-05)
    assert expected[3].results["vehicules"].predictions[1].class_name == "camion 🚚"


# --- sources ------------------------------------------------------------------------------------


class _NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


class _StreamPath:
    """A remote-looking path whose files cannot seek, like an HTTP stream."""

    protocol = "stream"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.opened = 0

    def open(self, mode: str = "rb") -> io.BufferedReader:
        self.opened += 1
        return io.BufferedReader(_NonSeekable(self.data))

    def __str__(self) -> str:
        return "stream://bucket/result.json"


def test_sources_local_uri_object_storage_memory_and_non_seekable(tmp_path):
    import fsspec
    from airflow.sdk import ObjectStoragePath

    path = write_result(tmp_path / "r.json", {"cars": [detection_frame(box("car")), None]})
    expected = list(iter_frames(path))
    memory = "memory://videoinfer-tests/result.json"
    with fsspec.open(memory, "wb") as out:
        out.write(path.read_bytes())
    stream = _StreamPath(path.read_bytes())

    for source in (str(path), path, path.as_uri(), ObjectStoragePath(path.as_uri()), memory, stream):
        assert list(iter_frames(source)) == expected, source
    assert stream.opened == 1  # copied once to a local file, not reopened per list


# --- malformed files ----------------------------------------------------------------------------


def test_unequal_offsets_name_the_keys(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"frame_offset": [0, 6, 12], "time_offset": [0, 0.25], "cars": [None, None, None]}))

    with pytest.raises(VideoInferResultFileError, match="list 'time_offset' has 2 elements but 'frame_offset' has 3"):
        ResultReader(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"frame_offset": [0], "time_offset": [0], "cars": [null', "is not valid"),
        ('{"frame_offset": [0], "time_offset": [0], "cars": [nul]}', "is not valid"),
        ("[1, 2]", "is not valid"),
        ('{"time_offset": [0], "cars": [null]}', "has no 'frame_offset' list"),
    ],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(VideoInferResultFileError, match=message) as info:
        list(iter_frames(path))
    assert isinstance(info.value, VideoInferResponseError)
    assert str(path) in str(info.value)


# --- summary ------------------------------------------------------------------------------------


def known_counts_file(path: Path) -> Path:
    """30 frames at 10 fps (3 s), source at 30 fps. Counts by hand are in the summary test."""
    cars, labels = [], []
    for i in range(30):
        boxes = [box("car", float(n)) for n in range(i % 3)] + ([box("person")] if i == 17 else [])
        cars.append(None if i in (5, 6) else detection_frame(*boxes))
        top = "cat" if i < 12 else "dog"
        labels.append(
            None
            if i == 3
            else {"predictions": [{"class": top, "class_id": 0, "confidence": 0.8}], "top": top, "confidence": 0.8}
        )
    return write_result(path, {"cars": cars, "pets": labels}, fps=10, step=3)


def test_summary_known_counts(tmp_path):
    summary = summarize_result(known_counts_file(tmp_path / "r.json"))

    assert json.loads(json.dumps(summary)) == summary  # JSON-serialisable as it is
    assert (summary["frames"], summary["last_time_offset"]) == (30, 2.9)
    cars = summary["models"]["cars"]
    # i % 3 cars on frames 0..29 sum to 30; frames 5 (2 cars) and 6 (0) are null: 28 cars.
    assert cars["class_counts"] == {"car": 28, "person": 1}
    assert (cars["inference_type"], cars["frames"], cars["null_frames"], cars["predictions"]) == (
        "object-detection",
        30,
        2,
        29,
    )
    # Frames with i % 3 != 0: 20, less null frame 5.
    assert cars["frames_with_predictions"] == 19
    assert cars["max_objects"] == {"count": 3, "frame_index": 17, "frame_offset": 51, "time_offset": 1.7}
    assert cars["timeline"] == {
        "bucket_seconds": 1,
        "counts": "most objects of each class in one frame",
        "buckets": [
            {"start": 0, "counts": {"car": 2}},
            {"start": 1, "counts": {"car": 2, "person": 1}},
            {"start": 2, "counts": {"car": 2}},
        ],
    }
    pets = summary["models"]["pets"]
    assert (pets["inference_type"], pets["null_frames"], pets["frames_with_predictions"]) == ("classification", 1, 29)
    assert pets["class_counts"] == {"dog": 18, "cat": 11}
    assert [(b["start"], b["top"], b["counts"]) for b in pets["timeline"]["buckets"]] == [
        (0, "cat", {"cat": 9}),
        (1, "dog", {"dog": 8, "cat": 2}),
        (2, "dog", {"dog": 10}),
    ]


def test_summary_timeline_is_bucketed_to_stay_bounded(tmp_path):
    summary = summarize_result(known_counts_file(tmp_path / "r.json"), max_timeline_buckets=2)

    cars = summary["models"]["cars"]["timeline"]
    assert cars["bucket_seconds"] == 2
    assert cars["buckets"] == [{"start": 0, "counts": {"car": 2, "person": 1}}, {"start": 2, "counts": {"car": 2}}]
    pets = summary["models"]["pets"]["timeline"]["buckets"]
    assert [(b["start"], b["top"], b["counts"]) for b in pets] == [
        (0, "cat", {"cat": 11, "dog": 8}),
        (2, "dog", {"dog": 10}),
    ]


def test_summary_of_a_long_video_stays_small(tmp_path):
    frames = 3 * 3600  # 3 hours at 1 fps, 150 classes
    cars = [detection_frame(box(f"class-{i % 150}"), box("car")) for i in range(frames)]
    summary = summarize_result(write_result(tmp_path / "r.json", {"cars": cars}, fps=1), max_classes=100)

    model = summary["models"]["cars"]
    assert len(model["timeline"]["buckets"]) <= 600
    assert model["timeline"]["bucket_seconds"] == 32  # 10800 s in at most 600 buckets, by doubling
    assert len(model["class_counts"]) == 100 and model["classes_truncated"] is True
    assert model["class_counts"]["car"] == frames
    assert len(json.dumps(summary)) < 200_000


def test_summary_of_other_types(tmp_path):
    mask = {"predictions": {"segmentation_mask": PNG_1X1, "class_map": {"0": "background", "1": "road"}}}
    face = {"face": {"x": 1, "y": 1, "width": 2, "height": 2, "confidence": 0.9}, "yaw": 0.1, "pitch": 0.2}
    path = write_result(
        tmp_path / "r.json",
        {
            "roads": [mask, None, mask],
            "gaze": [{"predictions": [face]}, {"predictions": [face, face]}, {"predictions": []}],
            "clip": [[0.5] * 768, [0.5] * 768, None],
        },
    )
    models = summarize_result(path)["models"]

    assert models["roads"]["inference_type"] == "semantic-segmentation"
    assert models["roads"]["classes"] == ["background", "road"]
    assert (models["roads"]["frames_with_predictions"], models["roads"]["null_frames"]) == (2, 1)
    assert models["gaze"]["class_counts"] == {"face": 3}
    assert models["gaze"]["max_objects"]["count"] == 2
    assert (models["clip"]["dimensions"], models["clip"]["null_frames"]) == (768, 1)


# --- bounded memory on a large file -------------------------------------------------------------


def write_large_result(path: Path, target_bytes: int) -> int:
    """Write, streaming, a result file of about ``target_bytes``: boxes plus 64 KiB masks per frame."""
    mask = {"predictions": {"segmentation_mask": "A" * 65_536, "class_map": {"0": "background", "1": "road"}}}
    cars = detection_frame(*(box("car", float(n)) for n in range(20)))
    frames = target_bytes // (len(json.dumps(mask)) + len(json.dumps(cars)) + 20)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"frame_offset": [' + ", ".join(str(i * 3) for i in range(frames)))
        out.write('], "time_offset": [' + ", ".join(str(round(i / 10, 4)) for i in range(frames)) + "]")
        for model, frame in (("cars", cars), ("roads", mask)):
            out.write(f', "{model}": [')
            for i in range(frames):
                out.write((", " if i else "") + ("null" if i % 100 == 99 else json.dumps(frame)))
            out.write("]")
        out.write("}")
    return frames


def test_large_file_is_read_in_bounded_memory(tmp_path):
    path = tmp_path / "large.json"
    frames = write_large_result(path, 160 * 2**20)
    size = path.stat().st_size

    tracemalloc.start()
    try:
        summary = summarize_result(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert summary["frames"] == frames
    assert summary["models"]["cars"]["predictions"] == 20 * (frames - frames // 100)
    assert summary["models"]["roads"]["null_frames"] == frames // 100
    assert size > 150 * 2**20
    assert peak < size / 10, f"peak traced memory {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"


# --- rows ---------------------------------------------------------------------------------------


def rows_file(path: Path) -> Path:
    face = {"face": {"x": 1, "y": 2, "width": 3, "height": 4, "confidence": 0.5}, "yaw": 0.1, "pitch": 0.2}
    polygon = [{"x": 1, "y": 2}, {"x": 3, "y": 4}]
    return write_result(
        path,
        {
            "cars": [
                detection_frame(box("car", 1.0, points=polygon[:1]), box("person", 2.0, points=polygon)),
                None,
                detection_frame(),
            ],
            "gaze": [None, {"predictions": [face]}, None],
            "pets": [
                {"top": "cat", "confidence": 0.8, "predictions": [{"class": "cat", "class_id": 4, "confidence": 0.8}]}
            ]
            * 3,
            "clip": [[0.1, 0.2]] * 3,
        },
    )


def test_rows_jsonl(tmp_path):
    count = write_rows(rows_file(tmp_path / "r.json"), tmp_path / "rows.jsonl")

    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert count == len(rows) == 6  # 2 boxes + 1 face + 3 top classes; no rows for embeddings
    assert all(list(row) == list(ROW_COLUMNS) for row in rows)
    car, person, pet0, face, pet1, pet2 = rows
    assert (car["model_id"], car["class"], car["x"], car["width"], car["time_offset"]) == (
        "cars",
        "car",
        1.0,
        30.0,
        0.0,
    )
    assert person["points"] == [[1, 2], [3, 4]] and person["inference_type"] == "instance-segmentation"
    assert (pet0["class"], pet0["class_id"], pet0["confidence"], pet0["x"]) == ("cat", 4, 0.8, None)
    assert (face["class"], face["frame_offset"], face["yaw"], face["pitch"], face["height"]) == ("face", 6, 0.1, 0.2, 4)
    assert [row["frame_index"] for row in rows] == [0, 0, 0, 1, 1, 2]


def test_rows_csv_to_object_storage(tmp_path):
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath((tmp_path / "rows.csv").as_uri())
    count = write_rows(rows_file(tmp_path / "r.json"), target, rows_format="CSV")

    rows = list(csv.DictReader(io.StringIO((tmp_path / "rows.csv").read_text())))
    assert count == len(rows) == 6
    assert list(rows[0]) == list(ROW_COLUMNS)
    assert (rows[0]["class"], rows[0]["x"], rows[0]["points"], rows[0]["keypoints"]) == (
        "car",
        "1.0",
        "[[1.0,2.0]]",
        "",
    )
    assert json.loads(rows[1]["points"]) == [[1, 2], [3, 4]]
    assert (rows[3]["class"], float(rows[3]["yaw"])) == ("face", 0.1)


def test_rows_format_is_checked(tmp_path):
    with pytest.raises(VideoInferValidationError, match="rows_format must be one of jsonl, csv, parquet"):
        write_rows(rows_file(tmp_path / "r.json"), tmp_path / "rows.xlsx", rows_format="xlsx")


def test_rows_parquet_without_pyarrow_names_the_fix(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    target = tmp_path / "rows.parquet"
    with pytest.raises(VideoInferValidationError, match="pip install pyarrow"):
        write_rows(rows_file(tmp_path / "r.json"), target, rows_format="parquet")
    assert not target.exists()


def test_rows_parquet_round_trip(tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet")
    count = write_rows(rows_file(tmp_path / "r.json"), tmp_path / "rows.parquet", rows_format="parquet")

    table = parquet.read_table(tmp_path / "rows.parquet")
    assert table.num_rows == count == 6
    assert table.column_names == list(ROW_COLUMNS)
    assert table.column("class").to_pylist()[:2] == ["car", "person"]
    assert math.isclose(table.column("x").to_pylist()[1], 2.0)


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def test_summary_of_embeddings_marks_scene_changes(tmp_path):
    """Two scenes, each with small jitter between frames; the cut is at frame 6 (1.5 s), a smaller change at 9."""
    scene_b, scene_c = unit(0, 1, 0, 0), unit(0, 0.6, 0.8, 0)
    jitter = [unit(1, 0, 0, 0.01 * i) for i in range(6)]  # scene A, drifting a little
    vectors = [*jitter, scene_b, scene_b, scene_b, scene_c, None, scene_c]
    path = write_result(tmp_path / "r.json", {"clip": vectors}, fps=4)  # frame i at i / 4 s

    clip = summarize_result(path, max_scene_changes=2)["models"]["clip"]

    assert (clip["inference_type"], clip["dimensions"], clip["null_frames"]) == ("clip-embed-image", 4, 1)
    # The cut A -> B: vectors at right angles, cosine distance 1; B -> C: 1 - 0.6 = 0.4.
    assert [(c["frame_index"], c["time_offset"], c["change"]) for c in clip["largest_changes"]] == [
        (6, 1.5, pytest.approx(1.0)),
        (9, 2.25, pytest.approx(0.4)),
    ]
    assert clip["change"]["max"] == pytest.approx(1.0)
    assert clip["change"]["min"] == pytest.approx(0.0)  # B -> B, and C -> C across the null frame
    assert 0 < clip["change"]["mean"] < 0.2
    assert "cosine distance" in clip["change_measure"]


def test_summary_of_gaze_faces_and_angles(tmp_path):
    def face(yaw: float, pitch: float) -> dict[str, Any]:
        box = {"x": 10, "y": 10, "width": 5, "height": 5, "confidence": 0.9, "class": "face", "landmarks": []}
        return {"face": box, "yaw": yaw, "pitch": pitch}

    frames = [
        {"predictions": [face(-0.5, 0.1), face(0.2, -0.3)]},
        {"predictions": []},
        None,
        {"predictions": [face(0.4, 0.2)]},
    ]
    gaze = summarize_result(
        write_result(tmp_path / "r.json", {"gaze": frames}), inference_types={"gaze": "gaze-detection"}
    )

    model = gaze["models"]["gaze"]
    assert (model["predictions"], model["frames_with_predictions"], model["faces_per_frame"]) == (3, 2, 1.0)
    assert model["max_objects"]["count"] == 2 and model["max_objects"]["frame_index"] == 0
    assert model["yaw"] == {"min": -0.5, "max": 0.4, "mean": pytest.approx(0.1 / 3)}
    assert model["pitch"] == {"min": -0.3, "max": 0.2, "mean": pytest.approx(0.0)}
    assert model["angles"] == "radians"

"""One result schema: the records the local server writes are the records the provider's reader types."""

from __future__ import annotations

import json
import math

import msgspec
import numpy as np
import pytest

from airflow_provider_videoinfer.results.reader import ResultReader
from videoinfer_contract.results import (
    Classification,
    ClassPrediction,
    Detection,
    Detections,
    Embedding,
    Face,
    Gaze,
    GazeResult,
    Image,
    Keypoint,
    KeypointDetections,
    Point,
    SegmentationMask,
    SegmentedDetections,
    SemanticSegmentation,
    encode_frame_result,
)
from videoinfer_server.models.base import VideoFrame
from videoinfer_server.result_file import ResultWriter

IMAGE = Image(640, 480)
BOX = Detection(10.5, 20.0, 30.0, 40.0, 0.9, "car", 0, "d-1")


def records(n: int) -> dict[str, object]:
    """The ``n``-th frame's record of one model of every task type."""
    return {
        "cars": Detections(time=0.01, image=IMAGE, predictions=(BOX,) * (n % 3)),
        "blobs": SegmentedDetections(
            time=0.02,
            image=IMAGE,
            predictions=(Detection(5, 6, 7, 8, 0.5, "blob", 1, "d-2", points=(Point(1, 2), Point(3.5, 4))),),
        ),
        "poses": KeypointDetections(
            time=0.03,
            image=IMAGE,
            predictions=(Detection(5, 6, 7, 8, 0.5, "person", 0, "d-3", keypoints=(Keypoint(1, 2, 0.8, "nose", 0),)),),
        ),
        "scene": Classification(
            time=0.04,
            image=IMAGE,
            predictions=(
                ClassPrediction(class_name="day", class_id=0, confidence=0.75),
                ClassPrediction(class_name="night", class_id=1, confidence=0.25),
            ),
            top="day",
            confidence=0.75,
        ),
        "road": SemanticSegmentation(
            time=0.05, image=IMAGE, predictions=SegmentationMask("iVBORw0KGgo=", {0: "background", 1: "road"}, "AAAA")
        ),
        "gaze": GazeResult(
            time=0.06,
            predictions=(Gaze(Face(100, 120, 50, 60, 0.95, "face", 0, (Point(90, 110), Point(110, 110))), 0.25, -0.1),),
        ),
        "clip": Embedding((0.6, -0.8, float(n))),
        "flaky": None if n % 2 else Detections(time=0.0, image=IMAGE, predictions=()),
    }


def test_what_the_server_writes_the_reader_types_back_identically(tmp_path):
    written = [records(n) for n in range(5)]
    writer = ResultWriter(tmp_path / "spool", list(written[0]))
    for n, frame in enumerate(written):
        image = np.zeros((2, 2, 3), np.uint8)
        writer.add(
            VideoFrame(image, n * 6, n / 4),
            [b"null" if r is None else encode_frame_result(r) for r in frame.values()],
        )
    writer.finish(tmp_path / "result.json")

    with ResultReader(tmp_path / "result.json") as reader:
        frames = list(reader)
    assert [(f.frame_offset, f.time_offset) for f in frames] == [(n * 6, n / 4) for n in range(5)]
    assert [f.results for f in frames] == written
    # Types follow the records' classes: no hint needed, even for a first frame without predictions.
    assert [type(f.results["cars"]) for f in frames] == [Detections] * 5


def test_records_are_written_in_the_contract_shape():
    detections = encode_frame_result(Detections(time=0.01, image=IMAGE, predictions=(BOX,)))
    assert detections == (
        b'{"time":0.01,"image":{"width":640,"height":480},"predictions":[{"x":10.5,"y":20.0,"width":30.0,'
        b'"height":40.0,"confidence":0.9,"class":"car","class_id":0,"detection_id":"d-1"}]}'
    )
    # The contract's lists are written even when empty; fields left at None are not written at all.
    assert encode_frame_result(Detections(predictions=())) == b'{"predictions":[]}'
    assert encode_frame_result(GazeResult(predictions=())) == b'{"predictions":[]}'
    assert encode_frame_result(Detection(1, 2, 3, 4, 0.5)) == b'{"x":1,"y":2,"width":3,"height":4,"confidence":0.5}'
    # CLIP: the bare list; semantic segmentation: class ids as the object's string keys.
    assert encode_frame_result(Embedding((0.5, -0.25))) == b"[0.5,-0.25]"
    mask = SemanticSegmentation(predictions=SegmentationMask("PNG", {0: "background", 1: "road"}))
    assert json.loads(encode_frame_result(mask)) == {
        "predictions": {"segmentation_mask": "PNG", "class_map": {"0": "background", "1": "road"}}
    }
    gaze = json.loads(encode_frame_result(records(0)["gaze"]))
    assert set(gaze["predictions"][0]) == {"face", "yaw", "pitch"}
    assert set(gaze["predictions"][0]["face"]) == {
        "x",
        "y",
        "width",
        "height",
        "confidence",
        "class",
        "class_id",
        "landmarks",
    }


@pytest.mark.parametrize(
    "result",
    [
        Detections(predictions=(Detection(1, 2, 3, 4, math.nan),)),
        Classification(top="a", confidence=math.inf),
        Embedding((0.5, -math.inf)),
        {"time": 0.1, "predictions": [{"x": float("nan")}]},
        [np.float32("nan")],
    ],
)
def test_nan_and_infinity_are_refused(result):
    with pytest.raises(ValueError, match="NaN or an infinity"):
        encode_frame_result(result)


def test_plain_json_values_and_numpy_numbers_are_written_as_they_are():
    value = {"time": np.float64(0.5), "top": "null", "class_id": np.int64(3), "vector": np.array([1.5, 2.0]), "n": None}
    assert json.loads(encode_frame_result(value)) == {
        "time": 0.5,
        "top": "null",
        "class_id": 3,
        "vector": [1.5, 2.0],
        "n": None,
    }
    with pytest.raises(TypeError):
        encode_frame_result({"a": object()})


def test_a_record_decodes_from_the_json_it_encodes_to():
    for name, record in records(1).items():
        if record is None or isinstance(record, Embedding):
            continue
        assert msgspec.json.decode(encode_frame_result(record), type=type(record)) == record, name

"""Video processing on generated videos with known ground truth."""

from __future__ import annotations

import base64
import math
from fractions import Fraction

import cv2
import numpy as np
import pytest
from helpers import assert_written_as_records

from videoinfer_server.sample import make_sample_video

ALL_MODELS = [
    ("people-detection", "object-detection"),
    ("face-detection", "object-detection"),
    ("motion-detection", "object-detection"),
    ("motion-segmentation", "instance-segmentation"),
    ("foreground-segmentation", "semantic-segmentation"),
    ("motion-classification", "classification"),
    ("sharpness-classification", "classification"),
    ("face-keypoints", "keypoint-detection"),
]
BOX_KEYS = {"x", "y", "width", "height", "confidence", "class", "class_id", "detection_id"}


def model(model_id, inference_type, **params):
    spec = {"model_id": model_id, "model_version": "1", "inference_type": inference_type}
    if params:
        spec["inference_params"] = params
    return spec


def iou(a, b):
    """IoU of two (x, y, w, h) top-left boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def expected_offsets(rate: str, infer_fps: int, frame_count: int):
    """The documented rule, written independently: frame ceil(k * fps / infer_fps) for k = 0, 1, ...,
    at time round(frame / fps, 4), with ``fps`` the decimal rate the decoder reports."""
    fps = Fraction(rate)
    frames = []
    k = 0
    while (i := math.ceil(k * fps / infer_fps)) < frame_count:
        frames.append(i)
        k += 1
    return frames, [round(i / float(rate), 4) for i in frames]


@pytest.mark.parametrize(
    ("video", "rate", "infer_fps", "first_frames", "first_times"),
    [
        ("24", "24", 4, [0, 6, 12, 18], [0.0, 0.25, 0.5, 0.75]),
        (
            "24",
            "24",
            7,
            [0, 4, 7, 11, 14, 18, 21, 24],
            [0.0, 0.1667, 0.2917, 0.4583, 0.5833, 0.75, 0.875, 1.0],
        ),
        ("23.976", "23.976", 4, [0, 6, 12, 18, 24], [0.0, 0.2503, 0.5005, 0.7508, 1.001]),
        ("23.976", "23.976", 5, [0, 5, 10, 15, 20, 24], [0.0, 0.2085, 0.4171, 0.6256, 0.8342, 1.001]),
        ("29.97", "29.97", 10, [0, 3, 6, 9], [0.0, 0.1001, 0.2002, 0.3003]),
        ("29.97", "29.97", 4, [0, 8, 15, 23, 30], [0.0, 0.2669, 0.5005, 0.7674, 1.001]),
    ],
)
def test_frame_and_time_offsets_are_exact(api, videos, video, rate, infer_fps, first_frames, first_times):
    truth = videos[video]
    assert cv2.VideoCapture(str(truth.path)).get(cv2.CAP_PROP_FPS) == float(rate)
    result = api.run(truth.path, infer_fps, [model("sharpness-classification", "classification")])
    frames, times = expected_offsets(rate, infer_fps, truth.frame_count)
    assert result["frame_offset"][: len(first_frames)] == first_frames
    assert result["time_offset"][: len(first_times)] == first_times
    assert result["frame_offset"] == frames
    assert result["time_offset"] == times
    assert len(result["sharpness-classification"]) == len(frames)


@pytest.mark.parametrize("infer_fps", [4, 10])
def test_motion_boxes_are_where_the_rectangles_are(api, videos, infer_fps):
    truth = videos["24"]
    result = api.run(
        truth.path,
        infer_fps,
        [
            model("motion-detection", "object-detection"),
            model("motion-segmentation", "instance-segmentation"),
        ],
    )
    matched = total = true_predictions = predictions = 0
    # The first two sampled frames have no background yet (documented warm-up).
    for n, frame_index in enumerate(result["frame_offset"][2:], start=2):
        detection = result["motion-detection"][n]
        boxes = [
            (p["x"] - p["width"] / 2, p["y"] - p["height"] / 2, p["width"], p["height"])
            for p in detection["predictions"]
        ]
        for true_box in truth.boxes[frame_index]:
            total += 1
            matched += any(iou(true_box, box) >= 0.5 for box in boxes)
        predictions += len(boxes)
        true_predictions += sum(any(iou(t, box) >= 0.5 for t in truth.boxes[frame_index]) for box in boxes)
        for p in result["motion-segmentation"][n]["predictions"]:
            assert set(p) == BOX_KEYS | {"points"}
            assert len(p["points"]) >= 3
            for point in p["points"]:
                assert p["x"] - p["width"] / 2 - 1 <= point["x"] <= p["x"] + p["width"] / 2 + 1
    assert matched / total >= 0.75, f"only {matched}/{total} rectangles found"
    assert true_predictions / predictions >= 0.6, f"only {true_predictions}/{predictions} boxes are rectangles"


def _png(data: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED)


def test_every_builtin_model_writes_its_contract_shape(api, videos):
    truth = videos["24"]
    result = api.run(truth.path, 4, [model(m, t) for m, t in ALL_MODELS])
    assert list(result) == ["frame_offset", "time_offset", *[m for m, _ in ALL_MODELS]]
    assert_written_as_records(result, ALL_MODELS)
    count = len(result["frame_offset"])
    for model_id, inference_type in ALL_MODELS:
        frames = result[model_id]
        assert len(frames) == count
        for frame in frames:
            assert frame is not None, model_id
            assert frame["image"] == {"width": 320, "height": 240}
            assert isinstance(frame["time"], float)
            if inference_type in ("object-detection", "instance-segmentation", "keypoint-detection"):
                for p in frame["predictions"]:
                    assert set(p) >= BOX_KEYS
                    if inference_type == "keypoint-detection":
                        for k in p["keypoints"]:
                            assert set(k) == {"x", "y", "confidence", "class", "class_id"}
            elif inference_type == "classification":
                classes = [p["class"] for p in frame["predictions"]]
                assert frame["top"] == classes[0]
                assert frame["confidence"] == frame["predictions"][0]["confidence"]
                assert all(set(p) == {"class", "class_id", "confidence"} for p in frame["predictions"])
    # Rectangles are moving from the third sampled frame on.
    assert all(f["top"] == "moving" for f in result["motion-classification"][2:])
    assert result["motion-classification"][0]["top"] == "still"
    assert all(f["top"] == "sharp" for f in result["sharpness-classification"])
    # The foreground mask covers the rectangles.
    n = 6
    segmentation = result["foreground-segmentation"][n]["predictions"]
    assert segmentation["class_map"] == {"0": "background", "1": "foreground"}
    mask = _png(segmentation["segmentation_mask"])
    confidence = _png(segmentation["confidence_mask"])
    assert mask.shape == confidence.shape == (240, 320)
    assert set(np.unique(mask)) <= {0, 1}
    for x, y, w, h in truth.boxes[result["frame_offset"][n]]:
        assert mask[y : y + h, x : x + w].mean() > 0.7
    assert mask.mean() < 0.2


def test_blurry_video_is_classified_blurry(api, tmp_path):
    truth = make_sample_video(tmp_path / "sharp.mp4", seconds=1)
    reader = cv2.VideoCapture(str(truth.path))
    writer = cv2.VideoWriter(str(tmp_path / "blurry.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), 24.0, truth.size)
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        writer.write(cv2.GaussianBlur(frame, (21, 21), 8))
    writer.release()
    result = api.run(tmp_path / "blurry.mp4", 4, [model("sharpness-classification", "classification")])
    assert all(f["top"] == "blurry" for f in result["sharpness-classification"])


def test_confidence_threshold_is_honoured(api, videos):
    strict = model("motion-detection", "object-detection", confidence=1.01)
    result = api.run(videos["24"].path, 4, [strict])
    assert all(f["predictions"] == [] for f in result["motion-detection"])


@pytest.mark.parametrize("kind", ["random", "truncated", "empty"])
def test_corrupt_video_fails_with_code_3_and_server_keeps_serving(api, videos, tmp_path, kind):
    bad = tmp_path / "bad.mp4"
    if kind == "random":
        bad.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        bad.write_bytes(videos["24"].path.read_bytes()[:20_000])
    else:
        bad.write_bytes(b"")
    state = api.wait(api.submit(api.upload(bad), 4))
    assert state["status"] == 3, state
    assert "video" in state["error"]
    assert api.run(videos["short"].path, 4)["frame_offset"] == [0, 6, 12, 18]

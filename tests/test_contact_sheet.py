"""Contact sheets: which frames are shown, what is drawn where, and a video that cannot be read."""

from __future__ import annotations

import base64
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.results import VideoInferResultsOperator
from airflow_provider_videoinfer.results.contact_sheet import (
    TILE_WIDTH,
    _colour,
    contact_sheet_location,
    draw_frame,
    make_contact_sheet,
    pick_frames,
)
from videoinfer_contract.results import Classification, Detection, Detections, ResultFrame
from videoinfer_server.sample import make_sample_video


def _frame(index: int, boxes: list[tuple[float, float, int, int]], fps: float = 10.0) -> ResultFrame:
    detections = tuple(Detection(x, y, w, h, 0.9, "box", 0, None) for x, y, w, h in boxes)
    return ResultFrame(index, index, index / fps, {"detector": Detections(predictions=detections)})


def test_one_busiest_frame_per_part_of_the_video_in_video_order():
    counts = [0, 1, 3, 1, 0, 0, 2, 2, 0, 5, 1, 0]  # 4 parts of 3 frames: best 2, 3, 6 (tie: the earlier), 9
    frames = [_frame(n, [(10, 10, 4, 4)] * count) for n, count in enumerate(counts)]
    picked = pick_frames(frames, count=4)
    assert [(objects, frame.index) for objects, frame in picked] == [(3, 2), (1, 3), (2, 6), (5, 9)]


def test_parts_where_nothing_was_found_are_left_out_unless_nothing_was_found_anywhere():
    frames = [_frame(n, [(10, 10, 4, 4)] if n == 7 else []) for n in range(12)]
    assert [frame.index for _, frame in pick_frames(frames, count=4)] == [7]
    empty = [
        ResultFrame(n, n * 3, n / 10, {"classifier": Classification(top="still", confidence=0.9)}) for n in range(12)
    ]
    assert [frame.index for _, frame in pick_frames(empty, count=4)] == [0, 3, 6, 9]


def test_without_a_length_the_busiest_frames_are_kept():
    counts = [1, 4, 0, 2, 4, 3]
    picked = pick_frames((_frame(n, [(10, 10, 4, 4)] * c) for n, c in enumerate(counts)), count=3)
    assert [frame.index for _, frame in picked] == [1, 4, 5]


def test_frames_are_drawn_where_the_results_say(tmp_path):
    truth = make_sample_video(tmp_path / "clip.mp4", seconds=2.0, fps=10.0, size=(TILE_WIDTH, 240), objects=3)
    frames = [_frame(n, truth.centre_boxes(n)) for n in range(truth.frame_count)]
    target = tmp_path / "sheet.png"

    shown = make_contact_sheet(frames, truth.path, target, count=4)

    assert shown is not None and shown["location"] == str(target)
    assert [tile["objects"] for tile in shown["frames"]] == [3, 3, 3, 3]
    sheet = cv2.imread(str(target))
    # Two rows of up to three tiles, each a banner over the frame at its own size (no scaling).
    assert sheet.shape[1] == 3 * TILE_WIDTH + 4 * 4
    first = shown["frames"][0]["frame_offset"]
    banner = 22
    x, y, w, h = truth.boxes[first][0]
    edge = sheet[4 + banner + y + h // 2, 4 + x]  # the middle of the box's left edge, in the first tile
    assert tuple(int(c) for c in edge) == _colour("box")


def test_a_video_that_cannot_be_read_is_logged_and_skipped(tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with caplog.at_level(logging.WARNING):
        assert make_contact_sheet([_frame(0, [(5, 5, 2, 2)])], broken, tmp_path / "sheet.png") is None
        assert make_contact_sheet([_frame(0, [(5, 5, 2, 2)])], tmp_path / "missing.mp4", tmp_path / "s.png") is None
    assert "cannot be read" in caplog.text and str(broken) in caplog.text
    assert not (tmp_path / "sheet.png").exists()


def test_without_opencv_it_says_which_extra_to_install(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # an uninstalled package: nothing real can make that here
    with caplog.at_level(logging.WARNING):
        assert make_contact_sheet([_frame(0, [(5, 5, 2, 2)])], tmp_path / "v.mp4", tmp_path / "s.png") is None
    assert "airflow-provider-videoinfer[contact-sheet]" in caplog.text


def test_kept_beside_the_result():
    assert str(contact_sheet_location("/data/run-1/result.json")) == "/data/run-1/result.contact-sheet.png"
    assert str(contact_sheet_location("s3://bucket/run-1/result.json")).endswith(
        "bucket/run-1/result.contact-sheet.png"
    )


@pytest.fixture
def finished_job(videoinfer_conn, sample_video) -> str:
    hook = VideoInferHook()
    model = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
    job_id = hook.submit_job(hook.upload_video(sample_video), 5, [model])
    return hook.wait_for_job(job_id, poll_interval=0.2, timeout=60).output_url


def test_the_results_operator_keeps_a_contact_sheet_beside_the_result(finished_job, sample_video, tmp_path):
    operator = VideoInferResultsOperator(
        task_id="results", output_url=finished_job, destination=str(tmp_path / "job.json"), video=str(sample_video)
    )
    summary = operator.execute(context={})  # type: ignore[arg-type]
    sheet = summary["contact_sheet"]
    assert sheet["location"] == str(tmp_path / "job.contact-sheet.png")
    assert Path(sheet["location"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sheet["frames"] and all(tile["objects"] > 0 for tile in sheet["frames"])


def test_an_unreadable_video_leaves_the_summary_intact(finished_job, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(1).bytes(4096))
    plain = VideoInferResultsOperator(task_id="plain", output_url=finished_job, destination=str(tmp_path / "a.json"))
    with_video = VideoInferResultsOperator(
        task_id="results", output_url=finished_job, destination=str(tmp_path / "b.json"), video=str(broken)
    )
    expected = plain.execute(context={})  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        summary = with_video.execute(context={})  # type: ignore[arg-type]
    assert summary.pop("contact_sheet") is None
    assert summary["models"] == expected["models"] and summary["frames"] == expected["frames"]
    assert "No contact sheet: the video" in caplog.text and "broken.mp4" in caplog.text


def test_an_empty_video_means_no_contact_sheet(finished_job, tmp_path):
    """The folder example passes "" for a video left in its bucket (Airflow 3.0 keeps no None in XCom)."""
    operator = VideoInferResultsOperator(
        task_id="results", output_url=finished_job, destination=str(tmp_path / "job.json"), video=""
    )
    summary = operator.execute(context={})  # type: ignore[arg-type]
    assert "contact_sheet" not in summary and summary["frames"] > 0
    assert not (tmp_path / "job.contact-sheet.png").exists()


def test_masks_polygons_keypoints_and_gaze_are_drawn():
    from videoinfer_contract.results import (
        Face,
        Gaze,
        GazeResult,
        Keypoint,
        KeypointDetections,
        Point,
        SegmentationMask,
        SegmentedDetections,
        SemanticSegmentation,
    )

    mask = np.zeros((60, 120), np.uint8)
    mask[:, 60:] = 1  # the right half is class 1, "road"
    png = cv2.imencode(".png", mask)[1].tobytes()

    polygon = (Point(10, 10), Point(50, 10), Point(50, 50), Point(10, 50))
    keypoint = (Keypoint(100, 100, 0.9, "nose", 0),)
    frame = ResultFrame(
        0,
        0,
        0.0,
        {
            "road": SemanticSegmentation(
                predictions=SegmentationMask(base64.b64encode(png).decode(), {0: "background", 1: "road"})
            ),
            "shapes": SegmentedDetections(
                predictions=(Detection(30, 30, 40, 40, 0.8, "blob", 0, None, points=polygon),)
            ),
            "pose": KeypointDetections(
                predictions=(Detection(100, 100, 20, 20, 0.7, "person", 0, None, None, keypoint),)
            ),
            "gaze": GazeResult(
                predictions=(
                    Gaze(Face(300, 150, 60, 60, 0.9, landmarks=(Point(290, 140), Point(310, 140))), 0.3, -0.2),
                )
            ),
        },
    )
    image = np.zeros((240, TILE_WIDTH, 3), np.uint8)
    tile = draw_frame(image, frame, objects=3)
    body = tile[tile.shape[0] - 240 :]
    assert body[200, 400].any() and not body[200, 100].any()  # the mask's right half only
    assert tuple(int(c) for c in body[30, 30]) != (0, 0, 0)  # the polygon is filled
    assert tuple(int(c) for c in body[100, 100]) == _colour("person")  # the keypoint
    assert tuple(int(c) for c in body[150, 270]) == _colour("face")  # the face box's left edge

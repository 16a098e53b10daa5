"""The one rule for ``inference_params`` shared by the built-in models, and gaze without a face outline."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from videoinfer_server.models import VideoContext, VideoFrame, build_registry
from videoinfer_server.models.base import param_float, param_int
from videoinfer_server.sample import draw_face


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 0.5),
        ({"confidence": 0.25}, 0.25),
        ({"confidence": "0.25"}, 0.25),
        ({"confidence": 7}, 7.0),
        ({"confidence": "high"}, 0.5),
        ({"confidence": None}, 0.5),
        ({"confidence": True}, 0.5),
        ({"confidence": float("nan")}, 0.5),
        ({"confidence": float("inf")}, 0.5),
        ({"confidence": [0.2]}, 0.5),
        ({"confidence": -1}, 0.5),
        ({"other": 0.1}, 0.5),
    ],
)
def test_param_float_falls_back_to_the_default(params, expected, caplog):
    with caplog.at_level(logging.WARNING):
        assert param_float(params, "confidence", 0.5, minimum=0.0) == expected
    warned = any("inference_params.confidence=" in r.getMessage() for r in caplog.records)
    assert warned == ("confidence" in params and expected == 0.5)


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("4", 4), (2.5, 2), (0, 2), ("x", 2)])
def test_param_int_needs_a_whole_number_at_least_the_minimum(value, expected):
    assert param_int({"fail_every": value}, "fail_every", 2, minimum=1) == expected


def test_gaze_on_a_background_of_skin_colour_falls_back_to_the_box():
    image = np.full((240, 320, 3), (150, 175, 215), np.uint8)  # the drawn faces' skin colour
    image[:, :40] = 60  # something else somewhere, so the frame is not flat
    drawn = draw_face(image, (160.0, 120.0), 100.0, yaw=0.2)
    gaze = build_registry(load_entry_points=False).resolve("gaze", "1", "gaze-detection")
    opened = gaze.open({}, VideoContext(fps=24.0, infer_fps=4, width=320, height=240))
    result = getattr(opened, "infer", opened)(VideoFrame(image=image, index=0, time=0.0))
    assert len(result.predictions) == 1, result
    prediction = result.predictions[0]
    landmarks = [(p.x, p.y) for p in prediction.face.landmarks]
    assert all(math.dist(found, eye) < 3 for found, eye in zip(landmarks, drawn.eyes, strict=True))
    # Without an outline the angles come from the detector's box, which follows the eyes: the sign
    # holds, the size is understated.
    assert 0 < prediction.yaw < drawn.yaw
    assert abs(prediction.pitch) < 0.1

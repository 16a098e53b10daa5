"""Models for tests: a slow one and one failing on some frames, to exercise the server's job handling.

Load them with ``models=["videoinfer_server.models.testing:testing_models"]`` (or
``videoinfer-server --model videoinfer_server.models.testing:testing_models``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from videoinfer_contract.results import Detections
from videoinfer_server.models.base import (
    ModelDefinition,
    VideoContext,
    VideoFrame,
    detections_result,
    param_float,
    param_int,
)

TESTING_MODELS = "videoinfer_server.models.testing:testing_models"
"""The ``module:callable`` string that loads these models."""


class _SlowModel:
    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._delay = param_float(params, "delay", 0.05, minimum=0.0)

    def infer(self, frame: VideoFrame) -> Detections:
        time.sleep(self._delay)
        return detections_result(frame, [], self._delay)


class _FlakyModel:
    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._every = param_int(params, "fail_every", 2, minimum=1)

    def infer(self, frame: VideoFrame) -> Detections:
        if frame.index % self._every == 0:
            raise RuntimeError("flaky model fails on purpose")
        return detections_result(frame, [], 0.0)


def testing_models() -> list[ModelDefinition]:
    """Models for tests, loaded with ``models=[TESTING_MODELS]``.

    ``slow-test`` (object-detection) sleeps ``delay`` seconds per frame (default 0.05) and finds
    nothing; ``flaky-test`` (object-detection) raises on frames whose index is a multiple of
    ``fail_every`` (default 2).
    """
    return [
        ModelDefinition("slow-test", "object-detection", _SlowModel, description="sleeps per frame (tests)"),
        ModelDefinition("flaky-test", "object-detection", _FlakyModel, description="fails some frames (tests)"),
    ]

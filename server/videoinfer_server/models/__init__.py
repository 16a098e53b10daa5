"""Models of the local server: the protocol, the registry and the built-ins."""

from __future__ import annotations

from videoinfer_server.models.base import (
    FrameModel,
    ModelDefinition,
    VideoContext,
    VideoFrame,
    VideoModel,
    box_prediction,
    classification_result,
    detections_result,
    simple_model,
)
from videoinfer_server.models.registry import (
    ENTRY_POINT_GROUP,
    ModelRegistry,
    build_registry,
    load_provider,
)

BUILTIN_MODEL_IDS = (
    "people-detection",
    "face-detection",
    "motion-detection",
    "motion-segmentation",
    "foreground-segmentation",
    "motion-classification",
    "sharpness-classification",
    "face-keypoints",
    "clip",
    "gaze",
)

__all__ = [
    "BUILTIN_MODEL_IDS",
    "ENTRY_POINT_GROUP",
    "VideoFrame",
    "FrameModel",
    "ModelDefinition",
    "ModelRegistry",
    "VideoContext",
    "VideoModel",
    "box_prediction",
    "build_registry",
    "classification_result",
    "detections_result",
    "load_provider",
    "simple_model",
]

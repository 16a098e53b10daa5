"""Built-in models on still frames: people (HOG), faces and eyes (Haar cascades, see ``faces.py``), sharpness.

Classic computer vision on the CPU, shipped with OpenCV, nothing downloaded. Confidences are
heuristic mappings of the detectors' scores into [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from videoinfer_contract.results import Classification, Detections, Keypoint
from videoinfer_server.models.base import (
    ModelDefinition,
    VideoContext,
    VideoFrame,
    box_prediction,
    classification_result,
    detections_result,
    param_float,
)
from videoinfer_server.models.faces import FaceFinder, gray, squash


class PeopleDetector:
    """``people-detection``: OpenCV's default HOG + linear SVM pedestrian detector.

    Params: ``confidence`` (default 0.5).
    """

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        import cv2

        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self._threshold = param_float(params, "confidence", 0.5)

    def infer(self, frame: VideoFrame) -> Detections:
        started = time.perf_counter()
        rects, weights = self._hog.detectMultiScale(frame.image, winStride=(8, 8), padding=(8, 8), scale=1.05)
        predictions = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights) if len(rects) else [], strict=True):
            confidence = squash(weight)
            if confidence >= self._threshold:
                predictions.append(box_prediction(x, y, w, h, confidence, "person", 0))
        return detections_result(frame, predictions, time.perf_counter() - started)


class FaceDetector:
    """``face-detection``: Haar cascade of frontal faces. Params: ``confidence`` (default 0.5)."""

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._finder = FaceFinder(params, context)

    def infer(self, frame: VideoFrame) -> Detections:
        started = time.perf_counter()
        predictions = [box_prediction(*face.box, face.confidence, "face", 0) for face in self._finder.faces(frame)]
        return detections_result(frame, predictions, time.perf_counter() - started)


class FaceKeypoints:
    """``face-keypoints``: faces with ``left_eye``/``right_eye`` keypoints (Haar eye cascade).

    Eyes are searched in the upper half of each face (see :func:`.faces.find_eyes`); an eye not found
    is left out of the list.
    Params: ``confidence`` (default 0.5).
    """

    KEYPOINTS = ("left_eye", "right_eye")

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._finder = FaceFinder(params, context)

    def infer(self, frame: VideoFrame) -> Detections:
        started = time.perf_counter()
        predictions = []
        for face in self._finder.faces(frame):
            # Named by image side: the image-left eye is the person's right eye.
            eyes = self._finder.eyes(frame, face)
            keypoints = tuple(
                _keypoint(eye, name, class_id)
                for class_id, (name, eye) in enumerate(zip(self.KEYPOINTS, eyes, strict=True))
                if eye is not None
            )
            predictions.append(box_prediction(*face.box, face.confidence, "face", 0, keypoints=keypoints))
        return detections_result(frame, predictions, time.perf_counter() - started, "keypoint-detection")


def _keypoint(centre: tuple[float, float], name: str, class_id: int) -> Keypoint:
    return Keypoint(round(centre[0], 1), round(centre[1], 1), 1.0, name, class_id)


class SharpnessClassifier:
    """``sharpness-classification``: ``sharp`` or ``blurry`` from the variance of the Laplacian.

    Params: ``threshold`` (variance at which both classes are equally likely, default 100).
    """

    CLASS_IDS = {"blurry": 0, "sharp": 1}

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._threshold = max(1e-6, param_float(params, "threshold", 100.0))

    def infer(self, frame: VideoFrame) -> Classification:
        import cv2

        started = time.perf_counter()
        variance = float(cv2.Laplacian(gray(frame), cv2.CV_64F).var())
        sharp = variance / (variance + self._threshold)
        scores = {"sharp": sharp, "blurry": 1.0 - sharp}
        return classification_result(frame, scores, self.CLASS_IDS, time.perf_counter() - started)


def still_frame_models() -> list[ModelDefinition]:
    """The built-in models that look at one frame at a time."""
    return [
        ModelDefinition(
            "people-detection", "object-detection", PeopleDetector, description="People (OpenCV HOG + SVM)"
        ),
        ModelDefinition("face-detection", "object-detection", FaceDetector, description="Frontal faces (Haar)"),
        ModelDefinition(
            "face-keypoints",
            "keypoint-detection",
            FaceKeypoints,
            description="Faces with eye keypoints (Haar)",
        ),
        ModelDefinition(
            "sharpness-classification",
            "classification",
            SharpnessClassifier,
            description="sharp/blurry from Laplacian variance",
        ),
    ]

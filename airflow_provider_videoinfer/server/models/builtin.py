"""Built-in models on still frames: people (HOG), faces and eyes (Haar cascades), sharpness.

Classic computer vision on the CPU, shipped with OpenCV, nothing downloaded. Confidences are
heuristic mappings of the detectors' scores into [0, 1].
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from airflow_provider_videoinfer.server.models.base import (
    ModelDefinition,
    VideoContext,
    VideoFrame,
    box_prediction,
    classification_result,
    image_result,
    param_float,
)


def _squash(score: float) -> float:
    """Map a detector score (unbounded, 0 = undecided) into (0, 1)."""
    return 1.0 / (1.0 + math.exp(-float(score)))


def _gray(frame: VideoFrame) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)


def _cascade(name: str) -> Any:
    import cv2

    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
    if classifier.empty():
        raise RuntimeError(f"OpenCV's cascade {name} could not be loaded")
    return classifier


class PeopleDetector:
    """``people-detection``: OpenCV's default HOG + linear SVM pedestrian detector.

    Params: ``confidence`` (default 0.5).
    """

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        import cv2

        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self._threshold = param_float(params, "confidence", 0.5)

    def infer(self, frame: VideoFrame) -> dict[str, Any]:
        started = time.perf_counter()
        rects, weights = self._hog.detectMultiScale(frame.image, winStride=(8, 8), padding=(8, 8), scale=1.05)
        predictions = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights) if len(rects) else [], strict=True):
            confidence = _squash(weight)
            if confidence >= self._threshold:
                predictions.append(box_prediction(x, y, w, h, confidence, "person", 0))
        return image_result(frame, predictions, time.perf_counter() - started)


def _detect_faces(classifier: Any, gray: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
    min_side = max(20, min(gray.shape[:2]) // 20)
    rects, _levels, weights = classifier.detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
    )
    if len(rects) == 0:
        return []
    pairs = zip(rects, np.ravel(weights), strict=True)
    return [((int(r[0]), int(r[1]), int(r[2]), int(r[3])), _squash(weight)) for r, weight in pairs]


class FaceDetector:
    """``face-detection``: Haar cascade of frontal faces. Params: ``confidence`` (default 0.5)."""

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._faces = _cascade("haarcascade_frontalface_default.xml")
        self._threshold = param_float(params, "confidence", 0.5)

    def infer(self, frame: VideoFrame) -> dict[str, Any]:
        started = time.perf_counter()
        predictions = [
            box_prediction(*rect, confidence, "face", 0)
            for rect, confidence in _detect_faces(self._faces, _gray(frame))
            if confidence >= self._threshold
        ]
        return image_result(frame, predictions, time.perf_counter() - started)


class FaceKeypoints:
    """``face-keypoints``: faces with ``left_eye``/``right_eye`` keypoints (Haar eye cascade).

    Eyes are searched in the upper half of each face; an eye not found is left out of the list.
    Params: ``confidence`` (default 0.5).
    """

    KEYPOINTS = ("left_eye", "right_eye")

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._faces = _cascade("haarcascade_frontalface_default.xml")
        self._eyes = _cascade("haarcascade_eye.xml")
        self._threshold = param_float(params, "confidence", 0.5)

    def infer(self, frame: VideoFrame) -> dict[str, Any]:
        started = time.perf_counter()
        gray = _gray(frame)
        predictions = []
        for (x, y, w, h), confidence in _detect_faces(self._faces, gray):
            if confidence < self._threshold:
                continue
            prediction = box_prediction(x, y, w, h, confidence, "face", 0)
            roi = gray[y : y + h // 2, x : x + w]
            eyes = self._eyes.detectMultiScale(
                roi, scaleFactor=1.1, minNeighbors=3, minSize=(max(4, w // 10),) * 2
            )
            centres = sorted((ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in eyes)[:2] if len(eyes) else []
            keypoints: list[dict[str, Any]] = []
            for cx, cy in centres:
                # Image-left eye is the person's right eye; name them by image side, documented.
                name = "left_eye" if cx < w / 2 else "right_eye"
                if any(k["class"] == name for k in keypoints):
                    continue
                keypoints.append(
                    {
                        "x": round(x + cx, 1),
                        "y": round(y + cy, 1),
                        "confidence": 1.0,
                        "class": name,
                        "class_id": self.KEYPOINTS.index(name),
                    }
                )
            prediction["keypoints"] = keypoints
            predictions.append(prediction)
        return image_result(frame, predictions, time.perf_counter() - started)


class SharpnessClassifier:
    """``sharpness-classification``: ``sharp`` or ``blurry`` from the variance of the Laplacian.

    Params: ``threshold`` (variance at which both classes are equally likely, default 100).
    """

    CLASS_IDS = {"blurry": 0, "sharp": 1}

    def __init__(self, params: Mapping[str, Any], context: VideoContext) -> None:
        self._threshold = max(1e-6, param_float(params, "threshold", 100.0))

    def infer(self, frame: VideoFrame) -> dict[str, Any]:
        import cv2

        started = time.perf_counter()
        variance = float(cv2.Laplacian(_gray(frame), cv2.CV_64F).var())
        sharp = variance / (variance + self._threshold)
        scores = {"sharp": sharp, "blurry": 1.0 - sharp}
        result = classification_result(frame, scores, self.CLASS_IDS, time.perf_counter() - started)
        result["laplacian_variance"] = round(variance, 2)
        return result


def still_frame_models() -> list[ModelDefinition]:
    """The built-in models that look at one frame at a time."""
    return [
        ModelDefinition(
            "people-detection", "object-detection", PeopleDetector, description="People (OpenCV HOG + SVM)"
        ),
        ModelDefinition(
            "face-detection", "object-detection", FaceDetector, description="Frontal faces (Haar)"
        ),
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

"""Built-in ``clip`` version ``1`` (``clip-embed-image``): a 512-float image embedding. It is not CLIP.

It has the hosted embedding's shape (a bare list of 512 floats, L2-normalised) and its cosine
similarity follows visual content (colours, their layout, edges), so that near-identical frames are
close to 1 and a scene change lowers it clearly. It knows nothing of text or semantics: it cannot be
compared with CLIP text embeddings nor with the hosted model's vectors.

How a frame becomes a vector:

1. the frame is resized to 128x128 and cut into a 4x4 grid of cells;
2. per cell, three histograms: hue (12 bins, each pixel weighted by saturation times value, so that
   greys do not vote for a hue), value (4 bins), and gradient orientation (8 bins over 0-180 degrees,
   weighted by the Sobel gradient magnitude);
3. each histogram is normalised to sum 1, square-rooted (the Hellinger map, so that a few large
   bins do not dominate), and centred by subtracting the square root of a uniform histogram (an
   empty histogram stays all zeros); that gives 384 features;
4. a fixed Gaussian random projection (seed 512, the same for every job and server) maps them to
   512 dimensions, which preserves their cosine similarities approximately (Johnson-Lindenstrauss),
   and the vector is scaled to unit length (an all-zero vector, e.g. from a flat black frame, stays
   zero).

It takes no ``inference_params``; like every built-in model it ignores keys it does not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from videoinfer_contract.results import Embedding
from videoinfer_server.models.base import ModelDefinition, VideoFrame, simple_model

DIMENSIONS = 512
_SIZE = 128
_GRID = 4
_HUE_BINS, _VALUE_BINS, _ORIENTATION_BINS = 12, 4, 8
_SEED = 512


def _histogram(bins: np.ndarray, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    hist = np.bincount(bins.ravel(), weights=None if weights is None else weights.ravel(), minlength=count)
    total = float(hist.sum())
    if total <= 1e-9:
        return np.zeros(count, dtype=np.float64)
    return np.sqrt(hist / total) - np.sqrt(1.0 / count)


def features(image: np.ndarray) -> np.ndarray:
    """The 384 colour and gradient features of a BGR image; see the module docstring."""
    import cv2

    small = cv2.resize(image, (_SIZE, _SIZE), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.float32)
    hue, saturation, value = hsv[..., 0] / 180.0, hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(dx, dy)
    orientation = np.mod(np.arctan2(dy, dx), np.pi) / np.pi
    hue_bins = np.minimum((hue * _HUE_BINS).astype(np.intp), _HUE_BINS - 1)
    value_bins = np.minimum((value * _VALUE_BINS).astype(np.intp), _VALUE_BINS - 1)
    orientation_bins = np.minimum((orientation * _ORIENTATION_BINS).astype(np.intp), _ORIENTATION_BINS - 1)
    colourfulness = saturation * value
    cell = _SIZE // _GRID
    parts = []
    for row in range(_GRID):
        for col in range(_GRID):
            where = (slice(row * cell, (row + 1) * cell), slice(col * cell, (col + 1) * cell))
            parts.append(_histogram(hue_bins[where], _HUE_BINS, colourfulness[where]))
            parts.append(_histogram(value_bins[where], _VALUE_BINS))
            parts.append(_histogram(orientation_bins[where], _ORIENTATION_BINS, magnitude[where]))
    return np.concatenate(parts)


FEATURES = _GRID * _GRID * (_HUE_BINS + _VALUE_BINS + _ORIENTATION_BINS)


@lru_cache(maxsize=1)
def _projection() -> np.ndarray:
    return np.random.default_rng(_SEED).standard_normal((FEATURES, DIMENSIONS))


def embed(image: np.ndarray) -> np.ndarray:
    """The unit-length 512-float embedding of a BGR image."""
    vector = features(image) @ _projection()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-12 else vector


def frame_embedding(frame: VideoFrame, params: Mapping[str, Any]) -> Embedding:
    """The ``clip`` frame result, written as the bare list of floats the hosted service writes (6 decimals)."""
    return Embedding(tuple(round(float(v), 6) for v in embed(frame.image)))


def clip_model() -> ModelDefinition:
    """The built-in ``clip`` model, answering the hosted foundation model's job spec."""
    return simple_model(
        "clip",
        "clip-embed-image",
        frame_embedding,
        description="NOT CLIP: 512-float embedding of colour and edge histograms; similarity follows "
        "visual content, not text semantics",
    )

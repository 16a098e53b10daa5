"""Generate small test videos with known ground truth: moving filled rectangles on a static texture.

Used by the tests, the benchmark and the demo (``videoinfer-server sample OUT.mp4``). The background
is textured and static so that the motion models have a real background to learn; each rectangle
moves in its own horizontal band and bounces off the edges, so rectangles never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Box = tuple[int, int, int, int]
"""A box as ``(x, y, width, height)`` in pixels, ``x``/``y`` its top-left corner."""

_COLOURS = ((30, 30, 220), (40, 200, 40), (220, 60, 30), (20, 220, 230), (200, 40, 200), (240, 240, 240))


@dataclass(frozen=True)
class SampleTruth:
    """What :func:`make_sample_video` drew.

    :param path: the video file written.
    :param fps: its frame rate, as given to the writer.
    :param size: ``(width, height)`` in pixels.
    :param frame_count: number of frames written.
    :param boxes: for each frame, the boxes of the rectangles as ``(x, y, width, height)``.
    """

    path: Path
    fps: float
    size: tuple[int, int]
    frame_count: int
    boxes: list[list[Box]] = field(repr=False)

    def centre_boxes(self, frame: int) -> list[tuple[float, float, int, int]]:
        """Return a frame's boxes as ``(centre_x, centre_y, width, height)``, the contract's form."""
        return [(x + w / 2, y + h / 2, w, h) for x, y, w, h in self.boxes[frame]]


def _background(width: int, height: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    # Crisp 8-pixel tiles: a sharp image (high Laplacian variance) that is easy to compress.
    noise = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    texture = cv2.resize(
        noise, ((width // 8 + 1) * 8, (height // 8 + 1) * 8), interpolation=cv2.INTER_NEAREST
    )
    texture = texture[:height, :width]
    ramp = np.linspace(60, 140, width, dtype=np.float32)[None, :, None]
    return np.clip(texture.astype(np.float32) * 0.35 + ramp, 0, 255).astype(np.uint8)


def make_sample_video(
    path: str | Path,
    *,
    seconds: float = 4.0,
    fps: float = 24.0,
    size: tuple[int, int] = (320, 240),
    objects: int = 2,
    seed: int = 7,
) -> SampleTruth:
    """Write an ``.mp4`` (fourcc ``mp4v``) of ``objects`` rectangles moving over a static texture.

    Each rectangle crosses the frame in about 1.5 seconds, whatever the frame rate, so that at
    ``infer_fps`` 4 to 10 it moves clearly between sampled frames.

    :param path: where to write the video; its folder must exist.
    :param seconds: duration; the video has ``round(seconds * fps)`` frames.
    :param fps: frame rate, e.g. ``24.0``, ``24000 / 1001`` (23.976) or ``29.97``.
    :param size: ``(width, height)`` in pixels.
    :param objects: number of rectangles (1 to 6), each in its own horizontal band.
    :param seed: seed of the background texture.
    :return: the ground truth boxes of every frame.
    """
    import cv2

    width, height = size
    objects = max(1, min(int(objects), len(_COLOURS)))
    frame_count = max(1, round(seconds * fps))
    band = height // objects
    box_w, box_h = max(8, width // 8), max(8, min(band - 8, height // 8))
    speed = (width - box_w) / 1.5  # pixels per second
    background = _background(width, height, seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video to {path}")
    boxes: list[list[Box]] = []
    travel = 2 * (width - box_w)
    try:
        for index in range(frame_count):
            t = index / fps
            frame = background.copy()
            frame_boxes: list[Box] = []
            for k in range(objects):
                # Bounce back and forth; each object starts at a different phase.
                pos = (speed * t + k * travel / (objects + 1)) % travel
                x = int(round(pos if pos <= width - box_w else travel - pos))
                y = k * band + (band - box_h) // 2
                cv2.rectangle(frame, (x, y), (x + box_w - 1, y + box_h - 1), _COLOURS[k], thickness=-1)
                frame_boxes.append((x, y, box_w, box_h))
            writer.write(frame)
            boxes.append(frame_boxes)
    finally:
        writer.release()
    return SampleTruth(
        path=Path(path), fps=float(fps), size=(width, height), frame_count=frame_count, boxes=boxes
    )

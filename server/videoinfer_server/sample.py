"""Generate small test videos with known ground truth.

:func:`make_sample_video`: moving filled rectangles on a static texture, optionally cutting to a
different scene. Used by the tests, the benchmark and the demo (``videoinfer-server sample OUT.mp4``).
The background is textured and static so that the motion models have a real background to learn;
each rectangle moves in its own horizontal band and bounces off the edges, so rectangles never overlap.

:func:`make_face_video`: drawn faces that turn their head, for the face and gaze models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    :param scene_cut_frame: the first frame of the second scene, or None without a cut.
    """

    path: Path
    fps: float
    size: tuple[int, int]
    frame_count: int
    boxes: list[list[Box]] = field(repr=False)
    scene_cut_frame: int | None = None

    def centre_boxes(self, frame: int) -> list[tuple[float, float, int, int]]:
        """Return a frame's boxes as ``(centre_x, centre_y, width, height)``, the contract's form."""
        return [(x + w / 2, y + h / 2, w, h) for x, y, w, h in self.boxes[frame]]


def _background(width: int, height: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    # Crisp 8-pixel tiles: a sharp image (high Laplacian variance) that is easy to compress.
    noise = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    texture = cv2.resize(noise, ((width // 8 + 1) * 8, (height // 8 + 1) * 8), interpolation=cv2.INTER_NEAREST)
    texture = texture[:height, :width]
    ramp = np.linspace(60, 140, width, dtype=np.float32)[None, :, None]
    return np.clip(texture.astype(np.float32) * 0.35 + ramp, 0, 255).astype(np.uint8)


def _mp4_writer(path: str | Path, fps: float, size: tuple[int, int]) -> Any:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video to {path}: check the folder exists and is writable")
    return writer


def _second_scene(width: int, height: int) -> np.ndarray:
    """A scene unlike :func:`_background`: smooth warm gradients and large discs, no texture."""
    import cv2

    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    scene = np.stack([40 + 60 * y + 0 * x, 120 + 80 * x + 0 * y, 200 + 40 * (1 - y) + 0 * x], axis=-1)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    radius = max(4, min(width, height) // 5)
    cv2.circle(scene, (width // 4, height // 2), radius, (200, 200, 60), thickness=-1)
    cv2.circle(scene, (3 * width // 4, height // 3), radius, (90, 40, 160), thickness=-1)
    return scene


def make_sample_video(
    path: str | Path,
    *,
    seconds: float = 4.0,
    fps: float = 24.0,
    size: tuple[int, int] = (320, 240),
    objects: int = 2,
    seed: int = 7,
    scene_cut_at: float | None = None,
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
    :param scene_cut_at: second at which the background cuts to a different scene (smooth gradients
        and discs instead of a texture); None for no cut.
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
    cut = None if scene_cut_at is None else min(frame_count, max(0, round(scene_cut_at * fps)))
    second = _second_scene(width, height) if cut is not None else background
    writer = _mp4_writer(path, fps, (width, height))
    boxes: list[list[Box]] = []
    travel = 2 * (width - box_w)
    try:
        for index in range(frame_count):
            t = index / fps
            frame = (second if cut is not None and index >= cut else background).copy()
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
        path=Path(path), fps=float(fps), size=(width, height), frame_count=frame_count, boxes=boxes, scene_cut_frame=cut
    )


Point = tuple[float, float]


@dataclass(frozen=True)
class DrawnFace:
    """One face drawn by :func:`make_face_video`, in pixels.

    The head is an ellipse ``width`` by ``1.3 * width`` whose eyes, nose and mouth move over it as
    on a sphere: a head turned by ``yaw`` radians has them shifted by ``sin(yaw) * width / 2``
    sideways, towards the image's right for a positive ``yaw``; tilted by ``pitch``, by
    ``sin(pitch) * 1.3 * width / 2`` upwards for a positive ``pitch``. Facing the camera, the eyes
    are at 0.4 of the head's height from its top.

    :param centre: the head's centre ``(x, y)``.
    :param width: the head's width.
    :param eyes: the eye centres, the image-left eye first.
    :param yaw: the head's turn in radians, positive towards the image's right.
    :param pitch: the head's tilt in radians, positive upwards.
    """

    centre: Point
    width: float
    eyes: tuple[Point, Point]
    yaw: float
    pitch: float = 0.0


@dataclass(frozen=True)
class FaceTruth:
    """What :func:`make_face_video` drew.

    :param path: the video file written.
    :param fps: its frame rate.
    :param size: ``(width, height)`` in pixels.
    :param frame_count: number of frames written.
    :param faces: for each frame, the faces drawn.
    """

    path: Path
    fps: float
    size: tuple[int, int]
    frame_count: int
    faces: list[list[DrawnFace]] = field(repr=False)


def draw_face(image: np.ndarray, centre: Point, width: float, yaw: float = 0.0, pitch: float = 0.0) -> DrawnFace:
    """Draw a face (skin ellipse; eyes, brows, nose and mouth as soft dark blobs) into a BGR image.

    The blobs have the light/dark layout OpenCV's frontal face and eye cascades respond to.
    """
    cx, cy = centre
    height = 1.3 * width
    rows, cols = image.shape[:2]
    x0, x1 = max(0, int(cx - width)), min(cols, int(cx + width) + 1)
    y0, y1 = max(0, int(cy - height)), min(rows, int(cy + height) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    region = image[y0:y1, x0:x1].astype(np.float32)
    inside = ((xx - cx) / (width / 2)) ** 2 + ((yy - cy) / (height / 2)) ** 2 <= 1
    region[inside] = (150, 175, 215)
    shade = np.zeros(inside.shape, np.float32)

    def blob(px: float, py: float, sx: float, sy: float, depth: float) -> None:
        shade[...] += depth * np.exp(-(((xx - px) / sx) ** 2 + ((yy - py) / sy) ** 2))

    shift = float(np.sin(yaw)) * width / 2
    lift = float(np.sin(pitch)) * height / 2
    eye_y = cy - 0.1 * height - lift
    eyes = []
    for side in (-1, 1):
        ex = cx + side * 0.22 * width + shift
        eyes.append((ex, eye_y))
        blob(ex, eye_y, 0.11 * width, 0.06 * width, 140)
        blob(ex, eye_y - 0.11 * width, 0.14 * width, 0.025 * width, 80)
    blob(cx + shift, cy + 0.12 * height - lift, 0.06 * width, 0.03 * width, 50)
    blob(cx + shift, cy + 0.27 * height - lift, 0.15 * width, 0.035 * width, 90)
    region -= (shade * inside)[..., None]
    image[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)
    return DrawnFace((cx, cy), width, (eyes[0], eyes[1]), yaw, pitch)


def make_face_video(
    path: str | Path,
    *,
    seconds: float = 2.0,
    fps: float = 24.0,
    size: tuple[int, int] = (320, 240),
    max_angle: float = 0.3,
) -> FaceTruth:
    """Write an ``.mp4`` of two faces on a static bluish texture: the left one turns its head, the right one nods.

    Over the video the left face's yaw goes linearly from ``-max_angle`` to ``+max_angle`` (pitch 0)
    and the right face's pitch from ``+max_angle`` to ``-max_angle`` (yaw 0). Faces are ``0.28 *
    width`` wide, each centred in its half of the frame.

    :param path: where to write the video; its folder must exist.
    :param seconds: duration; the video has ``round(seconds * fps)`` frames.
    :param fps: frame rate.
    :param size: ``(width, height)`` in pixels.
    :param max_angle: the largest yaw and pitch, in radians (keep it within about 0.35: the
        frontal-face detector loses faces turned further).
    """
    width, height = size
    background = _background(width, height, 11)
    # Halve the red: no tile of the texture has the faces' skin colour, whose outline gaze measures.
    background[..., 2] //= 2
    frame_count = max(1, round(seconds * fps))
    face_width = 0.28 * width
    writer = _mp4_writer(path, fps, (width, height))
    faces: list[list[DrawnFace]] = []
    try:
        for index in range(frame_count):
            angle = max_angle * (2 * index / max(1, frame_count - 1) - 1)
            frame = background.copy()
            turning = draw_face(frame, (width / 4, height / 2), face_width, yaw=angle)
            nodding = draw_face(frame, (3 * width / 4, height / 2), face_width, pitch=-angle)
            writer.write(frame)
            faces.append([turning, nodding])
    finally:
        writer.release()
    return FaceTruth(Path(path), float(fps), (width, height), frame_count, faces)

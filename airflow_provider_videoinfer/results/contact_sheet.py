"""Contact sheets: the frames of a video with the most detections, with every model's predictions drawn.

Two passes in bounded memory whatever the video's length: one over the result file keeps only the
frames to show (the busiest of each part of the video), then the video is opened once and seeked
to each of those frames in order, decoding only them. OpenCV comes with the ``contact-sheet`` extra
(``pip install "airflow-provider-videoinfer[contact-sheet]"``); without it, or when the video cannot
be read, :func:`make_contact_sheet` logs why and returns None, leaving the caller's summary intact.
"""

from __future__ import annotations

import heapq
import logging
import math
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Sized
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer.results.summary import ContactSheet, ContactSheetFrame
from airflow_provider_videoinfer.storage import (
    Location,
    atomic_write,
    describe_location,
    local_path,
    open_location,
    resolve,
)
from videoinfer_contract.results import (
    Classification,
    Detections,
    FrameResult,
    GazeResult,
    ResultFrame,
    SemanticSegmentation,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 6
TILE_WIDTH = 480
COLUMNS = 3
SUFFIX = ".contact-sheet.png"


def contact_sheet_location(destination: Location) -> Any:
    """Where the contact sheet of a result kept at ``destination`` goes: beside it, ``<stem>.contact-sheet.png``."""
    path = resolve(destination)
    return path.with_name(path.stem + SUFFIX)


def _objects(frame: ResultFrame) -> int:
    """How many things the frame's results found: detections and faces of every model."""
    count = 0
    for result in frame.results.values():
        if isinstance(result, (Detections, GazeResult)):
            count += len(result.predictions)
    return count


def pick_frames(frames: Iterable[ResultFrame], count: int = DEFAULT_FRAMES) -> list[tuple[int, ResultFrame]]:
    """Choose up to ``count`` frames to show, as ``(objects, frame)`` in video order.

    When the number of frames is known (a :class:`ResultReader` has a length), the video is cut
    into ``count`` equal parts and the busiest frame of each part is kept, so that the sheet
    covers the whole video and holds its busiest frame; parts where nothing was found are left
    out unless nothing was found anywhere (classification only, say). Otherwise the ``count``
    busiest frames are kept. Frames without a ``frame_offset`` cannot be found in the video and
    are skipped. Memory holds at most ``count`` frames.
    """
    total = len(frames) if isinstance(frames, Sized) else None
    part = max(1, math.ceil(total / count)) if total else None
    best: dict[int, tuple[int, int, ResultFrame]] = {}  # part -> (objects, -index, frame)
    busiest: list[tuple[int, int, ResultFrame]] = []  # a heap, when the length is unknown
    for frame in frames:
        if frame.frame_offset is None:
            continue
        item = (_objects(frame), -frame.index, frame)  # ties: the earlier frame
        if part is not None:
            key = frame.index // part
            if key not in best or item[:2] > best[key][:2]:
                best[key] = item
        elif len(busiest) < count:
            heapq.heappush(busiest, item)
        elif item[:2] > busiest[0][:2]:
            heapq.heapreplace(busiest, item)
    chosen = [(objects, frame) for objects, _, frame in (best.values() if part is not None else busiest)]
    if any(objects for objects, _ in chosen):
        chosen = [(objects, frame) for objects, frame in chosen if objects]
    return sorted(chosen, key=lambda item: item[1].frame_offset or 0)


def _colour(label: str) -> tuple[int, int, int]:
    """A stable colour (BGR) per label, so that a class keeps its colour across tiles and runs."""
    import cv2
    import numpy as np

    hue = zlib.crc32(label.encode()) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0][0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    import cv2

    scale = max(0.4, image.shape[1] / 1400)
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = max(0, min(x, image.shape[1] - width - 2))
    y = max(height + base + 1, y)
    cv2.rectangle(image, (x, y - height - base - 2), (x + width + 2, y), colour, -1)
    cv2.putText(image, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _draw_detections(image: np.ndarray, result: Detections, scale: tuple[float, float]) -> None:
    import cv2
    import numpy as np

    sx, sy = scale
    thickness = max(1, image.shape[1] // 400)
    for d in result.predictions:
        name = d.class_name or "object"
        colour = _colour(name)
        left, top = int((d.x - d.width / 2) * sx), int((d.y - d.height / 2) * sy)
        right, bottom = int((d.x + d.width / 2) * sx), int((d.y + d.height / 2) * sy)
        if d.points:
            polygon = np.array([[int(p.x * sx), int(p.y * sy)] for p in d.points], dtype=np.int32)
            overlay = image.copy()
            cv2.fillPoly(overlay, [polygon], colour)
            cv2.addWeighted(overlay, 0.35, image, 0.65, 0, dst=image)
            cv2.polylines(image, [polygon], True, colour, thickness, cv2.LINE_AA)
        cv2.rectangle(image, (left, top), (right, bottom), colour, thickness)
        for k in d.keypoints or ():
            cv2.circle(image, (int(k.x * sx), int(k.y * sy)), 2 + thickness, colour, -1, cv2.LINE_AA)
        _label(image, f"{name} {d.confidence:.2f}", left, top, colour)


def _draw_gaze(image: np.ndarray, result: GazeResult, scale: tuple[float, float]) -> None:
    import cv2

    sx, sy = scale
    colour = _colour("face")
    for g in result.predictions:
        face = g.face
        cx, cy = face.x * sx, face.y * sy
        left, top = int(cx - face.width * sx / 2), int(cy - face.height * sy / 2)
        cv2.rectangle(image, (left, top), (int(cx + face.width * sx / 2), int(cy + face.height * sy / 2)), colour, 2)
        for p in face.landmarks:
            cv2.circle(image, (int(p.x * sx), int(p.y * sy)), 3, colour, -1, cv2.LINE_AA)
        # The gaze direction projected on the image: yaw turns it sideways, pitch up or down.
        length = face.width * sx
        end = (int(cx - length * math.sin(g.yaw)), int(cy - length * math.sin(g.pitch)))
        cv2.arrowedLine(image, (int(cx), int(cy)), end, (0, 0, 255), 2, cv2.LINE_AA, tipLength=0.2)
        _label(image, f"yaw {math.degrees(g.yaw):.0f} pitch {math.degrees(g.pitch):.0f}", left, top, colour)


def _draw_mask(image: np.ndarray, result: SemanticSegmentation) -> None:
    import cv2
    import numpy as np

    mask = cv2.imdecode(np.frombuffer(result.mask_png(), np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return
    mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    overlay = image.copy()
    for class_id in np.unique(mask):
        name = result.predictions.class_map.get(int(class_id))
        if name is None or name in ("background", "__background__"):
            continue
        overlay[mask == class_id] = _colour(name)
    cv2.addWeighted(overlay, 0.4, image, 0.6, 0, dst=image)


def _scale(result: FrameResult, image: np.ndarray) -> tuple[float, float]:
    """From the result's pixel space to the decoded frame's (the service may infer on a resized image)."""
    size = getattr(result, "image", None)
    return (
        image.shape[1] / size.width if size is not None and size.width else 1.0,
        image.shape[0] / size.height if size is not None and size.height else 1.0,
    )


def draw_frame(image: np.ndarray, frame: ResultFrame, objects: int) -> np.ndarray:
    """Draw every model's result of ``frame`` on its decoded ``image``; return the tile, TILE_WIDTH wide."""
    import cv2

    captions = []
    for model_id, result in frame.results.items():
        if isinstance(result, SemanticSegmentation):
            _draw_mask(image, result)
        elif isinstance(result, Detections):
            _draw_detections(image, result, _scale(result, image))
        elif isinstance(result, GazeResult):
            _draw_gaze(image, result, (1.0, 1.0))
        elif isinstance(result, Classification) and result.top is not None:
            confidence = f" {result.confidence:.2f}" if result.confidence is not None else ""
            captions.append(f"{model_id}: {result.top}{confidence}")
    height = round(image.shape[0] * TILE_WIDTH / image.shape[1])
    tile = cv2.resize(image, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    time = f"{frame.time_offset:.2f} s" if frame.time_offset is not None else "?"
    header = f"{time} | frame {frame.frame_offset} | {objects} object{'s' if objects != 1 else ''}"
    banner = cv2.copyMakeBorder(tile, 22 + 18 * len(captions), 0, 0, 0, cv2.BORDER_CONSTANT, value=(32, 32, 32))
    for line, text in enumerate([header, *captions]):
        cv2.putText(banner, text, (6, 16 + 18 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (240, 240, 240), 1, cv2.LINE_AA)
    return banner


def _grid(tiles: list[np.ndarray]) -> np.ndarray:
    import numpy as np

    columns = min(COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    height = max(tile.shape[0] for tile in tiles)
    sheet = np.full((rows * height + (rows + 1) * 4, columns * TILE_WIDTH + (columns + 1) * 4, 3), 255, np.uint8)
    for n, tile in enumerate(tiles):
        top, left = 4 + (n // columns) * (height + 4), 4 + (n % columns) * (TILE_WIDTH + 4)
        sheet[top : top + tile.shape[0], left : left + TILE_WIDTH] = tile
    return sheet


def render_contact_sheet(
    video_path: str, picked: list[tuple[int, ResultFrame]]
) -> tuple[np.ndarray, list[ContactSheetFrame]]:
    """Seek to each picked frame of a local video, draw it, and lay the tiles out in a grid.

    :return: the sheet (BGR) and, per tile, its ``frame_offset``, ``time_offset`` and ``objects``.
    :raises ValueError: when the video cannot be opened or none of the frames can be decoded.
    """
    import cv2

    capture = cv2.VideoCapture(video_path)
    try:
        if not capture.isOpened():
            raise ValueError("OpenCV cannot open it as a video")
        tiles: list[np.ndarray] = []
        shown: list[ContactSheetFrame] = []
        for objects, frame in picked:
            capture.set(cv2.CAP_PROP_POS_FRAMES, float(frame.frame_offset or 0))
            ok, image = capture.read()
            if not ok:
                log.warning("Contact sheet: frame %s of the video cannot be decoded; skipped.", frame.frame_offset)
                continue
            tiles.append(draw_frame(image, frame, objects))
            shown.append(
                ContactSheetFrame(frame_offset=frame.frame_offset, time_offset=frame.time_offset, objects=objects)
            )
    finally:
        capture.release()
    if not tiles:
        raise ValueError("none of the chosen frames could be decoded")
    return _grid(tiles), shown


def make_contact_sheet(
    frames: Iterable[ResultFrame], video: Location, target: Location, count: int = DEFAULT_FRAMES
) -> ContactSheet | None:
    """Render the contact sheet of a video's busiest frames and write it as a PNG to ``target``.

    Never raises for an unusable video or a missing OpenCV: it logs why and returns None.

    :param frames: the result file's frames, e.g. a :class:`ResultReader`.
    :param video: the source video: a local path or a storage URI (a remote video is copied to a
        temporary file first, streamed, since OpenCV seeks only in local files).
    :param target: where to write the PNG: a local path or a storage URI.
    :param count: how many frames to show (default 6).
    :return: ``{"location", "frames": [{"frame_offset", "time_offset", "objects"}, ...]}``, or None.
    """
    try:
        import cv2
    except ImportError:
        log.warning("No contact sheet: OpenCV is not installed; install airflow-provider-videoinfer[contact-sheet].")
        return None
    picked = pick_frames(frames, count)
    name = describe_location(video)
    if not picked:
        log.warning("No contact sheet of %s: the result has no frame with a frame offset.", name)
        return None
    try:
        with ExitStack() as stack:
            path = local_path(video)
            if path is None:
                temp = stack.enter_context(tempfile.TemporaryDirectory(prefix="videoinfer-sheet-"))
                path = str(Path(temp) / "video")
                with open_location(video, "rb") as source, open(path, "wb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
            elif not Path(path).is_file():
                raise ValueError("there is no file at that path")
            sheet, shown = render_contact_sheet(path, picked)
    except Exception as err:  # the summary matters more than the picture: never fail the task for it
        log.warning("No contact sheet: the video %s cannot be read (%s).", name, err)
        return None
    where = describe_location(target)
    try:
        ok, png = cv2.imencode(".png", sheet)
        if not ok:
            raise ValueError("OpenCV could not encode the PNG")
        with atomic_write(target) as out:
            out.write(png.tobytes())
    except Exception as err:
        log.warning("No contact sheet: it cannot be written to %s (%s).", where, err)
        return None
    log.info("Contact sheet of %d frames of %s kept at %s.", len(shown), name, where)
    return ContactSheet(location=where, frames=shown)

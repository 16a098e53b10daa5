"""The structs of ``bench_results.py``'s ceiling: a result file's fields that its count reads, and no other."""

from __future__ import annotations

import msgspec

CARS = "traffic-cars"
SCENE = "scene-type"
GAZE = "gaze"


class Named(msgspec.Struct, gc=False):
    """A prediction's class."""

    name: str | None = msgspec.field(default=None, name="class")


class Face(msgspec.Struct, gc=False):
    """A gaze prediction's face."""

    face: Named


class Frame(msgspec.Struct, gc=False):
    """A detection or classification frame."""

    predictions: list[Named] = []
    top: str | None = None


class GazeFrame(msgspec.Struct, gc=False):
    """A gaze frame."""

    predictions: list[Face] = []


class File(msgspec.Struct, gc=False):
    """The benchmark's result file, its offsets skipped."""

    cars: list[Frame | None] = msgspec.field(default_factory=list, name=CARS)
    scene: list[Frame | None] = msgspec.field(default_factory=list, name=SCENE)
    gaze: list[GazeFrame | None] = msgspec.field(default_factory=list, name=GAZE)

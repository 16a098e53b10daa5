"""What a job will cost, from its video's facts, before it is paid for; and the checks that refuse a waste.

The service bills by the frames it runs models on: a job samples ``infer_fps`` frames per second
of video and runs every model on each. :class:`FrameSampling` is the sampling rule, the one the
local server runs (so that the estimate equals the frames of its result file) and the one
:func:`sampled_frame_count` counts; :func:`estimate` turns facts into an :class:`Estimate`;
:func:`check_job` finds what makes a job useless (``infer_fps`` above the frame rate, an empty
video) or wasteful (a frame rate that is not a multiple of ``infer_fps``); :func:`over_budget`
compares an estimate with the caps.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from videoinfer_contract.facts import VideoFacts

__all__ = [
    "Budget",
    "Estimate",
    "Finding",
    "FrameSampling",
    "check_job",
    "estimate",
    "exact_fps",
    "over_budget",
    "sampled_frame_count",
]


def exact_fps(fps: float) -> Fraction:
    """A frame rate given as a float (OpenCV's) as a fraction: the simplest within float precision
    (denominator at most 10000): 23.976 → 2997/125, 29.97002997… → 30000/1001."""
    return Fraction(fps).limit_denominator(10000)


class FrameSampling:
    """Which frames a job samples.

    With ``fps`` the frame rate (an exact fraction) and ``r = infer_fps``, frame ``i`` is sampled
    when ``floor(i * r / fps)`` advances: frame 0, then the first frame at or after each
    ``k * fps / r``, i.e. ``i_k = ceil(k * fps / r)``. A 24 fps video at 4 gives 0, 6, 12…; at 7 it
    gives 0, 4, 7, 11, 14, 18, 21, 24… Exact fractions, so no frame is skipped or doubled by rounding.

    :param fps: the video's frame rate, exact.
    :param infer_fps: the sampling rate (a whole number for the Video Inference API; a Batch
        Processing job's ``maxVideoFPS`` may be a fraction).
    """

    def __init__(self, fps: Fraction, infer_fps: float | Fraction) -> None:
        self.fps = fps
        self._ratio = Fraction(infer_fps) / fps
        self._last_slot = -1

    def slot(self, index: int) -> int:
        """``floor(index * infer_fps / fps)``."""
        return math.floor(index * self._ratio)

    def take(self, index: int) -> bool:
        """Whether frame ``index`` is sampled; call with 0, 1, 2… in order."""
        slot = self.slot(index)
        if slot > self._last_slot:
            self._last_slot = slot
            return True
        return False

    def count(self, frame_count: int) -> int:
        """How many of the frames ``0 … frame_count - 1`` :meth:`take` samples, without visiting them:
        one per slot, ``slot(frame_count - 1) + 1``, at most ``frame_count``."""
        if frame_count <= 0:
            return 0
        return min(frame_count, self.slot(frame_count - 1) + 1)


def sampled_frame_count(frame_count: int, fps: Fraction, infer_fps: float | Fraction) -> int:
    """The frames a job samples from a video of ``frame_count`` frames at ``fps`` (see :class:`FrameSampling`)."""
    return FrameSampling(fps, infer_fps).count(frame_count)


@dataclass(frozen=True)
class Estimate:
    """What a job will cost.

    :param sampled_frames: frames the job samples from the video (each model runs on each).
    :param models: how many models the job runs.
    :param frames: what is billed: ``sampled_frames × models``.
    :param video_seconds: the video's duration, when known.
    :param infer_fps: the sampling rate.
    :param exact: True when counted from the frame count and frame rate with the sampling rule (the
        local server samples exactly these); False when only the duration was known
        (``ceil(duration × infer_fps)``).
    """

    sampled_frames: int
    models: int
    frames: int
    video_seconds: float | None
    infer_fps: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        """The estimate as JSON values (XCom key ``estimate``)."""
        return {
            "sampled_frames": self.sampled_frames,
            "models": self.models,
            "frames": self.frames,
            "video_seconds": self.video_seconds,
            "infer_fps": self.infer_fps,
            "exact": self.exact,
        }

    def describe(self) -> str:
        """One line for a log: ``240 sampled frames × 2 models = 480 frames billed``."""
        about = "" if self.exact else "about "
        models = "model" if self.models == 1 else "models"
        return (
            f"{about}{self.sampled_frames} sampled frames × {self.models} {models} = {about}{self.frames} frames "
            f"billed (infer_fps {self.infer_fps})"
        )


def estimate(facts: VideoFacts, infer_fps: int, models: int) -> Estimate | None:
    """What a job on a video with these facts costs; None when its facts do not tell.

    :param facts: the video's facts (:func:`~videoinfer_contract.facts.read_facts`).
    :param infer_fps: the job's sampling rate (validated).
    :param models: how many models the job runs.
    """
    if facts.frame_count is not None and facts.frame_rate:
        sampled = sampled_frame_count(facts.frame_count, facts.frame_rate, infer_fps)
        exact = True
    elif facts.duration is not None:
        rate = min(Fraction(infer_fps), facts.frame_rate) if facts.frame_rate else Fraction(infer_fps)
        sampled = math.ceil(Fraction(facts.duration) * rate)
        exact = False
    else:
        return None
    return Estimate(sampled, models, sampled * models, facts.duration, infer_fps, exact)


@dataclass(frozen=True)
class Finding:
    """Something :func:`check_job` found.

    :param error: True when the job must not be submitted, False for a warning.
    :param message: what it is, with the numbers and the fix.
    """

    error: bool
    message: str


def _rate(fps: Fraction) -> str:
    return f"{float(fps):.6g} fps" + ("" if fps.denominator == 1 else f" ({fps.numerator}/{fps.denominator})")


def nominal_rate(fps: Fraction) -> Fraction:
    """The whole rate an NTSC-style rate stands for (29.97 → 30, 23.976 → 24), else ``fps`` itself."""
    whole = Fraction(round(fps))
    return whole if whole and abs(fps - whole) / whole <= Fraction(1, 1000) else fps


def divisors_near(fps: Fraction, infer_fps: int) -> list[int]:
    """The whole sampling rates nearest ``infer_fps`` (one below, one above, at most the rate) that divide
    the video's (nominal) frame rate; empty when no whole number divides it."""
    rate = nominal_rate(fps)
    if rate.denominator != 1:
        return []
    whole = rate.numerator
    divisors = [d for d in range(1, whole + 1) if whole % d == 0]
    below = [d for d in divisors if d < infer_fps]
    above = [d for d in divisors if d > infer_fps]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def check_job(facts: VideoFacts, infer_fps: int) -> list[Finding]:
    """What makes a job on this video useless (errors) or wasteful (warnings); unknown facts check nothing.

    :param facts: the video's facts.
    :param infer_fps: the job's sampling rate (validated).
    """
    findings: list[Finding] = []
    if facts.has_video is False:
        findings.append(Finding(True, "the video has no video track: a job on it has no frame to run models on."))
        return findings
    if facts.frame_count == 0 or facts.duration == 0:
        findings.append(
            Finding(True, "the video is of zero length (0 frames): a job on it has nothing to run; check the file.")
        )
        return findings
    fps = facts.frame_rate
    if fps is None:
        return findings
    if Fraction(infer_fps) > fps:
        best = max(1, math.floor(fps))
        near = divisors_near(fps, best + 1)
        advice = f"Pass infer_fps={best} or less"
        if near and near[0] != best:
            advice += f", ideally {near[0]}, which divides the frame rate"
        findings.append(
            Finding(
                True,
                f"infer_fps {infer_fps} is above the video's frame rate, {_rate(fps)}: the service returns no "
                f"output for such a job. {advice}.",
            )
        )
        return findings
    if facts.constant_frame_rate is not False and (nominal_rate(fps) / infer_fps).denominator != 1:
        near = divisors_near(fps, infer_fps)
        if near:
            values = " or ".join(str(value) for value in near)
            advice = f"the nearest infer_fps that are: {values}"
        else:
            advice = "no whole infer_fps divides it"
        findings.append(
            Finding(
                False,
                f"the video's frame rate, {_rate(fps)}, is not a multiple of infer_fps {infer_fps}: the sampled "
                f"frames are unevenly spaced in time; {advice}.",
            )
        )
    return findings


@dataclass(frozen=True)
class Budget:
    """The most a job may cost; None for no cap.

    :param max_frames: the most frames billed (sampled frames × models).
    :param max_video_seconds: the longest video.
    :param source: where the caps come from, named in messages (``"the operator's max_frames"``...).
    """

    max_frames: int | None = None
    max_video_seconds: float | None = None
    max_frames_source: str = "max_frames"
    max_video_seconds_source: str = "max_video_seconds"

    @property
    def is_set(self) -> bool:
        """Whether any cap applies."""
        return self.max_frames is not None or self.max_video_seconds is not None


def over_budget(found: Estimate | None, facts: VideoFacts, budget: Budget) -> str | None:
    """Why a job goes over ``budget`` (its estimate, the cap and how to raise it), or None when it does not.

    Unknown facts are not over any cap: they never block a job on their own.
    """
    seconds = facts.duration
    if budget.max_video_seconds is not None and seconds is not None and seconds > budget.max_video_seconds:
        return (
            f"the video lasts {seconds:.6g} s, above {budget.max_video_seconds_source} = "
            f"{budget.max_video_seconds:g} s. Raise {budget.max_video_seconds_source} to at least "
            f"{math.ceil(seconds)} if this video is meant to be run, or check the input."
        )
    if budget.max_frames is not None and found is not None and found.frames > budget.max_frames:
        return (
            f"the job would bill {found.describe()}, above {budget.max_frames_source} = {budget.max_frames}. "
            f"Raise {budget.max_frames_source} to at least {found.frames}, lower infer_fps or the number of "
            "models, or check the input."
        )
    return None

"""What a job will cost, known before it is paid for: the video's facts, the checks, the estimate, the budget.

:func:`review_cost` runs just before the submit operator builds its job request: it reads the
video's facts from its container (:mod:`videoinfer_contract.facts`: a few ranged reads, never the
whole video) wherever the video is (a local file, a storage URI through :mod:`~airflow_provider_videoinfer.storage`,
an http(s) URL), logs them and the estimate (:mod:`videoinfer_contract.estimate`), pushes the
estimate to XCom (key ``estimate``), and refuses the job, before any call to the service, when it
would return nothing (``infer_fps`` above the frame rate, a video of zero length, no video track)
or cost more than the caps (the operator's ``max_frames`` / ``max_video_seconds``, else the
connection's extra ``max_frames`` / ``max_video_seconds``).

Facts that cannot be read (an upload's signed URL the service does not let anyone GET, a damaged
header, an unknown codec) are logged as unknown and never block a job on their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer import contract, storage
from airflow_provider_videoinfer.exceptions import VideoInferError, VideoInferOverBudgetError, VideoInferValidationError
from airflow_provider_videoinfer.hooks.settings import extra_number, read_extra
from videoinfer_contract.estimate import Budget, Estimate, check_job, estimate, over_budget
from videoinfer_contract.facts import ByteSource, FactsUnreadable, VideoFacts, http_source, local_facts, read_facts

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator

__all__ = ["CostReview", "budget_of", "folder_estimate", "read_video_facts", "review_cost", "storage_source"]

#: XCom key of a job's estimate (and its video's facts).
ESTIMATE_KEY = "estimate"


def storage_source(location: storage.Location) -> ByteSource:
    """A :class:`~videoinfer_contract.facts.ByteSource` of an object in storage: one ranged GET
    (fsspec's ``cat_file`` with ``start``/``end``) per read, no metadata call.

    :param location: a storage URI (``s3://conn_id@bucket/key``, ``abfs://``...) or an ``ObjectStoragePath``.
    """
    fs, path = storage.filesystem(location)
    name = storage.describe_location(location)

    def fetch(offset: int, length: int) -> bytes:
        try:
            return bytes(fs.cat_file(path, start=offset, end=offset + length))
        except Exception as err:
            raise FactsUnreadable(str(storage.storage_error(location, "read", err))) from None

    return ByteSource(fetch, None, name)


def read_video_facts(location: Any) -> VideoFacts:
    """The facts of a video wherever it is; unknown (saying why) when they cannot be read; never raises.

    :param location: a local path, a storage URI or ``ObjectStoragePath``, or an http(s) URL (a
        presigned URL is a credential: only its redacted form appears in the facts' ``problem``).
    """
    name = storage.describe_location(location)
    try:
        path = None if _is_http(location) else storage.local_path(location)
        if path is not None:
            return local_facts(os.path.expanduser(path))
        if _is_http(location):
            return read_facts(http_source(str(location).strip(), name))
        return read_facts(storage_source(location))
    except (VideoInferError, FactsUnreadable, OSError, ValueError) as err:
        return VideoFacts(problem=f"{name} cannot be read ({contract.redact(str(err))})")


def _is_http(location: Any) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(("http://", "https://"))


def budget_of(max_frames: Any, max_video_seconds: Any, conn: Any) -> Budget:
    """The caps of a job: the operator's, else the connection's extra ``max_frames`` / ``max_video_seconds``.

    :param max_frames: the operator's cap on frames billed (sampled frames × models), or None.
    :param max_video_seconds: the operator's cap on the video's duration, or None.
    :param conn: the ``videoinfer`` connection (its extra is read only for a cap the operator leaves unset).
    """
    frames_source, seconds_source = "max_frames", "max_video_seconds"
    if max_frames is None or max_video_seconds is None:
        where = f"connection {conn.conn_id!r}"
        extra = read_extra(conn, where)
        if max_frames is None and extra.get("max_frames") is not None:
            max_frames = validate_max_frames(extra_number(extra, "max_frames", 0, where), f"{where}'s extra max_frames")
            frames_source = f"max_frames of connection {conn.conn_id!r} (its extra)"
        if max_video_seconds is None and extra.get("max_video_seconds") is not None:
            max_video_seconds = extra_number(extra, "max_video_seconds", 0, where)
            seconds_source = f"max_video_seconds of connection {conn.conn_id!r} (its extra)"
    return Budget(max_frames, max_video_seconds, frames_source, seconds_source)


def validate_max_frames(value: Any, name: str = "max_frames") -> int | None:
    """Check a cap on frames billed: None, or a whole number of at least 1."""
    if value is None:
        return None
    number = value
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise VideoInferValidationError(
            f"{name} must be a whole number of frames of at least 1 (sampled frames × models), got {value!r}: "
            "e.g. max_frames=10_000, or None for no cap."
        )
    return number


def validate_max_video_seconds(value: Any) -> float | None:
    """Check a cap on the video's duration: None, or a positive number of seconds."""
    return None if value is None else contract.validate_seconds("max_video_seconds", value, contract.MAX_WAIT_SECONDS)


@dataclass(frozen=True)
class CostReview:
    """What :func:`review_cost` found: the facts and the estimate (None when the facts do not tell).

    :param facts: the video's facts.
    :param estimate: what the job costs.
    :param budget: the caps it was checked against.
    """

    facts: VideoFacts
    estimate: Estimate | None
    budget: Budget

    def to_dict(self) -> dict[str, Any]:
        """The XCom value (key ``estimate``, and a dry run's return value): the estimate's fields, or None
        each when unknown, the caps, and the facts under ``facts``."""
        found = self.estimate.to_dict() if self.estimate is not None else dict.fromkeys(_ESTIMATE_FIELDS)
        return {
            **found,
            "max_frames": self.budget.max_frames,
            "max_video_seconds": self.budget.max_video_seconds,
            "facts": self.facts.to_dict(),
        }


_ESTIMATE_FIELDS = ("sampled_frames", "models", "frames", "video_seconds", "infer_fps", "exact")


def review_cost(operator: VideoInferSubmitJobOperator, context: Context) -> CostReview:
    """Read the facts of the operator's video, check the job, log and push its estimate; raise when it
    must not be submitted. Called once per try, before the job request is built.

    :param operator: the submit operator (its ``input_url`` or ``video``, ``infer_fps``, ``models``,
        ``max_frames``, ``max_video_seconds``, ``estimate_only``: its ``dry_run``).
    :param context: the task's context (its ``ti`` gets the XCom).
    :raises VideoInferValidationError: ``infer_fps`` above the frame rate, a video of zero length or
        without a video track.
    :raises VideoInferOverBudgetError: the estimate is above a cap.
    """
    infer_fps = contract.validate_infer_fps(operator.infer_fps)
    models = contract.validate_models(operator.models)
    location = operator.video if operator.video is not None else operator.input_url
    name = storage.describe_location(location)
    facts = read_video_facts(location)
    found = estimate(facts, infer_fps, len(models))
    budget = budget_of(
        operator.max_frames, operator.max_video_seconds, operator.hook.get_connection(operator.videoinfer_conn_id)
    )
    review = CostReview(facts, found, budget)
    log = operator.log
    read = f"read in {facts.requests} requests, {facts.bytes_read} bytes"
    if found is not None:
        log.info("Video %s: %s; %s.", name, facts.describe(), read)
        log.info("Estimate: %s.", found.describe())
    else:
        log.warning("No estimate for %s: %s (%s); the job is not checked.", name, facts.describe(), read)
        if budget.is_set:
            log.warning("The caps (max_frames, max_video_seconds) cannot be checked for %s.", name)
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=ESTIMATE_KEY, value=review.to_dict())
    for finding in check_job(facts, infer_fps):
        if finding.error:
            raise VideoInferValidationError(f"video {name}: {finding.message} No job was submitted.")
        log.warning("Video %s: %s", name, finding.message)
    problem = over_budget(found, facts, budget)
    if problem is not None:
        raise VideoInferOverBudgetError(f"video {name}: {problem} No job was submitted.")
    if operator.estimate_only:
        log.info("dry_run=True: no job is submitted.")
    return review


def folder_estimate(videos: list[str], infer_fps: Any, models: int, log: Any) -> dict[str, Any]:
    """What a batch of jobs, one per video, will bill in all, before any is submitted; logs one line per
    video and the total.

    :param videos: the videos' locations (paths, storage URIs, URLs).
    :param infer_fps: the jobs' sampling rate.
    :param models: how many models each job runs.
    :param log: where to log.
    :return: ``{"videos", "frames", "video_seconds", "unknown"}``: the totals over the videos whose facts
        were read, and the videos whose were not (not counted in the totals).
    """
    rate = contract.validate_infer_fps(infer_fps)
    frames, seconds, unknown = 0, 0.0, []
    for video in videos:
        name = storage.describe_location(video)
        facts = read_video_facts(video)
        found = estimate(facts, rate, models)
        if found is None:
            unknown.append(name)
            log.warning("%s: no estimate, %s.", name, facts.describe())
            continue
        frames += found.frames
        seconds += found.video_seconds or 0.0
        log.info("%s: %s; %s.", name, facts.describe(), found.describe())
    log.info(
        "In all: %d frames billed for %.6g s of video in %d of %d videos%s.",
        frames,
        seconds,
        len(videos) - len(unknown),
        len(videos),
        f" ({len(unknown)} unknown: {', '.join(unknown)})" if unknown else "",
    )
    return {"videos": len(videos), "frames": frames, "video_seconds": seconds, "unknown": unknown}

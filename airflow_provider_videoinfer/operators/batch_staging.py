"""Fill a Batch Processing staging batch with videos: local files uploaded, object storage staged by reference."""

from __future__ import annotations

import datetime
import glob
import hashlib
import os
import random
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer import contract, storage
from airflow_provider_videoinfer.compat import conf
from airflow_provider_videoinfer.exceptions import VideoInferError, VideoInferValidationError
from airflow_provider_videoinfer.hooks import waiting
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchHook
from airflow_provider_videoinfer.hooks.videoinfer import SINGLE_ATTEMPT, mask_in_logs
from airflow_provider_videoinfer.operators.base import (
    VideoInferBaseOperator,
    deferral_backstop,
    utc_time,
    validate_if_known,
)
from airflow_provider_videoinfer.operators.batch import batch_id_for
from airflow_provider_videoinfer.triggers.batch import VideoInferBatchCountTrigger, count_step, log_count
from airflow_provider_videoinfer.triggers.events import CountEvent

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["VideoInferBatchStageOperator"]

#: The video extensions ``inference rf-cloud`` stages (any case); the service documents none of its own.
BATCH_VIDEO_EXTENSIONS = frozenset(
    ("mp4", "m4a", "m4p", "m4b", "m4r", "m4v", "avi", "mov", "mkv", "flv", "wmv", "mpeg", "mpg", "3gp", "webm", "ogg")
)
#: How long the presigned URLs of videos staged by reference stay valid by default: a day, as the CLI signs.
DEFAULT_PRESIGNED_URL_LIFETIME = 24 * 3600
#: How long the operator waits by default for the service to index every video of the batch.
DEFAULT_WAIT_TIMEOUT = 3600.0
_GLOB_CHARACTERS = frozenset("*?[")


def _text(location: Any) -> str:
    return os.fspath(location) if isinstance(location, os.PathLike) else str(location)


def is_video_name(name: str) -> bool:
    """Whether a file name has one of :data:`BATCH_VIDEO_EXTENSIONS`, in any case."""
    return PurePosixPath(name).suffix.lower().lstrip(".") in BATCH_VIDEO_EXTENSIONS


def _uri_prefix(text: str) -> str:
    """``scheme://conn_id@`` of a storage URI (``scheme://`` without a connection id)."""
    scheme, _, rest = text.partition("://")
    head = rest.split("/", 1)[0]
    return f"{scheme}://{head.rpartition('@')[0]}@" if "@" in head else f"{scheme}://"


def expand_sources(sources: Any) -> list[str]:
    """Every video named by ``sources``: files, folders (their videos, not recursive) and globs, local or remote.

    :param sources: one location or a list of them (local paths, ``file://``, ``s3://conn_id@bucket/...``,
        ``abfs://``...).
    :raises VideoInferValidationError: a source names nothing, or no video at all is found.
    """
    items = [sources] if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "protocol") else list(sources)
    found: list[str] = []
    for item in items:
        found.extend(_expand_one(item))
    if not found:
        raise VideoInferValidationError(f"No video found in {sources!r}: give video files, folders or globs.")
    return list(dict.fromkeys(found))


def _expand_one(item: Any) -> list[str]:
    text = _text(item).strip()
    if not text:
        raise VideoInferValidationError("An empty source was given: pass a video file, folder or glob.")
    path = storage.local_path(item)
    if path is not None:
        if _GLOB_CHARACTERS & set(path):
            matches = sorted(glob.glob(path))
        elif os.path.isdir(path):
            matches = sorted(os.path.join(path, name) for name in os.listdir(path))
        elif os.path.isfile(path):
            return [path]
        else:
            raise VideoInferValidationError(f"Source {storage.describe_location(item)} does not exist.")
        return [match for match in matches if os.path.isfile(match) and is_video_name(match)]
    fs, fs_path = storage.filesystem(item)
    prefix = _uri_prefix(text)
    if _GLOB_CHARACTERS & set(fs_path):
        keys = sorted(fs.glob(fs_path))
    elif fs.isdir(fs_path):
        keys = sorted(fs.ls(fs_path, detail=False))
    elif fs.exists(fs_path):
        return [text]
    else:
        raise VideoInferValidationError(f"Source {storage.describe_location(item)} does not exist.")
    return [prefix + key.lstrip("/") for key in keys if is_video_name(key) and not fs.isdir(key)]


def file_name(location: str) -> str:
    """The name a video gets in the batch: its file name (the CLI's choice too)."""
    return PurePosixPath(location.rstrip("/")).name


class VideoInferBatchStageOperator(VideoInferBaseOperator):
    """Fill a staging batch with videos, wait until the service holds them all, and return the batch id.

    Local videos are uploaded, streamed, through signed upload URLs. Videos in object storage
    (``s3://``, ``abfs://``, ``gs://``...) are staged **by reference**: each is presigned on the worker
    (fsspec ``sign()``, valid ``presigned_url_lifetime``) and only the URL goes to the service, which
    reads the video from the bucket; no byte crosses the worker and no credential leaves it. The URLs
    are never logged, kept in XCom or rendered.

    The batch id is derived from the task instance and its try group (a clear fills a new batch), so
    a retry adds nothing twice: the videos already in the batch are skipped. The operator then waits
    until the batch's count holds every video (the service indexes references in the background): in
    the triggerer when ``deferrable``, else in the worker; either way outages (5xx, 408, 429, lost
    connections) are ridden out until ``wait_timeout``.

    :param sources: a video file, a folder (its videos), a glob, or a list of them; local paths or storage
        URIs such as ``s3://aws_conn@bucket/videos/`` (templated).
    :param batch_id: the batch to fill (templated); default derived from the task instance.
    :param display_name: the batch's display name (templated); default its id.
    :param presigned_url_lifetime: seconds the presigned URLs stay valid (default a day): longer than
        this operator's wait and the job's start, since the service reads the videos when the job runs.
    :param poll_interval: seconds between two reads of the batch's count (default 10).
    :param wait_timeout: seconds to wait at most for the service to hold every video (default an hour).
    :param deferrable: wait in the triggerer rather than in the worker. Default: Airflow's
        ``[operators] default_deferrable``.
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    """

    template_fields: Sequence[str] = (*VideoInferBaseOperator.template_fields, "sources", "batch_id", "display_name")
    ui_color = "#e4f0e8"

    def __init__(
        self,
        *,
        sources: Any,
        batch_id: str | None = None,
        display_name: str | None = None,
        presigned_url_lifetime: float | datetime.timedelta = DEFAULT_PRESIGNED_URL_LIFETIME,
        poll_interval: float = 10.0,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        videoinfer_conn_id: str = VideoInferBatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        self.sources = sources
        self.batch_id = batch_id
        self.display_name = display_name
        self.presigned_url_lifetime = contract.validate_presigned_url_lifetime(presigned_url_lifetime)
        self.poll_interval = contract.validate_seconds("poll_interval", poll_interval, contract.MAX_POLL_INTERVAL)
        self.wait_timeout = contract.validate_seconds("wait_timeout", wait_timeout, contract.MAX_WAIT_SECONDS)
        self.deferrable = contract.validate_flag("deferrable", deferrable)
        if self.presigned_url_lifetime <= self.wait_timeout:
            raise VideoInferValidationError(
                f"presigned_url_lifetime ({self.presigned_url_lifetime} s) must be longer than wait_timeout "
                f"({self.wait_timeout:g} s): the service reads videos staged by reference when the job runs, after "
                "this wait. Raise presigned_url_lifetime (e.g. 86400, a day) or lower wait_timeout."
            )
        if batch_id is not None:
            validate_if_known(batch_id, contract.validate_staging_batch_id)

    @cached_property
    def hook(self) -> VideoInferBatchHook:  # type: ignore[override]
        """The Batch Processing hook of this task's connection, created once (in ``execute``)."""
        return VideoInferBatchHook(self.videoinfer_conn_id)

    def execute(self, context: Context) -> str:
        """Stage every video not yet in the batch, wait until the batch holds them all; return the batch id."""
        batch_id = contract.validate_staging_batch_id(self.batch_id or batch_id_for(context))
        videos = expand_sources(self.sources)
        by_name: dict[str, str] = {}
        for location in videos:
            name = file_name(location)
            if name in by_name:
                raise VideoInferValidationError(
                    f"Two videos would get the name {name!r} in batch {batch_id}: "
                    f"{storage.describe_location(by_name[name])} and {storage.describe_location(location)}. "
                    "A batch names videos by file name: rename one, or stage them in two batches."
                )
            by_name[name] = location
        present = {item.file_name for item in self.hook.list_files(batch_id)} if self.hook.count(batch_id) else set()
        missing = {name: location for name, location in by_name.items() if name not in present}
        self.log.info(
            "Batch %s: %d video(s) to stage, %d already in it, %d to add.",
            batch_id,
            len(by_name),
            len(by_name) - len(missing),
            len(missing),
        )
        local = {name: loc for name, loc in missing.items() if storage.local_path(loc) is not None}
        remote = {name: loc for name, loc in missing.items() if name not in local}
        display = self.display_name or batch_id
        for name, location in local.items():
            self.hook.upload_video(batch_id, location, name, display_name=display)
            self.log.info("Uploaded %s to batch %s as %s.", storage.describe_location(location), batch_id, name)
        if remote:
            self._register(batch_id, remote, display)
        if self.deferrable:
            self._defer(batch_id, len(by_name))
        return self._wait_for_count(batch_id, len(by_name))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the batch id, or raise for a timeout or a failed wait."""
        return CountEvent.from_payload(event).batch_id_or_raise()

    def _defer(self, batch_id: str, expected: int) -> None:
        deadline = time.time() + self.wait_timeout
        until = utc_time(deadline)
        self.log.info(
            "Batch %s: the wait for its %d video(s) continues in the triggerer (this worker slot is freed), reading "
            "its count every %g s until %s at the latest.",
            batch_id,
            expected,
            self.poll_interval,
            until,
        )
        trigger = VideoInferBatchCountTrigger(
            batch_id=batch_id,
            expected=expected,
            deadline=deadline,
            videoinfer_conn_id=self.videoinfer_conn_id,
            poll_interval=self.poll_interval,
        )
        timeout = deferral_backstop(self.wait_timeout, self.poll_interval)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def _register(self, batch_id: str, remote: dict[str, str], display: str) -> None:
        references = []
        for name, location in remote.items():
            url = storage.presigned_url(location, self.presigned_url_lifetime)
            mask_in_logs(url)
            references.append((name, url))
        ingest_id = "af-" + hashlib.sha256("\n".join([batch_id, *sorted(remote)]).encode()).hexdigest()[:29]
        _, duplicated = self.hook.register_video_references(
            batch_id, references, ingest_id=ingest_id, display_name=display
        )
        self.log.info(
            "Registered %d video(s) by reference in batch %s (ingest %s%s); the service reads them from the bucket "
            "through presigned URLs valid for %s: nothing is uploaded.",
            len(references),
            batch_id,
            ingest_id,
            ", a repeat the service deduplicated" if duplicated else "",
            datetime.timedelta(seconds=self.presigned_url_lifetime),
        )

    def _wait_for_count(self, batch_id: str, expected: int) -> str:
        """Read the batch's count in the worker until it holds ``expected`` videos (the trigger's pacing,
        :func:`~airflow_provider_videoinfer.triggers.batch.count_step`); return the batch id."""
        started = time.time()
        wait = waiting.Wait(
            batch_id, self.poll_interval, started, started + self.wait_timeout, self.hook.settings.retry
        )
        outage: waiting.Outage | None = None
        last: int | None = None
        while True:
            poll: int | VideoInferError
            try:
                poll = self.hook.count(batch_id, policy=SINGLE_ATTEMPT)
            except VideoInferError as err:
                poll = err
            now = time.time()
            outcome = count_step(wait, outage, poll, last, expected, now, random.random())
            last = poll if isinstance(poll, int) else last
            log_count(self.log, outcome, last, now)
            if isinstance(outcome, CountEvent):
                return outcome.batch_id_or_raise()
            outage = outcome.outage
            time.sleep(outcome.delay)

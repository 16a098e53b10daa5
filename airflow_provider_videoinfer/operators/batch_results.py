"""Keep a Batch Processing job's results: its output batch downloaded whole, archives unpacked, summarised.

Output batches expire with the rest of Data Staging (7 days), so a pipeline keeps its own copy.
The copy is made in a working folder that survives retries (files already there are not fetched
again), then committed at once: a local destination by one rename, object storage by uploading every
file and a ``_MANIFEST.json`` last. Readers trust a copy that has its manifest.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import functools
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer import contract, storage
from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferStorageFatalError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.hooks.batch import VideoInferBatchHook
from airflow_provider_videoinfer.operators.base import VideoInferBaseOperator, validate_if_known
from videoinfer_contract import batch as wire

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BatchResultsSummary", "VideoInferBatchResultsOperator", "summarise_folder"]

MANIFEST = "_MANIFEST.json"
#: The suffix of a file being downloaded; renamed to its name once complete.
PART_SUFFIX = ".part"


@dataclass
class BatchResultsSummary:
    """What a job's results hold (the results operator's XCom value).

    :param job_id: the job.
    :param destination: where the results were kept (a local folder or a storage URI).
    :param files: files kept (archives unpacked).
    :param videos: distinct videos in the rows.
    :param rows: result rows (one per sampled frame and video).
    :param detections: objects detected per class, over every row and Workflow output that holds detections.
    """

    job_id: str
    destination: str
    files: int = 0
    videos: int = 0
    rows: int = 0
    detections: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (XCom, the manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> BatchResultsSummary:
        """The summary of its JSON form (an XCom value, a manifest); keys it does not define are left out.

        :param value: the JSON form, e.g. the results operator's XCom value.
        :raises ValueError: when ``value`` lacks a field without a default (the job id, the destination).
        """
        known = {item.name: item for item in fields(cls)}
        missing = [
            name
            for name, item in known.items()
            if item.default is MISSING and item.default_factory is MISSING and name not in value
        ]
        if missing:
            raise ValueError(f"Not a batch results summary: it has no {', '.join(missing)}.")
        return cls(**{name: item for name, item in value.items() if name in known})


def _is_detection_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, Mapping) and "class" in item and "x" in item for item in value
    )


def count_detections(value: Any, counts: collections.Counter[str]) -> None:
    """Add the detections of one Workflow output's value (a ``predictions`` list of boxes) to ``counts``."""
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, Mapping):
        predictions = value.get("predictions")
        if _is_detection_list(predictions):
            counts.update(str(item["class"]) for item in predictions)  # type: ignore[union-attr]
    elif _is_detection_list(value):
        counts.update(str(item["class"]) for item in value)


def _rows(path: Path) -> Iterator[Mapping[str, Any]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    if isinstance(row, Mapping):
                        yield row
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)


def summarise_folder(folder: Path, job_id: str, destination: str) -> BatchResultsSummary:
    """Summarise every CSV and JSONL file under ``folder``: videos, rows, detections per class.

    :param folder: the complete local copy.
    :param job_id: the job.
    :param destination: where the copy is kept, for the summary.
    """
    summary = BatchResultsSummary(job_id, destination)
    videos: set[str] = set()
    counts: collections.Counter[str] = collections.Counter()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == MANIFEST or path.name.startswith("."):
            continue
        summary.files += 1
        for row in _rows(path):
            summary.rows += 1
            video = row.get(wire.ROW_COLUMNS[0])
            if video is not None:
                videos.add(str(video))
            for column, value in row.items():
                if column not in wire.ROW_COLUMNS:
                    count_detections(value, counts)
    summary.videos = len(videos)
    summary.detections = dict(sorted(counts.items()))
    return summary


def _safe_extract(archive: Path, into: Path) -> None:
    """Unpack a ``.tar``/``.tar.gz`` into ``into``, refusing members that would land outside it."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


class VideoInferBatchResultsOperator(VideoInferBaseOperator):
    """Download a batch job's output batch to a destination, complete or not at all; return a summary.

    Each stage of a job writes an output batch (a multipart batch: parts, each with files behind
    signed URLs). This operator keeps one stage's: ``export`` by default (archives, unpacked here), or
    ``processing`` (one CSV or JSONL file per video). Files land in ``<destination>/<job_id>/<part>/``.

    **Complete or not at all.** Files are fetched into a working folder (beside a local destination,
    or in the worker's temporary folder for object storage); each appears there only once whole, so
    a retry fetches only what is missing. When every file is there, the copy is committed: renamed
    into place locally, or uploaded file by file with ``_MANIFEST.json`` (the summary) written last.

    The summary (the XCom value) counts the files, the videos and rows of the results, and the
    objects detected per class where a Workflow output holds detections.

    :param job_id: the job (templated), e.g. ``VideoInferBatchJobOperator``'s return value.
    :param destination: a local folder or a storage URI (``s3://conn_id@bucket/prefix/``) (templated).
    :param stage: the stage whose output batch is kept: ``"export"`` (default) or ``"processing"``.
    :param overwrite: replace a copy already committed (default False: it is kept and summarised again).
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    """

    template_fields: Sequence[str] = (*VideoInferBaseOperator.template_fields, "job_id", "destination")
    ui_color = "#e8e4f0"

    def __init__(
        self,
        *,
        job_id: str,
        destination: str,
        stage: str = "export",
        overwrite: bool = False,
        videoinfer_conn_id: str = VideoInferBatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        if stage not in wire.JOB_STAGES:
            raise VideoInferValidationError(f"stage must be one of {', '.join(wire.JOB_STAGES)}, got {stage!r}.")
        self.job_id = job_id
        self.destination = destination
        self.stage = stage
        self.overwrite = contract.validate_flag("overwrite", overwrite)
        validate_if_known(job_id, contract.validate_batch_job_id)

    @cached_property
    def hook(self) -> VideoInferBatchHook:  # type: ignore[override]
        """The Batch Processing hook of this task's connection, created once (in ``execute``)."""
        return VideoInferBatchHook(self.videoinfer_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Download, commit and summarise the job's output batch."""
        job_id = contract.validate_batch_job_id(self.job_id)
        target = storage.in_folder(self.destination, job_id)
        where = storage.describe_location(target)
        local = storage.local_path(target)
        if self._committed(target) and not self.overwrite:
            self.log.info("The results of batch job %s are already kept in %s: summarising them.", job_id, where)
            return self._summary_of_committed(target, job_id)
        job = self.hook.get_job(job_id)
        if job.state is not wire.BatchJobState.SUCCEEDED:
            raise VideoInferValidationError(
                f"Batch job {job_id} is {job.state.value}: it has no results to keep. Wait for it with "
                "VideoInferBatchJobOperator or VideoInferBatchJobSensor first."
            )
        batches = self._output_batches(job_id)
        work = self._working_folder(job_id, local)
        fetched = 0
        for batch_id in batches:
            fetched += self._download_batch(batch_id, work)
        self.log.info(
            "Batch job %s: %d file(s) fetched into the working folder (the rest were there).", job_id, fetched
        )
        summary = summarise_folder(work, job_id, where)
        (work / MANIFEST).write_text(json.dumps(summary.to_dict(), indent=2))
        self._commit(work, target, local)
        self.log.info(
            "Kept the results of batch job %s in %s: %d file(s), %d video(s), %d row(s), detections %s.",
            job_id,
            where,
            summary.files,
            summary.videos,
            summary.rows,
            summary.detections or "none",
        )
        return summary.to_dict()

    def _output_batches(self, job_id: str) -> list[str]:
        stages = self.hook.job_stages(job_id)
        chosen = [stage for stage in stages if stage.name == self.stage]
        batches = [batch for stage in chosen for batch in stage.output_batches]
        if not batches:
            names = ", ".join(f"{stage.name} ({', '.join(stage.output_batches) or 'none'})" for stage in stages)
            raise VideoInferValidationError(
                f"Batch job {job_id} has no output batch of stage {self.stage!r} (its stages and output batches: "
                f"{names or 'none'}): choose another stage."
            )
        return batches

    def _working_folder(self, job_id: str, local: str | None) -> Path:
        """A folder that outlives a failed try (so the next fetches only what is missing)."""
        if local is not None:
            base = Path(local).parent
            base.mkdir(parents=True, exist_ok=True)
            folder = base / f".{job_id}.partial"
        else:
            folder = Path(tempfile.gettempdir()) / f"videoinfer-batch-results-{job_id}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _download_batch(self, batch_id: str, work: Path) -> int:
        """Fetch every file of every part of an output batch into ``work/<part>/``; archives unpacked."""
        fetched = 0
        parts = self.hook.list_parts(batch_id)
        listings = [(part.part_name, self.hook.list_files(batch_id, part.part_name)) for part in parts]
        if not parts:
            listings = [("", self.hook.list_files(batch_id))]
        for part_name, files in listings:
            folder = work / part_name if part_name else work
            folder.mkdir(parents=True, exist_ok=True)
            for item in files:
                name = Path(item.file_name).name
                if not name or name in (".", ".."):
                    raise VideoInferError(
                        f"Output batch {batch_id} lists a file without a usable name: {item.file_name!r}."
                    )
                done = folder / (f".{name}.unpacked" if item.is_archive else name)
                if done.exists():
                    continue
                temp = folder / f".{name}{PART_SUFFIX}"
                self.hook.transport.retrying(functools.partial(self._fetch, item, temp))
                if item.is_archive:
                    _safe_extract(temp, folder)
                    temp.unlink()
                    done.touch()
                else:
                    temp.replace(done)
                fetched += 1
        return fetched

    def _fetch(self, item: wire.StagedFile, temp: Path) -> None:
        with temp.open("wb") as out:
            self.hook.download_file(item, out)

    def _commit(self, work: Path, target: Any, local: str | None) -> None:
        """Make the complete copy appear at ``target`` at once (a rename), or uploaded with its manifest last."""
        for marker in work.rglob(".*.unpacked"):
            marker.unlink()
        if local is not None:
            final = Path(local)
            if final.exists():
                if not self.overwrite:
                    raise VideoInferStorageFatalError(f"{final} exists: pass overwrite=True to replace it.")
                shutil.rmtree(final)
            work.replace(final)
            return
        files = sorted(path for path in work.rglob("*") if path.is_file() and path.name != MANIFEST)
        for path in files:
            storage.upload_file(path, storage.in_folder(target, path.relative_to(work).as_posix()))
        storage.upload_file(work / MANIFEST, storage.in_folder(target, MANIFEST))
        shutil.rmtree(work, ignore_errors=True)

    def _committed(self, target: Any) -> bool:
        local = storage.local_path(target)
        if local is not None:
            return (Path(local) / MANIFEST).is_file()
        fs, path = storage.filesystem(storage.in_folder(target, MANIFEST))
        return bool(fs.exists(path))

    def _summary_of_committed(self, target: Any, job_id: str) -> dict[str, Any]:
        with storage.open_location(storage.in_folder(target, MANIFEST)) as handle:
            saved = json.loads(handle.read())
        if not isinstance(saved, dict) or saved.get("job_id") != job_id:
            raise VideoInferStorageFatalError(
                f"{storage.describe_location(target)} holds a manifest of another job: choose another destination."
            )
        return saved

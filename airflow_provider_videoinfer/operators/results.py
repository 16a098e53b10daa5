"""The operator that downloads a job's result file, summarises it, and optionally keeps and exports it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import Asset, AssetAlias

from airflow_provider_videoinfer import storage
from airflow_provider_videoinfer.contract import validate_inference_types
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.base import VideoInferBaseOperator, is_runtime_value
from airflow_provider_videoinfer.results.contact_sheet import contact_sheet_location, make_contact_sheet
from airflow_provider_videoinfer.results.reader import ResultReader
from airflow_provider_videoinfer.results.rows import RowsWriter, require_pyarrow, validate_rows_format
from airflow_provider_videoinfer.results.summarizer import DEFAULT_MAX_TIMELINE_BUCKETS
from airflow_provider_videoinfer.results.summary import ContactSheet, ResultSummary, RowsExport
from airflow_provider_videoinfer.storage import Location, asset_uri, describe_location

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

#: The file names used inside a destination that is a folder.
RESULT_FILE_NAME = "result.json"
ROWS_FILE_NAME = "rows.{format}"

__all__ = ["VideoInferResultsOperator", "asset_uri", "plan_destinations"]


def plan_destinations(
    destination: Location | None,
    rows_destination: Location | None,
    rows_format: str,
    probe: bool = True,
    video: Location | None = None,
) -> tuple[Location | None, Location | None]:
    """Where the kept result and the rows go: folders become files in them, and no two outputs collide.

    A destination that ends with ``/`` (or, when ``probe``, is an existing folder) is written
    inside it as ``result.json``; a rows destination as ``rows.<format>``. No output may be the
    source ``video`` or lie inside it. When ``probe``, each output is checked writable (see
    :func:`~airflow_provider_videoinfer.storage.check_writable`), before any download.

    :param probe: ask the file system whether a destination is a folder, whether its bucket
        exists, and whether it can be written (not at parse time).
    :param video: the job's source video, which no output may overwrite.
    :raises VideoInferValidationError: a location is empty, two outputs are the same file, or an
        output would overwrite the video.
    :raises VideoInferStorageError: a destination cannot be written (its folder is a file, is not
        writable, its bucket does not exist, access is denied).
    """
    for name, location in (("destination", destination), ("rows_destination", rows_destination), ("video", video)):
        if location is not None and not str(location).strip():
            raise VideoInferValidationError(
                f"{name} is empty: pass a path or URI such as /data/results/{{{{ ds }}}}.json, or leave it out "
                f"(None){' to keep no copy' if name == 'destination' else ''}."
            )
    for name, location in (("destination", destination), ("rows_destination", rows_destination)):
        if isinstance(location, str) and urlsplit(location.strip()).scheme.lower() in ("http", "https"):
            raise VideoInferValidationError(
                f"{name} {describe_location(location)!r} is an http(s) URL, which cannot be written: pass a local "
                "path or a storage URI such as s3://bucket/results/result.json."
            )
    planned = []
    names = (RESULT_FILE_NAME, ROWS_FILE_NAME.format(format=rows_format))
    for location, name in zip((destination, rows_destination), names, strict=True):
        folder = location is not None and (
            storage.is_folder(location) if probe else str(location).endswith(("/", os.sep))
        )
        planned.append(storage.in_folder(location, name) if folder else location)  # type: ignore[arg-type]
    kept, rows = planned
    if kept is not None and rows is not None and asset_uri(kept) == asset_uri(rows):
        raise VideoInferValidationError(
            f"destination and rows_destination are the same file ({describe_location(kept)}): the rows would "
            "overwrite the kept result. Give rows_destination another name, e.g. one ending in "
            f".{rows_format}."
        )
    outputs = [("destination", kept), ("rows_destination", rows)]
    if probe and video is not None and kept is not None:
        outputs.append(("the contact sheet", contact_sheet_location(kept)))
    for name, output in outputs:
        if output is None:
            continue
        if video is not None and storage.overlaps(output, video):
            raise VideoInferValidationError(
                f"{name} ({describe_location(output)}) would overwrite the source video {describe_location(video)} "
                "or write inside it: keep the results elsewhere, e.g. beside the video as result.json."
            )
        if probe:
            storage.check_writable(output)
    return kept, rows


class VideoInferResultsOperator(VideoInferBaseOperator):
    """Download a job's result file, summarise it per model, and return the summary (XCom).

    The file is read streaming, in bounded memory, whatever its size. With ``destination`` the
    file is kept there (signed output URLs expire) and declared as an Airflow Asset: when
    ``destination`` is a fixed location, ``Asset(<its URI>)`` is added to the task's outlets at
    parse time. When it is templated the location is only known at run time, so no Asset can be
    declared up front: pass ``outlets=[AssetAlias("my-alias")]`` and the operator attaches an
    event of ``Asset(<rendered URI>)`` to each ``AssetAlias`` among its outlets. Without
    ``destination`` the file goes to a temporary file, deleted when the task ends.

    :param output_url: the job's ``output_signed_url`` (templated), e.g. the return value of
        ``VideoInferSubmitJobOperator(wait_for_completion=True)``.
    :param destination: where to keep the result file (templated): a local path, an
        ``ObjectStoragePath`` or a URI such as ``s3://bucket/results/{{ ds }}.json``; optional.
    :param rows_destination: where to export one row per prediction (templated), same forms;
        optional, no export when None.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs ``pip install pyarrow``).
    :param videoinfer_conn_id: the ``videoinfer`` connection used for the download (templated).
    :param inference_types: optional ``{model_id: inference_type}`` to type models whose results'
        shape is ambiguous; by default each model's type is read from its results.
    :param max_timeline_buckets: the most timeline buckets per model in the summary (default 600);
        buckets are whole seconds, widened by doubling to stay within it.
    :param video: the job's source video (templated): a local path or storage URI; optional (None or
        an empty string for none). With it and ``destination``, a contact sheet of the frames with
        the most detections, drawn, is kept beside the result as ``<stem>.contact-sheet.png`` and
        named in the summary under ``contact_sheet`` (needs the ``contact-sheet`` extra; a video
        that cannot be read is logged and skipped, the summary stays intact).
    """

    template_fields: Sequence[str] = (
        *VideoInferBaseOperator.template_fields,
        "output_url",
        "destination",
        "rows_destination",
        "video",
    )
    ui_color = "#e8eef7"

    def __init__(
        self,
        *,
        output_url: Any,
        destination: Location | None = None,
        rows_destination: Location | None = None,
        rows_format: str = "jsonl",
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        inference_types: Mapping[str, str] | None = None,
        max_timeline_buckets: int = DEFAULT_MAX_TIMELINE_BUCKETS,
        video: Location | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        self.video = video if video != "" else None
        self.output_url = output_url
        self.destination = destination
        self.rows_destination = rows_destination
        self.rows_format = validate_rows_format(rows_format)
        self.inference_types = validate_inference_types(inference_types)
        if (
            isinstance(max_timeline_buckets, bool)
            or not isinstance(max_timeline_buckets, int)
            or max_timeline_buckets < 1
        ):
            raise VideoInferValidationError(
                f"max_timeline_buckets must be a whole number of at least 1, got {max_timeline_buckets!r}."
            )
        self.max_timeline_buckets = max_timeline_buckets
        if any(value is not None and not is_runtime_value(value) for value in (destination, rows_destination)):
            kept, _ = plan_destinations(
                None if is_runtime_value(destination) else destination,
                None if is_runtime_value(rows_destination) else rows_destination,
                self.rows_format,
                probe=False,  # no file system calls at parse time
                video=None if is_runtime_value(self.video) else self.video,
            )
            if kept is not None:
                asset = Asset(asset_uri(kept))
                if asset not in self.outlets:
                    self.outlets = [*self.outlets, asset]

    def _url(self) -> str:
        url: Any = self.output_url
        if not isinstance(url, str) or not url.strip():
            raise VideoInferValidationError(
                f"task {self.task_id}: output_url must be the job's output URL (a non-empty string), got "
                f"{type(url).__name__}; pass the return value of VideoInferSubmitJobOperator with "
                "wait_for_completion=True."
            )
        return url.strip()

    def execute(self, context: Context) -> ResultSummary:
        """Download, keep and summarise the result file; return the summary.

        The summary is a :class:`~airflow_provider_videoinfer.results.summary.ResultSummary` whose
        ``source`` is where the file was kept (None without ``destination``), with ``rows`` (the
        export, or None) and, with ``video``, ``contact_sheet``. Every destination is checked
        before the download.
        """
        url = self._url()
        if self.video == "":  # a template or an XCom value that renders empty: no video
            self.video = None
        destination, rows_destination = plan_destinations(
            self.destination, self.rows_destination, self.rows_format, video=self.video
        )
        self._lineage = (url, destination, rows_destination)
        if rows_destination is not None and self.rows_format == "parquet":
            require_pyarrow()  # before a download that may be gigabytes
        with tempfile.TemporaryDirectory(prefix="videoinfer-results-") as temp:
            kept = storage.local_path(destination) if destination is not None else None
            path = self.hook.download_result(url, kept or os.path.join(temp, RESULT_FILE_NAME))
            if destination is not None and kept is None:
                storage.upload_file(path, destination)  # read locally rather than twice remotely
            summary = self._summarize(path, destination, rows_destination)
            if self.video is not None:
                summary["contact_sheet"] = self._contact_sheet(path, destination)
        if destination is not None:
            self._add_asset_alias_events(context, destination)
        return summary

    def _summarize(self, path: str, destination: Location | None, rows_destination: Location | None) -> ResultSummary:
        """Read the downloaded file once, feeding the summary and the rows export."""
        with ResultReader(path, self.inference_types) as reader:
            if rows_destination is None:
                summary = reader.summarize(max_timeline_buckets=self.max_timeline_buckets)
                rows = None
            else:
                with RowsWriter(rows_destination, self.rows_format) as writer:
                    summary = reader.summarize(writer, max_timeline_buckets=self.max_timeline_buckets)
                rows = RowsExport(
                    destination=describe_location(rows_destination), format=self.rows_format, count=writer.rows
                )
        summary["source"] = describe_location(destination) if destination is not None else None
        summary["rows"] = rows
        self.log.info(
            "Summarised %d frames of %d model(s)%s.",
            summary["frames"],
            len(summary["models"]),
            f", kept at {summary['source']}" if summary["source"] else "",
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the result file read (its URL without the signature), the kept copy and the rows."""
        from airflow_provider_videoinfer.lineage import results_lineage

        url, destination, rows = getattr(self, "_lineage", (None, self.destination, self.rows_destination))
        return results_lineage(url, destination, rows)

    def _contact_sheet(self, path: str, destination: Location | None) -> ContactSheet | None:
        if destination is None:
            self.log.warning("No contact sheet: it is kept beside the result, and no destination is set.")
            return None
        with ResultReader(path, self.inference_types) as reader:
            return make_contact_sheet(reader, self.video, contact_sheet_location(destination))  # type: ignore[arg-type]

    def _add_asset_alias_events(self, context: Context, destination: Location) -> None:
        aliases = [outlet for outlet in self.outlets if isinstance(outlet, AssetAlias)]
        if aliases:
            asset = Asset(asset_uri(destination))
            for alias in aliases:
                context["outlet_events"][alias].add(asset)

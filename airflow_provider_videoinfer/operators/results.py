"""The operator that downloads a job's result file, summarises it, and optionally keeps and exports it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import is_runtime_value
from airflow_provider_videoinfer.results.contact_sheet import contact_sheet_location, make_contact_sheet
from airflow_provider_videoinfer.results.reader import (
    ResultLocation,
    ResultReader,
    validate_inference_types,
)
from airflow_provider_videoinfer.results.rows import RowsWriter, require_pyarrow, validate_rows_format
from airflow_provider_videoinfer.results.summary import DEFAULT_MAX_TIMELINE_BUCKETS
from airflow_provider_videoinfer.storage import describe_location, local_path, open_location

if TYPE_CHECKING:
    from airflow.sdk import Context


def asset_uri(location: ResultLocation) -> str:
    """Return the Asset URI of a file location: ``file:///abs/path`` or ``scheme://bucket/key``.

    A connection id in an ``ObjectStoragePath`` (``s3://conn_id@bucket/key``) is left out.
    """
    path = local_path(location)
    if path is not None:
        return Path(path).expanduser().resolve().as_uri()
    protocol = getattr(location, "protocol", None)
    if protocol is not None:
        return f"{protocol}://{str(location.path).lstrip('/')}"  # type: ignore[union-attr]
    return str(location)


class VideoInferResultsOperator(BaseOperator):
    """Download a job's result file, summarise it per model, and return the summary (XCom).

    The file is read streaming, in bounded memory, whatever its size. With ``destination`` the
    file is kept there (signed output URLs expire) and declared as an Airflow Asset: when
    ``destination`` is a fixed location, ``Asset(<its URI>)`` is added to the task's outlets at
    parse time. When it is templated the location is only known at run time, so no Asset can be
    declared up front: pass ``outlets=[AssetAlias("my-alias")]`` and the operator attaches an
    event of ``Asset(<rendered URI>)`` to each ``AssetAlias`` among its outlets. Without
    ``destination`` the file goes to a temporary file, deleted when the task ends.

    :param output_url: the job's ``output_signed_url`` (templated), e.g. the return value of
        ``VideoInferSubmitJobOperator(wait_for_completion=True)``; a job state dict with an
        ``output_url`` key is accepted too.
    :param destination: where to keep the result file (templated): a local path, an
        ``ObjectStoragePath`` or a URI such as ``s3://bucket/results/{{ ds }}.json``; optional.
    :param rows_destination: where to export one row per prediction (templated), same forms;
        optional, no export when None.
    :param rows_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs ``pip install pyarrow``).
    :param videoinfer_conn_id: the ``videoinfer`` connection used for the download.
    :param inference_types: optional ``{model_id: inference_type}`` to type models whose results'
        shape is ambiguous; by default each model's type is read from its results.
    :param max_timeline_buckets: the most timeline buckets per model in the summary (default 600);
        buckets are whole seconds, widened by doubling to stay within it.
    :param video: the job's source video (templated): a local path or storage URI; optional. With
        it and ``destination``, a contact sheet of the frames with the most detections, drawn, is
        kept beside the result as ``<stem>.contact-sheet.png`` and named in the summary under
        ``contact_sheet`` (needs the ``contact-sheet`` extra; a video that cannot be read is logged
        and skipped, the summary stays intact).
    """

    template_fields: Sequence[str] = ("output_url", "destination", "rows_destination", "video")
    ui_color = "#e8eef7"

    def __init__(
        self,
        *,
        output_url: Any,
        destination: ResultLocation | None = None,
        rows_destination: ResultLocation | None = None,
        rows_format: str = "jsonl",
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        inference_types: Mapping[str, str] | None = None,
        max_timeline_buckets: int = DEFAULT_MAX_TIMELINE_BUCKETS,
        video: ResultLocation | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.video = video
        self.output_url = output_url
        self.destination = destination
        self.rows_destination = rows_destination
        self.rows_format = validate_rows_format(rows_format)
        self.videoinfer_conn_id = videoinfer_conn_id
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
        if destination is not None and not is_runtime_value(destination):
            asset = Asset(asset_uri(destination))
            if asset not in self.outlets:
                self.outlets = [*self.outlets, asset]

    @cached_property
    def hook(self) -> VideoInferHook:
        """The hook of the operator's connection."""
        return VideoInferHook(self.videoinfer_conn_id)

    def _url(self) -> str:
        url = self.output_url
        if isinstance(url, Mapping):
            url = url.get("output_url")
        if not isinstance(url, str) or not url.strip():
            raise VideoInferValidationError(
                f"task {self.task_id}: output_url must be the job's output URL (a non-empty string), got "
                f"{type(self.output_url).__name__}; pass the return value of VideoInferSubmitJobOperator with "
                "wait_for_completion=True, or the 'output_url' of its job state."
            )
        return url.strip()

    def execute(self, context: Context) -> dict[str, Any]:
        """Download, keep and summarise the result file; return the summary.

        The summary is :meth:`ResultSummary.to_dict`, whose ``source`` is where the file was kept
        (None without ``destination``), plus ``rows``: ``{"destination", "format", "count"}`` of
        the export, or None.
        """
        url = self._url()
        if self.rows_destination is not None and self.rows_format == "parquet":
            require_pyarrow()  # before a download that may be gigabytes
        with tempfile.TemporaryDirectory(prefix="videoinfer-results-") as temp:
            kept = local_path(self.destination) if self.destination is not None else None
            path = self.hook.download_result(url, kept or os.path.join(temp, "result.json"))
            if self.destination is not None and kept is None:
                # Read the local copy, rather than the remote one twice, and upload it once.
                with open(path, "rb") as source, open_location(self.destination, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            summary = self._summarize(path)
            if self.video is not None:
                summary["contact_sheet"] = self._contact_sheet(path)
        if self.destination is not None:
            self._add_asset_alias_events(context)
        return summary

    def _summarize(self, path: str) -> dict[str, Any]:
        with ResultReader(path, self.inference_types) as reader, contextlib.ExitStack() as stack:
            summary = reader.summary(max_timeline_buckets=self.max_timeline_buckets)
            rows = None
            if self.rows_destination is not None:
                rows = stack.enter_context(RowsWriter(self.rows_destination, self.rows_format))
            for frame in reader:
                summary.add(frame)
                if rows is not None:
                    rows.write(frame)
        result = summary.to_dict()
        kept = describe_location(self.destination) if self.destination is not None else None
        result["source"] = kept  # the local temporary path means nothing once deleted
        result["rows"] = (
            None
            if rows is None
            else {
                "destination": describe_location(self.rows_destination),  # type: ignore[arg-type]
                "format": self.rows_format,
                "count": rows.rows,
            }
        )
        self.log.info(
            "Summarised %d frames of %d model(s)%s.",
            result["frames"],
            len(result["models"]),
            f", kept at {kept}" if kept else "",
        )
        return result

    def _contact_sheet(self, path: str) -> dict[str, Any] | None:
        if self.destination is None:
            self.log.warning("No contact sheet: it is kept beside the result, and no destination is set.")
            return None
        with ResultReader(path, self.inference_types) as reader:
            return make_contact_sheet(reader, self.video, contact_sheet_location(self.destination))  # type: ignore[arg-type]

    def _add_asset_alias_events(self, context: Context) -> None:
        aliases = [outlet for outlet in self.outlets if isinstance(outlet, AssetAlias)]
        if aliases:
            asset = Asset(asset_uri(self.destination))  # type: ignore[arg-type]
            for alias in aliases:
                context["outlet_events"][alias].add(asset)

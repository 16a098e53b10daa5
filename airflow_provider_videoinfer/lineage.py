"""OpenLineage datasets of the provider's operators: the video, the service's copy, the kept result and rows.

The operators' ``get_openlineage_facets_on_complete`` methods call these functions. They matter
only when the OpenLineage provider (``apache-airflow-providers-openlineage``) is installed: its
listener calls the methods; without it nothing calls them and nothing changes.

Names follow OpenLineage's naming conventions, as Airflow's own providers write them:
``s3://bucket`` + ``key``, ``file`` + ``/absolute/path``, and ``https://host`` + ``path`` for
the service's signed URLs, whose query string (a credential until it expires) is left out, as is
any Airflow connection id of a storage URI.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_videoinfer.storage import Location, asset_uri

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


def dataset_name(location: Location) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of a file location or an http(s) URL.

    :param location: a local path, a storage URI (``s3://conn_id@bucket/key``), an
        ``ObjectStoragePath``, or an http(s) URL such as a signed URL.
    """
    text = str(location)
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", parts.path or "/"
    parts = urlsplit(asset_uri(location))
    if parts.scheme == "file":
        return ("file", parts.path) if not parts.netloc else (f"file://{parts.netloc}", parts.path)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


def _datasets(locations: Iterable[Location | None]) -> list[Any]:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return [Dataset(*dataset_name(location)) for location in locations if location is not None and str(location)]


def operator_lineage(
    inputs: Iterable[Location | None] = (), outputs: Iterable[Location | None] = ()
) -> OperatorLineage:
    """The ``OperatorLineage`` of an operator's input and output locations (None entries are skipped).

    Call it only from ``get_openlineage_facets_*`` methods, which run only when the OpenLineage
    provider is installed.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=_datasets(inputs), outputs=_datasets(outputs))


def upload_lineage(video: Location | None, input_url: str | None) -> OperatorLineage:
    """Lineage of an upload: the video read, and the service's copy at the signed URL (without its query)."""
    return operator_lineage([video], [input_url])


def submit_lineage(input_url: str | None) -> OperatorLineage:
    """Lineage of a job submission: the input video's URL (the result's is the results operator's input)."""
    return operator_lineage([input_url])


def results_lineage(
    output_url: str | None, destination: Location | None, rows_destination: Location | None
) -> OperatorLineage:
    """Lineage of the results operator: the result read, the kept copy and the rows file written."""
    return operator_lineage([output_url], [destination, rows_destination])

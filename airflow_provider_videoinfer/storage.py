"""Where videos and result files live: local paths and storage URIs, resolved in one place.

Every entry point (the upload, the download, the result reader and the writers) resolves a
location here, so that they accept the same locations and fail the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

from airflow_provider_videoinfer.api import redact
from airflow_provider_videoinfer.exceptions import VideoInferValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

Location = Union[str, "os.PathLike[str]", "ObjectStoragePath"]


def describe_location(location: Location) -> str:
    """Return a printable name of a file location, with any ``api_key`` masked."""
    return redact(os.fspath(location) if isinstance(location, os.PathLike) else str(location))


def local_path(location: Location) -> str | None:
    """Return the local file system path of ``location``, or None when it is remote.

    :param location: a path, a ``file://`` URI, or an ``ObjectStoragePath``/``UPath``.
    """
    protocol = getattr(location, "protocol", None)
    if protocol is not None:  # ObjectStoragePath or another universal_pathlib path
        return str(location.path) if protocol in ("", "file", "local") else None  # type: ignore[union-attr]
    text = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
    if text.startswith("file://"):
        from fsspec.core import url_to_fs

        return str(url_to_fs(text)[1])
    return None if "://" in text else text


def open_location(location: Location, mode: str = "rb") -> IO[bytes]:
    """Open a local path, an ``ObjectStoragePath`` or an fsspec URI in binary ``mode``.

    A URI string is opened as an Airflow ``ObjectStoragePath`` (so that ``s3://conn_id@bucket/key``
    uses the Airflow connection), or with plain fsspec for schemes Airflow has no file system for
    (such as ``memory://``).
    """
    path = local_path(location)
    if path is not None:
        return open(path, mode)  # noqa: SIM115 - the caller closes it
    if hasattr(location, "open"):
        return location.open(mode)  # type: ignore[union-attr]
    from airflow.sdk import ObjectStoragePath

    try:
        storage_path = ObjectStoragePath(str(location))
        storage_path.fs  # noqa: B018 - resolves the file system, raising for unknown schemes
    except ValueError:
        import fsspec

        return fsspec.open(str(location), mode).open()
    return storage_path.open(mode)


def resolve(value: Location) -> Path | ObjectStoragePath:
    """A local path, or an ``ObjectStoragePath`` for a storage URI (anything with ``://``)."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(value, ObjectStoragePath):
        return value
    if "://" in str(value):
        return ObjectStoragePath(str(value))
    return Path(value).expanduser()


def open_video_source(source: Location) -> tuple[Callable[[], IO[bytes]], int, str]:
    """Check an upload source before any network call; return (opener, size, name)."""
    if not isinstance(source, (str, os.PathLike)) and not hasattr(source, "open") or not str(source).strip():
        raise VideoInferValidationError(f"video must be a file path or storage URI, got {source!r}.")
    path = resolve(source)
    if not path.exists():
        raise VideoInferValidationError(f"video {str(source)!r} does not exist: check the path or URI.")
    if not path.is_file():
        raise VideoInferValidationError(f"video {str(source)!r} is not a file (a directory?): pass one video file.")
    size = path.stat().st_size
    if size == 0:
        raise VideoInferValidationError(f"video {str(source)!r} is empty (0 bytes): nothing to upload.")
    return (lambda: path.open("rb")), size, path.name

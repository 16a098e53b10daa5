"""Where videos and result files live: local paths and storage URIs, resolved in one place.

Every entry point (the upload, the download, the result reader and the writers) resolves a
location here, so that they accept the same locations and fail the same way:

- a local path, or a ``file://`` URI;
- a storage URI, opened as an Airflow ``ObjectStoragePath`` so that ``s3://conn_id@bucket/key``
  uses the Airflow connection ``conn_id`` (S3 needs ``apache-airflow-providers-amazon[s3fs]``,
  the provider's ``s3`` extra); schemes Airflow has no file system for (``memory://``) go to
  plain fsspec;
- an ``ObjectStoragePath`` (or another universal_pathlib path).

Files are written whole or not at all (:func:`atomic_write`), checked before they replace
anything, with the mode any file the user writes gets (their umask); a destination is checked
before a download (:func:`check_writable`); storage failures become a
:class:`~airflow_provider_videoinfer.exceptions.VideoInferStorageError` that names the location
and what to check (:class:`~airflow_provider_videoinfer.exceptions.VideoInferStorageFatalError`
when a retry cannot fix it).

A job's input may be a storage URI too: :func:`presigned_url` checks the object and has its file
system sign a GET URL for it (fsspec's ``sign()``), so that the service reads the video straight
from the bucket and no byte of it crosses the worker. :func:`presigned_url_warning` says when such
a URL dies before its lifetime, with the temporary credentials that signed it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.contract import redact
from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferStorageError,
    VideoInferStorageFatalError,
    VideoInferValidationError,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

Location = Union[str, "os.PathLike[str]", "ObjectStoragePath"]

#: Bytes fetched per request when streaming from object storage; the file system keeps about
#: this much in its cache (s3fs's default is 50 MiB, read ahead: 155 MiB of RSS for an upload).
STREAM_BLOCK_SIZE = 8 << 20
#: The query parameter of a presigned S3 URL signed with temporary credentials (SigV2 and SigV4).
SESSION_TOKEN_PARAMETER = "x-amz-security-token"
#: Bytes fetched to read a remote video's first bytes (its container's signature).
HEADER_BLOCK_SIZE = 64 << 10

__all__ = [
    "Location",
    "VideoInferStorageError",
    "VideoInferStorageFatalError",
    "asset_uri",
    "atomic_write",
    "can_presign",
    "check_presignable",
    "check_video_header",
    "check_writable",
    "describe_location",
    "filesystem",
    "in_folder",
    "is_folder",
    "is_storage_uri",
    "local_path",
    "open_location",
    "open_video_source",
    "overlaps",
    "presigned_url",
    "presigned_url_warning",
    "require_regular_file",
    "resolve",
    "storage_error",
    "upload_file",
]

#: Where to turn when the service cannot read a video from where it is.
UPLOAD_HINT = (
    "Copy it to the service with VideoInferUploadOperator(video=...) instead, and pass its return value as input_url."
)


#: The how-to for a folder of videos, which an upload of a folder points to.
FOLDER_HOWTO = "https://github.com/videoinfer/airflow-provider-videoinfer/blob/main/docs/howto/folder.rst"


def video_file_name(location: str) -> str:
    """The file name a video is uploaded as: the last part of its path or URI, checked (see
    :func:`~airflow_provider_videoinfer.contract.validate_video_file_name`). A name without any
    extension, such as a folder's, is told so and pointed to the folder how-to.

    :param location: the video's path or URI, or the ``file_name`` to upload it as.
    """
    name = PurePosixPath(location.rstrip("/" + os.sep)).name or location
    if "." not in name or location.endswith(("/", os.sep)):
        raise VideoInferValidationError(
            f"{describe_location(location)!r} has no file extension, as a folder has: an upload takes one video "
            f"file ({', '.join('.' + ext for ext in contract.VIDEO_EXTENSIONS)}). For a folder of videos, map a "
            f"task over its files: {FOLDER_HOWTO}"
        )
    return contract.validate_video_file_name(name)  # type: ignore[no-any-return]


def _text(location: Location) -> str:
    return os.fspath(location) if isinstance(location, os.PathLike) else str(location)


def describe_location(location: Location) -> str:
    """Return a printable name of a file location, with any ``api_key`` masked."""
    return redact(_text(location))


def local_path(location: Location) -> str | None:
    """Return the local file system path of ``location``, or None when it is remote.

    :param location: a path, a ``file://`` URI, or an ``ObjectStoragePath``/``UPath``.
    """
    protocol = getattr(location, "protocol", None)
    if protocol is not None:  # ObjectStoragePath or another universal_pathlib path
        return str(location.path) if protocol in ("", "file", "local") else None  # type: ignore[union-attr]
    text = _text(location)
    if text.startswith("file://"):
        from fsspec.core import url_to_fs

        return str(url_to_fs(text)[1])
    return None if "://" in text else os.path.expanduser(text)


def asset_uri(location: Location) -> str:
    """Return the Asset URI of a file location: ``file:///abs/path`` or ``scheme://bucket/key``.

    A connection id (``s3://conn_id@bucket/key``, as a string or an ``ObjectStoragePath``) is left
    out, so that a DAG scheduled on ``Asset("s3://bucket/key")`` runs when the file is written.
    """
    path = local_path(location)
    if path is not None:
        return Path(path).resolve().as_uri()
    protocol = getattr(location, "protocol", None)
    if protocol is not None:
        return f"{protocol}://{str(location.path).lstrip('/')}"  # type: ignore[union-attr]
    parts = urlsplit(_text(location))
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def is_folder(location: Location) -> bool:
    """Whether ``location`` names a folder: it ends with ``/``, or is an existing directory.

    Used on destinations before a download, so it also checks what it can of a remote one.

    :raises VideoInferStorageError: its bucket does not exist, or access is denied.
    """
    text = _text(location)
    path = local_path(location)
    if path is not None:
        return text.endswith(("/", os.sep)) or os.path.isdir(path)
    fs, fs_path = filesystem(location)

    def check() -> bool:
        folder = bool(fs.isdir(fs_path))  # first: it raises when access is denied, exists() does not
        bucket = fs.split_path(fs_path)[0] if hasattr(fs, "split_path") else None
        if bucket and not fs.exists(bucket):
            raise FileNotFoundError(f"bucket {bucket!r} does not exist")
        return text.endswith("/") or folder

    return bool(_guard(location, "write to", check))


def in_folder(folder: Location, name: str) -> Location:
    """The location of the file ``name`` inside ``folder``, in the form ``folder`` was given."""
    if hasattr(folder, "joinpath"):
        return folder.joinpath(name)  # type: ignore[union-attr]
    return _text(folder).rstrip("/" + os.sep) + "/" + name


def filesystem(location: Location) -> tuple[Any, str]:
    """The fsspec file system of a remote location and the path within it.

    :raises VideoInferStorageError: no file system is installed for the scheme (e.g. ``s3://``
        without ``apache-airflow-providers-amazon[s3fs]``).
    """
    if hasattr(location, "fs") and hasattr(location, "path"):
        return location.fs, str(location.path)  # type: ignore[union-attr]
    text = _text(location)
    try:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(text)
        return path.fs, str(path.path)
    except (ValueError, ImportError):
        pass
    try:
        from fsspec.core import url_to_fs

        return url_to_fs(text)
    except (ValueError, ImportError) as err:
        hint = (
            " Install the provider's s3 extra: pip install 'airflow-provider-videoinfer[s3]'."
            if text.startswith(("s3://", "s3a://"))
            else ""
        )
        raise VideoInferStorageError(
            f"{describe_location(location)}: no file system for this scheme ({err}).{hint}"
        ) from None


def storage_error(location: Location, action: str, err: BaseException) -> VideoInferStorageError:
    """The provider's error for a failed storage call: names the location, the cause and what to check.

    Fatal (:class:`VideoInferStorageFatalError`) when a retry cannot fix it; else the task keeps its retries.

    :param location: the location concerned.
    :param action: what was being done, e.g. ``"write to"``.
    :param err: the file system's exception.
    """
    where = describe_location(location)
    local = local_path(location) is not None
    fatal, transient = VideoInferStorageFatalError, VideoInferStorageError
    code = getattr(err, "errno", None)
    if isinstance(err, FileNotFoundError):
        check = "the path" if local else "the bucket and the path"
        return fatal(f"cannot {action} {where}: it does not exist ({err}); check {check}.")
    if isinstance(err, PermissionError):
        if local:
            check = "the permissions of the file and of its folder (ls -ld), and the user the task runs as"
        else:
            check = "the credentials of the connection named in the URI (s3://conn_id@bucket/key) and its permissions"
        return fatal(f"cannot {action} {where}: access denied ({err}); check {check}.")
    if isinstance(err, IsADirectoryError):
        example = f"{where.rstrip('/')}/result.json"
        return fatal(f"cannot {action} {where}: it is a folder ({err}); give a file name, e.g. {example}.")
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return fatal(
            f"cannot {action} {where}: a file stands where a folder of the path must be ({err}); move that file "
            "away or choose another location."
        )
    if code == errno.EROFS:
        return fatal(f"cannot {action} {where}: the file system is read-only ({err}); choose a writable location.")
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return transient(f"cannot {action} {where}: no space left ({err}); free some space or choose another location.")
    if isinstance(err, (OSError, ValueError)):
        return transient(f"cannot {action} {where}: {err}")
    if type(err).__name__ in ("NoCredentialsError", "PartialCredentialsError"):  # botocore's, no OSError
        return fatal(
            f"cannot {action} {where}: {type(err).__name__}: {err}; set the credentials of the connection named in "
            "the URI (s3://conn_id@bucket/key)."
        )
    return transient(
        f"cannot {action} {where}: {type(err).__name__}: {err}; check the connection named in the URI "
        "(s3://conn_id@bucket/key)."
    )


def _guard(location: Location, action: str, call: Callable[[], Any]) -> Any:
    """Run one storage call; turn its failure into a :class:`VideoInferStorageError` naming ``location``."""
    try:
        return call()
    except VideoInferError:
        raise
    except Exception as err:
        raise storage_error(location, action, err) from None


def overlaps(output: Location, source: Location) -> bool:
    """Whether writing ``output`` would overwrite ``source``, or write inside it: the same file or below it.

    Local paths are compared after resolving symbolic links; storage URIs without their connection id.
    """
    written, read = asset_uri(output), asset_uri(source)
    return written == read or written.startswith(read.rstrip("/") + "/")


def check_writable(location: Location) -> None:
    """Check, before a download, that a file can be written at ``location``.

    A local location is probed for real (a temporary file is created and deleted in the nearest
    folder that exists): the folders of the path must be folders, the file not a folder nor a
    FIFO or device, and the folder writable by this user. A remote one is probed as far as reading
    allows: its bucket exists and can be listed.

    :raises VideoInferStorageFatalError: it cannot be written, saying why.
    """
    where = describe_location(location)
    path = local_path(location)
    if path is None:
        is_folder(location)
        return
    if not path.strip():
        raise VideoInferValidationError("the destination is empty: pass a file path such as /data/result.json.")
    target = Path(path)
    if target.is_dir():
        raise VideoInferStorageFatalError(
            f"cannot write to {where}: it is a folder; give a file name, e.g. {str(target).rstrip('/')}/result.json."
        )
    if target.exists() and not target.is_file():
        raise VideoInferStorageFatalError(
            f"cannot write to {where}: it is not a regular file ({_file_kind(target)}); choose a file path."
        )
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise VideoInferStorageFatalError(
            f"cannot write to {where}: {folder} is a file, where a folder of the path must be; move it away or "
            "choose another destination."
        )

    def probe() -> None:
        handle, name = tempfile.mkstemp(prefix=".videoinfer-check-", dir=folder)
        os.close(handle)
        os.unlink(name)

    _guard(location, "write to", probe)


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO, a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def require_regular_file(location: Location) -> None:
    """Refuse a local location that is not a regular file (a folder, a FIFO, a device) before opening it.

    Reading a FIFO blocks until someone writes to it; a device may never end.

    :raises VideoInferStorageFatalError: it exists and is not a regular file.
    """
    path = local_path(location)
    if path is None:
        return
    mode = _guard(location, "read", lambda: os.stat(path)).st_mode
    if not stat.S_ISREG(mode):
        raise VideoInferStorageFatalError(
            f"cannot read {describe_location(location)}: it is {_file_kind(Path(path))}, not a regular file; "
            "pass the path of a file."
        )


def _umask() -> int:
    """This process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly visible to other threads)
    os.umask(mask)
    return mask


def open_location(location: Location, mode: str = "rb", block_size: int = STREAM_BLOCK_SIZE) -> IO[bytes]:
    """Open a local path, an ``ObjectStoragePath`` or a storage URI in binary ``mode``.

    :param block_size: remote files are read in requests of this many bytes, and the file
        system caches about this much, so memory stays bounded whatever their size.
    """
    path = local_path(location)
    if path is not None:
        return _guard(location, "open", lambda: open(path, mode))  # type: ignore[no-any-return]
    if hasattr(location, "open") and not hasattr(location, "fs"):  # another path-like object that opens itself
        return _guard(location, "open", lambda: location.open(mode))  # type: ignore[union-attr,no-any-return]
    fs, fs_path = filesystem(location)
    options = {"block_size": block_size, "cache_type": "readahead"} if "r" in mode else {}
    return _guard(location, "open", lambda: fs.open(fs_path, mode, **options))  # type: ignore[no-any-return]


def resolve(value: Location) -> Path | ObjectStoragePath:
    """A ``Path`` for a local location, else an ``ObjectStoragePath``, for callers that want a path object.

    The provider itself goes through :func:`open_location`, :func:`atomic_write` and
    :func:`filesystem`, which also take schemes Airflow has no file system for.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(value, ObjectStoragePath):
        return value
    path = local_path(value)
    if path is not None:
        return Path(path)
    return ObjectStoragePath(_text(value))


def upload_file(local: str | os.PathLike[str], location: Location) -> None:
    """Copy a complete local file to a remote location in one upload (aborted, never partial, on failure)."""
    fs, fs_path = filesystem(location)
    _guard(location, "write", lambda: fs.put_file(os.fspath(local), fs_path))


@contextlib.contextmanager
def atomic_write(location: Location, verify: Callable[[str], None] | None = None) -> Iterator[IO[bytes]]:
    """Open ``location`` for writing bytes; it appears complete when the block ends, or not at all.

    A local file is written beside its final name, then renamed (its folder is created if need
    be), with the mode a file the user creates gets (``0666`` less the umask); a remote one is
    written to a local temporary file, then uploaded once complete. Nothing is left behind, and
    nothing replaced, when the block or ``verify`` raises.

    :param verify: called with the path of the complete temporary file before it replaces
        anything; raises to keep the location as it was.
    """
    path = local_path(location)
    if path is None:
        with tempfile.NamedTemporaryFile(prefix="videoinfer-", suffix=".part") as temp:
            yield temp  # type: ignore[misc]
            temp.flush()
            if verify is not None:
                verify(temp.name)
            upload_file(temp.name, location)
        return
    target = Path(path)
    if target.is_dir():
        raise VideoInferStorageFatalError(
            f"cannot write to {path}: it is a folder; give a file name, e.g. {path.rstrip('/')}/result.json."
        )
    _guard(location, "create the folder of", lambda: target.parent.mkdir(parents=True, exist_ok=True))
    handle, temp_name = _guard(
        location, "write to", lambda: tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    )
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as out:
            yield out
        if verify is not None:
            verify(temp_name)
        _guard(location, "write to", lambda: os.replace(temp_name, target))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def open_video_source(source: Location) -> tuple[Callable[[], IO[bytes]], int, str]:
    """Check an upload source before any network call; return (opener, size, name).

    The source must be a non-empty regular file (its first bytes are checked by
    :func:`check_video_header`). Remote sources are read in blocks of :data:`STREAM_BLOCK_SIZE`
    (see :func:`open_location`).
    """
    if not isinstance(source, (str, os.PathLike)) and not hasattr(source, "open") or not str(source).strip():
        raise VideoInferValidationError(f"video must be a file path or storage URI, got {source!r}.")
    name = describe_location(source)
    path = local_path(source)
    kind = "a folder"
    if path is not None:
        exists = os.path.exists(path)
        is_file = exists and stat.S_ISREG(os.stat(path).st_mode)
        if exists and not is_file:
            kind = _file_kind(Path(path))
        size = os.path.getsize(path) if is_file else 0
        file_name = os.path.basename(path)
    else:
        fs, fs_path = filesystem(source)
        info = _guard(source, "read", lambda: fs.info(fs_path) if fs.exists(fs_path) else None)
        exists = info is not None
        is_file = exists and info.get("type") != "directory"
        size = int(info.get("size") or 0) if is_file else 0
        file_name = fs_path.rstrip("/").rsplit("/", 1)[-1]
    if not exists:
        raise VideoInferValidationError(f"video {name!r} does not exist: check the path or URI.")
    if not is_file:
        hint = f" For a folder of videos, map a task over its files: {FOLDER_HOWTO}" if kind == "a folder" else ""
        raise VideoInferValidationError(f"video {name!r} is not a file (it is {kind}): pass one video file.{hint}")
    if size == 0:
        raise VideoInferValidationError(f"video {name!r} is empty (0 bytes): nothing to upload.")
    return (lambda: open_location(source)), size, file_name


def check_video_header(source: Location) -> str:
    """Check that a video source's first bytes are those of a video container; return the container.

    :raises VideoInferValidationError: they are not (an image, a web page, random bytes named .mp4).
    """
    with open_location(source, block_size=HEADER_BLOCK_SIZE) as handle:
        head = _guard(source, "read", lambda: handle.read(contract.VIDEO_HEADER_BYTES))
    return contract.validate_video_header(head, f"video {describe_location(source)!r}")  # type: ignore[no-any-return]


def is_storage_uri(value: Any) -> bool:
    """Whether a job's input names a stored object (``s3://conn_id@bucket/key``, ``gs://``, ``az://``,
    an ``ObjectStoragePath``...) rather than an http(s) URL or a local path.

    :param value: the ``input_url`` a user gave.
    """
    if hasattr(value, "protocol") and hasattr(value, "path"):
        return True
    if not isinstance(value, str) or "://" not in value:
        return False
    scheme = urlsplit(value.strip()).scheme.lower()
    return bool(scheme) and scheme not in ("http", "https")


def check_presignable(location: Location) -> str:
    """Check, without any call to the store, that a job's input can be presigned; return its name.

    :raises VideoInferValidationError: it is a local file, or names no object.
    """
    name = describe_location(location)
    if local_path(location) is not None:
        raise VideoInferValidationError(f"{name} is a local file: the service cannot read it from here. {UPLOAD_HINT}")
    if not urlsplit(asset_uri(location)).path.strip("/"):
        raise VideoInferValidationError(
            f"{name} names no object: give the video's full key, e.g. s3://bucket/clip.mp4."
        )
    return name


def _can_sign(fs: Any) -> bool:
    from fsspec import AbstractFileSystem

    sign = getattr(type(fs), "sign", None)
    return sign is not None and sign is not AbstractFileSystem.sign


def can_presign(location: Location) -> bool:
    """Whether the service can be given a presigned URL of ``location``: it is remote and its file
    system implements ``sign()``. Makes no call to the store.

    :raises VideoInferStorageError: no file system is installed for its scheme.
    """
    return local_path(location) is None and _can_sign(filesystem(location)[0])


def presigned_url(location: Location, lifetime: int) -> str:
    """A URL that lets its holder GET the object at ``location`` for ``lifetime`` seconds.

    One metadata call (no read) checks that the object exists and is a non-empty file; then its
    file system signs the URL (``sign()``; for S3 a local computation). The URL is a credential:
    callers keep it out of logs, XCom, rendered fields and lineage.

    :param location: a storage URI (``s3://conn_id@bucket/key``...) or an ``ObjectStoragePath``.
    :param lifetime: seconds the URL stays valid; see
        :func:`~videoinfer_contract.validation.validate_presigned_url_lifetime`.
    :raises VideoInferValidationError: a local file, a file system that cannot sign, an object
        that does not exist, is a folder or is empty.
    :raises VideoInferStorageError: access denied, or the store failed.
    """
    name = check_presignable(location)
    fs, fs_path = filesystem(location)
    if not _can_sign(fs):
        raise VideoInferValidationError(
            f"{name}: its file system ({type(fs).__name__}) cannot sign URLs, so the service cannot read the video "
            f"from there. {UPLOAD_HINT}"
        )

    def info() -> Any:
        try:
            return fs.info(fs_path)
        except FileNotFoundError:  # info() raises PermissionError when access is denied, unlike exists()
            return None

    found = _guard(location, "read", info)
    if found is None:
        raise VideoInferValidationError(f"video {name!r} does not exist: check the bucket and the key.")
    if found.get("type") == "directory":
        raise VideoInferValidationError(f"video {name!r} is a folder, not a file: pass one video's key.")
    if not found.get("size"):
        raise VideoInferValidationError(f"video {name!r} is empty (0 bytes): nothing for the service to read.")

    def sign() -> Any:
        try:
            return fs.sign(fs_path, expiration=lifetime)
        except (NotImplementedError, ValueError, TypeError, KeyError) as err:  # e.g. adlfs without an account key
            return err

    url = _guard(location, "sign a URL for", sign)
    if isinstance(url, Exception):
        raise VideoInferValidationError(
            f"{name}: its file system ({type(fs).__name__}) cannot sign a URL with the connection's credentials "
            f"({type(url).__name__}: {redact(str(url))}). {UPLOAD_HINT}"
        )
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise VideoInferValidationError(
            f"{name}: its file system signed a URL the service cannot fetch (not http or https). {UPLOAD_HINT}"
        )
    return url


def credentials_expiry(location: Location) -> datetime.datetime | None:
    """When the credentials that sign ``location``'s URLs expire, where botocore knows it (refreshable
    credentials: an assumed role, IRSA, a container's role); None otherwise. Makes no call to the store.

    botocore keeps the time in a private attribute of its credentials: read at best effort.
    """
    try:
        fs, _ = filesystem(location)
    except VideoInferError:
        return None
    signer = getattr(getattr(fs, "s3", None), "_request_signer", None)
    expiry = getattr(getattr(signer, "_credentials", None), "_expiry_time", None)
    return expiry if isinstance(expiry, datetime.datetime) and expiry.tzinfo is not None else None


def carries_session_token(url: str) -> bool:
    """Whether a presigned URL was signed with temporary credentials (its query has a session token).

    :param url: the presigned URL.
    """
    return any(key.lower() == SESSION_TOKEN_PARAMETER for key, _ in parse_qsl(urlsplit(url).query))


def session_token_warning(
    name: str, url: str, lifetime: int, expiry: datetime.datetime | None, now: datetime.datetime
) -> str | None:
    """The warning for a presigned URL signed with temporary credentials, which dies with them; None
    for a URL without a session token, or whose credentials outlive it. Pure: no I/O, no clock.

    :param name: the video's storage URI, named in the warning (never the signed URL).
    :param url: the presigned URL.
    :param lifetime: the seconds it was signed for.
    :param expiry: when its credentials expire, when known (:func:`credentials_expiry`).
    :param now: the current time (timezone-aware).
    """
    valid = datetime.timedelta(seconds=lifetime)
    if not carries_session_token(url) or (expiry is not None and expiry >= now + valid):
        return None
    if expiry is None:
        when = "when they expire (botocore does not tell when; an assumed role's last one hour by default)"
    else:
        left = datetime.timedelta(seconds=max(0, int((expiry - now).total_seconds())))
        at = expiry.astimezone(datetime.UTC)
        when = f"when they expire, at {at:%Y-%m-%d %H:%M:%S} UTC (in {left})"
    return (
        f"The presigned URL of {name} is signed with temporary credentials (it carries a session token: an "
        f"assumed role, role_arn, IRSA, MWAA's execution role): it stops working {when}, whatever its "
        f"presigned_url_lifetime of {valid} says. A job the service has not started by then cannot read the "
        "video and fails. Give the storage connection long-lived credentials, or upload the video with "
        "VideoInferUploadOperator."
    )


def presigned_url_warning(location: Location, url: str, lifetime: int) -> str | None:
    """:func:`session_token_warning` for a URL :func:`presigned_url` signed for ``location``, with the
    expiry of the credentials that signed it where botocore knows it.

    :param location: the video's storage URI.
    :param url: its presigned URL.
    :param lifetime: the seconds it was signed for.
    """
    if not carries_session_token(url):
        return None
    now = datetime.datetime.now(datetime.UTC)
    return session_token_warning(describe_location(location), url, lifetime, credentials_expiry(location), now)

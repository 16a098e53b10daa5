"""Where a job's ``input_url`` points: an upload of this server, or a remote URL to fetch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlsplit

from videoinfer_contract.redaction import redact
from videoinfer_contract.validation import VIDEO_EXTENSIONS
from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.signing import SignatureError, Signer

UPLOAD_PATH = re.compile(r"^/uploads/(?P<upload_id>[0-9a-f]{32})/(?P<name>[A-Za-z0-9._-]{1,120})$")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadInput:
    """An upload of this server, by id."""

    upload_id: str


@dataclass(frozen=True)
class RemoteInput:
    """Any other http(s) URL."""

    url: str


def classify_input(url: str, signer: Signer) -> UploadInput | RemoteInput:
    """Tell an upload URL of this server from a remote URL.

    The signature is checked but not its expiry: the PUT must happen before the URL expires, yet
    the video stays usable as ``input_url`` as long as it is retained (7 days by default), so that
    jobs can be re-run on it. Any host is accepted: the signature proves the URL is ours.

    :raise ValueError: the URL has this server's upload shape but a bad signature.
    """
    parts = urlsplit(url)
    match = UPLOAD_PATH.match(parts.path)
    query = dict(parse_qsl(parts.query))
    if match and "X-Goog-Signature" in query:
        try:
            signer.verify(parts.path, query, check_expiry=False)
        except SignatureError as err:
            raise ValueError(f"input_url is a signed upload URL but {err}") from None
        return UploadInput(match["upload_id"])
    return RemoteInput(url)


def fetch_remote(url: str, dest_dir: Path, max_bytes: int, timeout: float) -> Path:
    """Download ``url`` into ``dest_dir``, streaming, refusing more than ``max_bytes``.

    :raise JobFailure: code 6 on any failure, with a redacted URL in the message.
    """
    import httpx

    suffix = PurePosixPath(urlsplit(url).path).suffix.lstrip(".").lower()
    dest = dest_dir / f"input.{suffix if suffix in VIDEO_EXTENSIONS else 'bin'}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    shown = redact(url)
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise JobFailure(
                    FailureCode.INPUT_NOT_FETCHABLE,
                    f"fetching input_url {shown} answered HTTP {response.status_code}",
                )
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise JobFailure(
                    FailureCode.INPUT_NOT_FETCHABLE,
                    f"input_url {shown} is {declared} bytes, above the server's limit of {max_bytes}",
                )
            total = 0
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise JobFailure(
                            FailureCode.INPUT_NOT_FETCHABLE,
                            f"input_url {shown} is above the server's limit of {max_bytes} bytes",
                        )
                    out.write(chunk)
    except httpx.HTTPError as err:
        dest.unlink(missing_ok=True)
        raise JobFailure(
            FailureCode.INPUT_NOT_FETCHABLE, f"fetching input_url {shown} failed: {type(err).__name__}"
        ) from None
    except JobFailure:
        dest.unlink(missing_ok=True)
        raise
    return dest

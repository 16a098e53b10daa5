"""HMAC-signed, expiring URLs for uploads and results.

The query string mimics a cloud-storage signed URL, because the official SDK parses the expiry
with ``signed_url.split("&X-Goog-Expires")``::

    /uploads/<id>/<name>?X-Goog-Algorithm=VI-HMAC-SHA256&X-Goog-Date=20260101T000000Z
        &X-Goog-Expires=3600&X-Goog-Signature=<hex>

The signature covers the path, the date and the expiry, never the host, so URLs stay valid when a
restarted server listens on another port. The secret is random per data dir, kept in
``<data_dir>/secret.key``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ALGORITHM = "VI-HMAC-SHA256"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_EXPIRES = 7 * 24 * 3600


class SignatureError(Exception):
    """A signed URL is malformed, forged, altered or expired; the message says which."""


def load_or_create_secret(data_dir: Path) -> bytes:
    """Return the data dir's signing secret, creating it (mode 0600) on first use."""
    path = data_dir / "secret.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex())
    return secret


class Signer:
    """Sign and verify URL paths.

    :param secret: the HMAC key.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _digest(self, path: str, date: str, expires: str) -> str:
        message = "\n".join((ALGORITHM, path, date, expires)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, expires_in: int, now: float | None = None) -> str:
        """Return ``path?query`` signed for ``expires_in`` seconds (capped to 7 days).

        :param path: an absolute URL path, e.g. ``/results/<job id>``.
        :param expires_in: validity in seconds.
        :param now: the signing time as a POSIX timestamp; defaults to now.
        """
        expires = str(max(1, min(int(expires_in), MAX_EXPIRES)))
        moment = datetime.fromtimestamp(now if now is not None else _now(), tz=UTC)
        date = moment.strftime(_DATE_FORMAT)
        query = urlencode(
            {
                "X-Goog-Algorithm": ALGORITHM,
                "X-Goog-Date": date,
                "X-Goog-Expires": expires,
                "X-Goog-Signature": self._digest(path, date, expires),
            }
        )
        return f"{path}?{query}"

    def verify(self, path: str, query: dict[str, str], *, check_expiry: bool = True) -> None:
        """Check a signed path; raise :class:`SignatureError` when it is not valid.

        :param path: the request's URL path.
        :param query: its query parameters.
        :param check_expiry: refuse expired signatures; turned off to resolve an upload URL given
            as ``input_url``, which stays usable for as long as the upload is retained.
        """
        date, expires, signature = (query.get(k) for k in ("X-Goog-Date", "X-Goog-Expires", "X-Goog-Signature"))
        if query.get("X-Goog-Algorithm") != ALGORITHM or not (date and expires and signature):
            raise SignatureError("the URL is not signed by this server (missing or unknown X-Goog-* parameters)")
        if not hmac.compare_digest(self._digest(path, date, expires), signature):
            raise SignatureError("the URL's signature does not match: it was altered or forged")
        if not check_expiry:
            return
        try:
            start = datetime.strptime(date, _DATE_FORMAT).replace(tzinfo=UTC).timestamp()
            lifetime = int(expires)
        except ValueError:
            raise SignatureError("the URL's X-Goog-Date or X-Goog-Expires is malformed") from None
        if _now() > start + lifetime:
            raise SignatureError("the signed URL has expired: ask for a new one")


def _now() -> float:
    import time

    return time.time()

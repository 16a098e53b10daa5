"""Keep the API key and presigned URLs' signatures out of text and logs; free of Airflow, so the
local server uses it too.

:func:`redact` masks ``api_key=...`` query values, the credentials of presigned object storage
URLs (:data:`SIGNATURE_PARAMETERS`: S3 SigV4 and SigV2, Google Cloud Storage V4 and V2, Azure
SAS), and a given secret, in any text. :class:`RedactApiKeyFilter` is a :class:`logging.Filter`
doing the same to log records.

Installation, once per process: :func:`install_log_redaction` adds the filter to the loggers
that print request lines with their query string (``urllib3.connectionpool`` and ``httpx``).
The provider's transports call it when they open their first connection pool, so importing
the provider changes no logging; the local server adds the filter to ``uvicorn.access``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

#: Query parameters of presigned URLs that carry a credential: with them anyone can read the
#: object until the URL expires. The rest of such a URL (bucket, key, expiry) stays readable.
SIGNATURE_PARAMETERS = (
    "X-Amz-Signature",  # S3 SigV4
    "X-Amz-Credential",
    "X-Amz-Security-Token",  # SigV4 and SigV2 with temporary credentials
    "Signature",  # S3 SigV2, Google Cloud Storage V2
    "AWSAccessKeyId",  # S3 SigV2
    "X-Goog-Signature",  # Google Cloud Storage V4 (and this project's local server's upload URLs)
    "X-Goog-Credential",
    "GoogleAccessId",  # Google Cloud Storage V2
    "sig",  # Azure shared access signature (SAS)
)

_SECRET_QUERY = re.compile(r"(api_key=)[^&#\s'\"]+", re.IGNORECASE)
# A parameter name counts only as a whole word: ``Signature`` inside ``X-Amz-Signature`` or
# ``sig`` inside ``esig`` do not match on their own.
_SIGNATURE_QUERY = re.compile(
    r"((?<![\w-])(?:" + "|".join(map(re.escape, SIGNATURE_PARAMETERS)) + r")=)[^&#\s'\"<>]+", re.IGNORECASE
)

#: The loggers whose records carry request URLs with the key in their query string.
HTTP_CLIENT_LOGGERS = ("urllib3.connectionpool", "httpx")

_installed: set[str] = set()
_lock = threading.Lock()


def redact(text: str, secret: str | None = None) -> str:
    """Return ``text`` with any ``api_key=...`` query value, any presigned URL's credentials
    (:data:`SIGNATURE_PARAMETERS`) and ``secret`` itself masked.

    :param text: any text that may hold a URL or a response body.
    :param secret: the API key, masked wherever it appears; optional.
    """
    text = _SECRET_QUERY.sub(r"\1***", text)
    text = _SIGNATURE_QUERY.sub(r"\1***", text)
    if secret:
        text = text.replace(secret, "***")
    return text


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float)) or value is None:
        return value
    # e.g. an httpx.URL: keep the object unless its text holds a key, so %d and friends still work.
    text = str(value)
    masked = redact(text)
    return value if masked == text else masked


class RedactApiKeyFilter(logging.Filter):
    """Mask ``api_key=...`` and presigned URLs' credentials in a record's message and in each of its arguments.

    The arguments are masked one by one rather than merged into the message, so formatters
    that unpack them (uvicorn's access log) keep working.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_arg(value) for key, value in record.args.items()}
        return True


def install_log_redaction(logger_names: Iterable[str] = HTTP_CLIENT_LOGGERS) -> None:
    """Add one :class:`RedactApiKeyFilter` to each named logger; calling it again adds none.

    :param logger_names: the loggers to filter; default the HTTP clients' request loggers.
    """
    with _lock:
        for name in logger_names:
            if name not in _installed:
                logging.getLogger(name).addFilter(RedactApiKeyFilter())
                _installed.add(name)

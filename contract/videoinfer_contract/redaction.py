"""Keep the API key out of text and logs; free of Airflow, so the local server uses it too.

:func:`redact` masks ``api_key=...`` query values (and a given secret) in any text.
:class:`RedactApiKeyFilter` is a :class:`logging.Filter` doing the same to log records.

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

_SECRET_QUERY = re.compile(r"(api_key=)[^&#\s'\"]+", re.IGNORECASE)

#: The loggers whose records carry request URLs with the key in their query string.
HTTP_CLIENT_LOGGERS = ("urllib3.connectionpool", "httpx")

_installed: set[str] = set()
_lock = threading.Lock()


def redact(text: str, secret: str | None = None) -> str:
    """Return ``text`` with any ``api_key=...`` query value, and ``secret`` itself, masked.

    :param text: any text that may hold a URL or a response body.
    :param secret: the API key, masked wherever it appears; optional.
    """
    text = _SECRET_QUERY.sub(r"\1***", text)
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
    """Mask ``api_key=...`` in a record's message and in each of its arguments.

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

"""What a transport needs from a ``videoinfer`` connection: base URL, key, timeouts, retry policy.

Reads any object with a connection's attributes (``conn_id``, ``host``, ``port``, ``password``,
``extra_dejson``), so this module needs no Airflow import of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_videoinfer.exceptions import VideoInferConfigError
from airflow_provider_videoinfer.hooks.retry import RetryPolicy

DEFAULT_BASE_URL = "https://api.roboflow.com"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
# A large upload or result is answered only once the whole body is through; allow longer.
DEFAULT_TRANSFER_TIMEOUT = 300.0


class ConnectionLike(Protocol):
    """The attributes of an Airflow ``Connection`` that the settings read."""

    @property
    def conn_id(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClientSettings:
    """What a transport needs from a videoinfer connection.

    :param base_url: scheme, host and optional port and path prefix, without a trailing slash.
    :param api_key: the workspace API key (a secret: hidden from ``repr``).
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for an answer to an API call.
    :param transfer_timeout: seconds to wait between bytes of an upload or a download.
    :param retry: the retry policy shared by every call.
    """

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> ClientSettings:
        """Read a ``videoinfer`` connection: password = API key, host = base URL, extra = tuning.

        The host may be a bare host (``api.roboflow.com``, https assumed unless extra ``scheme``
        says otherwise) or a full URL (``http://127.0.0.1:9050``); the port field is used when
        the host carries none.

        :param conn: the Airflow connection.
        """
        if not conn.password:
            raise VideoInferConfigError(
                f"Connection {conn.conn_id!r} has no API key: set its password (field 'API Key') "
                "to your workspace API key."
            )
        extra = conn.extra_dejson or {}
        where = f"connection {conn.conn_id!r}"
        return cls(
            base_url=base_url(conn.host, conn.port, extra.get("scheme"), where),
            api_key=conn.password,
            connect_timeout=extra_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, where),
            read_timeout=extra_number(extra, "read_timeout", DEFAULT_READ_TIMEOUT, where),
            transfer_timeout=extra_number(extra, "transfer_timeout", DEFAULT_TRANSFER_TIMEOUT, where),
            retry=retry_policy(extra, where),
        )

    def url(self, endpoint: tuple[str, str]) -> str:
        """The absolute URL of an endpoint of :mod:`~airflow_provider_videoinfer.api`."""
        return self.base_url + endpoint[1]


def extra_number(
    extra: Mapping[str, Any],
    key: str,
    default: float,
    where: str = "connection",
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
) -> float:
    """Read a finite number from a connection's extra (a number, or a string holding one).

    :param extra: the connection's extra, as a dict.
    :param key: the key to read.
    :param default: the value when the key is absent.
    :param where: names the connection in error messages.
    :param minimum: the lowest value allowed: excluded (default), or included when ``inclusive``.
    :param inclusive: whether ``minimum`` itself is allowed.
    """
    value = extra.get(key, default)
    try:
        number = float(value)
        valid = not isinstance(value, bool) and math.isfinite(number)
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        raise VideoInferConfigError(
            f"{where}: extra {key!r} must be a number, got {value!r}: set it to a finite number such "
            f"as {default:g} (the default), or remove it."
        )
    if number < minimum or (number == minimum and not inclusive):
        bound = f"at least {minimum:g}" if inclusive else f"above {minimum:g}"
        raise VideoInferConfigError(f"{where}: extra {key!r} must be {bound}, got {value!r}.")
    return number


def retry_policy(extra: Mapping[str, Any], where: str = "connection") -> RetryPolicy:
    """Build the retry policy of one call from a connection's extra.

    Keys: ``retry_max_attempts`` (a whole number, at least 1), ``retry_max_elapsed``,
    ``retry_initial_wait`` and ``retry_max_wait`` (seconds, 0 or more); missing keys keep the defaults.

    :param extra: the connection's extra, as a dict.
    :param where: names the connection in error messages.
    """
    values: dict[str, Any] = {}
    for item in fields(RetryPolicy):
        key = f"retry_{item.name}"
        if key not in extra:
            continue
        default = getattr(RetryPolicy, item.name)
        if item.name == "max_attempts":
            number = extra_number(extra, key, default, where, minimum=1, inclusive=True)
            if not number.is_integer():
                raise VideoInferConfigError(f"{where}: extra {key!r} must be a whole number, got {extra[key]!r}.")
            values[item.name] = int(number)
        else:
            values[item.name] = extra_number(extra, key, default, where, minimum=0, inclusive=True)
    return RetryPolicy(**values)


def base_url(host: str | None, port: int | None, scheme: str | None, where: str = "connection") -> str:
    """Build the base URL from a connection's host, port and extra ``scheme``.

    :param host: a bare host (https assumed unless ``scheme`` says otherwise) or a full URL; None
        means the hosted service.
    :param port: used when the host carries none.
    :param scheme: ``http`` or ``https`` for a bare host.
    :param where: names the connection in error messages.
    """
    if not host:
        return DEFAULT_BASE_URL
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{scheme or 'https'}://{host}"
    parts = urlsplit(host)
    try:
        parts.port  # noqa: B018 -- raises for a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VideoInferConfigError(
            f"{where}: host {host!r} is not a valid http(s) URL: use e.g. 'https://api.roboflow.com' "
            "or 'http://127.0.0.1:9050'."
        )
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host

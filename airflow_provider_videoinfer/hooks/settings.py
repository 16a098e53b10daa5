"""What a transport needs from a ``videoinfer`` connection: base URL, key, timeouts, retry policy,
and the poll interval of the waits that use it.

Reads any object with a connection's attributes (``conn_id``, ``host``, ``port``, ``password``,
``extra_dejson``), so this module needs no Airflow import of its own.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import VideoInferConfigError, more_at
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from videoinfer_contract.redaction import redact
from videoinfer_contract.validation import MAX_POLL_INTERVAL, MAX_WAIT_SECONDS

DEFAULT_BASE_URL = "https://api.roboflow.com"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
# A large upload or result is answered only once the whole body is through; allow longer.
DEFAULT_TRANSFER_TIMEOUT = 300.0
#: Seconds between two polls of a job when neither the task nor the connection says: the hosted API
#: allows one poll a minute per job. A connection to the local server sets its extra ``poll_interval``
#: lower (e.g. 1), so that a first DAG finishes in seconds.
DEFAULT_POLL_INTERVAL = 60.0
#: The largest timeout an extra may set (a day): any more is a typo, and too large a number
#: breaks the socket layer only once a call is made.
MAX_TIMEOUT = 24 * 3600.0
#: The keys a videoinfer connection's extra may hold (the connection form's fields).
EXTRA_KEYS = (
    "connect_timeout",
    "read_timeout",
    "transfer_timeout",
    "retry_max_attempts",
    "retry_max_elapsed",
    "retry_initial_wait",
    "retry_max_wait",
    "poll_interval",
    "scheme",
    # The caps of a job (airflow_provider_videoinfer.operators.cost): a team sets them once here.
    "max_frames",
    "max_video_seconds",
)
# The most each retry setting may be, so that a typo cannot make a call wait for ever.
_RETRY_MAXIMUMS = {"max_attempts": 100, "max_elapsed": 7 * 24 * 3600.0, "initial_wait": 3600.0, "max_wait": MAX_TIMEOUT}


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
    :param poll_interval: seconds between polls of a wait whose task sets no ``poll_interval``
        (the connection's extra ``poll_interval``; default 60, the hosted API's rate).
    """

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = DEFAULT_POLL_INTERVAL

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
        where = f"connection {conn.conn_id!r}"
        extra = read_extra(conn, where)
        return cls(
            base_url=base_url(conn.host, conn.port, extra.get("scheme"), where),
            api_key=conn.password,
            connect_timeout=extra_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, where, maximum=MAX_TIMEOUT),
            read_timeout=extra_number(extra, "read_timeout", DEFAULT_READ_TIMEOUT, where, maximum=MAX_TIMEOUT),
            transfer_timeout=extra_number(
                extra, "transfer_timeout", DEFAULT_TRANSFER_TIMEOUT, where, maximum=MAX_TIMEOUT
            ),
            retry=retry_policy(extra, where),
            poll_interval=extra_number(extra, "poll_interval", DEFAULT_POLL_INTERVAL, where, maximum=MAX_POLL_INTERVAL),
        )

    def url(self, endpoint: tuple[str, str]) -> str:
        """The absolute URL of an endpoint of :mod:`~videoinfer_contract.jobs`."""
        return self.base_url + endpoint[1]


def check_task_wait(poll_interval: Any, timeout: Any, timeout_name: str) -> tuple[float | None, float]:
    """Check a task's ``poll_interval`` and its timeout when the DAG is parsed; return both as floats.

    :param poll_interval: the operator's or sensor's argument: seconds, or None to use the
        connection's at run time (:func:`effective_poll_interval`); None is returned as is.
    :param timeout: the task's timeout in seconds (``wait_timeout``, the sensor's ``timeout``).
    :param timeout_name: the timeout argument's name, for messages.
    """
    if poll_interval is None:
        return None, contract.validate_seconds(timeout_name, timeout, MAX_WAIT_SECONDS)
    return contract.validate_wait(poll_interval, timeout, timeout_name)  # type: ignore[no-any-return]


def effective_poll_interval(given: float | None, settings: ClientSettings, timeout: float) -> float:
    """The seconds between polls of a wait: the task's ``poll_interval`` when it set one, else its
    connection's (extra ``poll_interval``, default :data:`DEFAULT_POLL_INTERVAL`), at most ``timeout``.

    :param given: the task's ``poll_interval``, checked by :func:`check_task_wait`; None when the
        user passed none.
    :param settings: the task's connection settings (``self.hook.settings``).
    :param timeout: the wait's timeout: a connection's interval never makes a wait poll only at its end.
    """
    return min(settings.poll_interval, timeout) if given is None else given


def read_extra(conn: ConnectionLike, where: str = "connection") -> dict[str, Any]:
    """A connection's extra as a dict, checked: a JSON object whose keys are all :data:`EXTRA_KEYS`.

    :param conn: the Airflow connection; its raw ``extra`` text is read when it has one, since
        Airflow's ``extra_dejson`` turns text that is not JSON into ``{}`` without a word.
    :param where: names the connection in error messages.
    :raises VideoInferConfigError: the extra is not JSON, not a JSON object, or holds an unknown key
        (named with the closest known one).
    """
    raw = getattr(conn, "extra", None)
    extra: Any
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            extra = json.loads(raw)
        except ValueError as err:
            raise VideoInferConfigError(
                f"{where}: its extra is not valid JSON ({err.args[0] if err.args else err}): write a JSON object "
                'such as {"read_timeout": 60}, or leave the extra empty.'
            ) from None
    else:
        extra = raw if isinstance(raw, Mapping) else conn.extra_dejson
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise VideoInferConfigError(
            f'{where}: its extra must be a JSON object such as {{"read_timeout": 60}}, got a JSON '
            f"{_json_kind(extra)}: replace it with an object, or leave the extra empty."
        )
    for key in extra:
        if key not in EXTRA_KEYS:
            close = difflib.get_close_matches(str(key), EXTRA_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise VideoInferConfigError(
                f"{where}: its extra has an unknown key {key!r}{hint}, which would be ignored: rename or remove "
                f"it. The keys it may hold are {', '.join(EXTRA_KEYS)}."
            )
    return dict(extra)


def _json_kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def extra_number(
    extra: Mapping[str, Any],
    key: str,
    default: float,
    where: str = "connection",
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    maximum: float = math.inf,
) -> float:
    """Read a finite number from a connection's extra (a number, or a string holding one).

    :param extra: the connection's extra, as a dict.
    :param key: the key to read.
    :param default: the value when the key is absent.
    :param where: names the connection in error messages.
    :param minimum: the lowest value allowed: excluded (default), or included when ``inclusive``.
    :param inclusive: whether ``minimum`` itself is allowed.
    :param maximum: the largest value allowed (included); default no bound.
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
    if number > maximum:
        raise VideoInferConfigError(
            f"{where}: extra {key!r} is {value!r}, above the most allowed, {maximum:g}: set it to at most {maximum:g}."
        )
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
        maximum = _RETRY_MAXIMUMS[item.name]
        if item.name == "max_attempts":
            number = extra_number(extra, key, default, where, minimum=1, inclusive=True, maximum=maximum)
            if not number.is_integer():
                raise VideoInferConfigError(f"{where}: extra {key!r} must be a whole number, got {extra[key]!r}.")
            values[item.name] = int(number)
        else:
            values[item.name] = extra_number(extra, key, default, where, minimum=0, inclusive=True, maximum=maximum)
    return RetryPolicy(**values)


def base_url(host: str | None, port: int | None, scheme: str | None, where: str = "connection") -> str:
    """Build the base URL from a connection's host, port and extra ``scheme``.

    :param host: a bare host (https assumed unless ``scheme`` says otherwise) or a full URL; None
        means the hosted service.
    :param port: used when the host carries none.
    :param scheme: ``http`` or ``https`` for a bare host.
    :param where: names the connection in error messages.
    """
    if (scheme or "").strip() and scheme not in ("http", "https"):
        raise VideoInferConfigError(f"{where}: extra 'scheme' must be 'http' or 'https', got {scheme!r}.")
    if not host:
        return DEFAULT_BASE_URL
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{scheme or 'https'}://{host}"
    parts = urlsplit(host)
    address = parts.netloc.rpartition("@")[2]
    if address.count(":") > 1 and "[" not in address:
        raise VideoInferConfigError(
            f"{where}: host {_shown(host)!r} holds an IPv6 address without brackets, so its port cannot be told "
            "apart: write the address in brackets, e.g. 'http://[::1]:9050'."
        )
    try:
        parts.port  # noqa: B018 -- raises for a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VideoInferConfigError(
            f"{where}: host {_shown(host)!r} is not a valid http(s) URL: use e.g. 'https://api.roboflow.com' "
            "or 'http://127.0.0.1:9050'."
        )
    if "@" in parts.netloc:
        raise VideoInferConfigError(
            f"{where}: host {_shown(host)!r} holds a user name or password (user:password@): remove it from the "
            f"host; the API key goes in the connection's password field. {more_at('connection-host')}"
        )
    if parts.query or parts.fragment or host.endswith(("?", "#")):
        raise VideoInferConfigError(
            f"{where}: host {_shown(host)!r} holds a query or fragment ('?...' or '#...'), to which the API's "
            f"paths would be appended: remove it. {more_at('connection-host')}"
        )
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host


def _shown(host: str) -> str:
    """A host for messages: any password in it, and any key in its query, masked."""
    parts = urlsplit(host)
    if parts.password:
        host = host.replace(f":{parts.password}@", ":***@", 1)
    return redact(host)

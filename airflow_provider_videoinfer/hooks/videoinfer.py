"""The videoinfer connection: a sync hook (requests) and an async client (httpx) for the trigger.

Both are thin transports over one contract (:mod:`airflow_provider_videoinfer.api`) and one
retry policy (:mod:`airflow_provider_videoinfer.retry`): they build the same requests, read
answers the same way and raise the same exceptions.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
import urllib3
from airflow.sdk import BaseHook, ObjectStoragePath
from tenacity import AsyncRetrying, Retrying

from airflow_provider_videoinfer import api, storage
from airflow_provider_videoinfer.exceptions import (
    VideoInferConfigError,
    VideoInferConnectionError,
    VideoInferError,
    VideoInferMalformedResponseError,
    VideoInferTimeoutError,
)
from airflow_provider_videoinfer.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK_SIZE = 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
# A large upload or result is answered only once the whole body is through; allow longer.
DEFAULT_TRANSFER_TIMEOUT = 300.0


class _RedactApiKey(logging.Filter):
    """Mask ``api_key=...`` in the request lines that urllib3 and httpx log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = api.redact(str(record.msg))
        return True


for _name in ("urllib3.connectionpool", "httpx"):
    logging.getLogger(_name).addFilter(_RedactApiKey())


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
    def from_connection(cls, conn: Connection) -> ClientSettings:
        """Read a ``videoinfer`` connection: password = API key, host = base URL, extra = tuning.

        The host may be a bare host (``api.roboflow.com``, https assumed unless extra ``scheme``
        says otherwise) or a full URL (``http://127.0.0.1:9050``); the port field is used when
        the host carries none.
        """
        if not conn.password:
            raise VideoInferConfigError(
                f"Connection {conn.conn_id!r} has no API key: set its password (field 'API Key') "
                "to your workspace API key."
            )
        extra = conn.extra_dejson or {}
        return cls(
            base_url=_base_url(conn.host, conn.port, extra.get("scheme")),
            api_key=conn.password,
            connect_timeout=_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            read_timeout=_number(extra, "read_timeout", DEFAULT_READ_TIMEOUT),
            transfer_timeout=_number(extra, "transfer_timeout", DEFAULT_TRANSFER_TIMEOUT),
            retry=RetryPolicy.from_extra(extra),
        )

    def url(self, endpoint: tuple[str, str]) -> str:
        """The absolute URL of an endpoint of :mod:`api`."""
        return self.base_url + endpoint[1]


def _number(extra: Mapping[str, Any], key: str, default: float) -> float:
    value = extra.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise VideoInferConfigError(f"connection extra {key!r} must be a number, got {value!r}.") from None
    if number <= 0:
        raise VideoInferConfigError(f"connection extra {key!r} must be positive, got {value!r}.")
    return number


def _base_url(host: str | None, port: int | None, scheme: str | None) -> str:
    if not host:
        return api.DEFAULT_BASE_URL
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{scheme or 'https'}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VideoInferConfigError(
            f"connection host {host!r} is not a valid http(s) URL: use e.g. 'https://api.roboflow.com' "
            "or 'http://127.0.0.1:9050'."
        )
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host


def _decode(status_code: int, headers: Mapping[str, str], text: str, what: str, api_key: str) -> Any:
    """Turn one HTTP answer into JSON, or into the provider's exception for it."""
    if status_code >= 400:
        retry_after = parse_retry_after(headers.get("retry-after"))
        raise api.error_for_status(status_code, api.redact(text, api_key), what, retry_after)
    try:
        return json.loads(text)
    except ValueError:
        raise VideoInferMalformedResponseError(
            f"{what}: the service answered HTTP {status_code} with a body that is not JSON: "
            f"{api.redact(text, api_key)[:120]!r}.",
            http_status=status_code,
        ) from None


def _connection_error(what: str, exc: Exception, api_key: str, *, request_sent: bool) -> VideoInferError:
    return VideoInferConnectionError(
        f"{what}: {type(exc).__name__}: {api.redact(str(exc), api_key)}", request_sent=request_sent
    )


class _StreamingBody:
    """An upload body read in chunks from a fresh handle on each attempt, with a known length.

    ``__len__`` makes requests send ``Content-Length`` rather than chunked encoding; iterating
    it re-opens the source, so a retried upload restarts from the first byte.
    """

    def __init__(self, opener: Callable[[], IO[bytes]], size: int) -> None:
        self.opener = opener
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        with self.opener() as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk


class VideoInferHook(BaseHook):
    """Talk to the Video Inference API (hosted, or the local server) through one HTTP session.

    :param videoinfer_conn_id: the Airflow connection of type ``videoinfer``; its password is the
        API key, its host the base URL (default ``https://api.roboflow.com``), its extra may set
        ``connect_timeout``, ``read_timeout``, ``transfer_timeout`` (seconds), ``retry_max_attempts``,
        ``retry_max_elapsed``, ``retry_initial_wait``, ``retry_max_wait`` and ``scheme``.
    """

    conn_name_attr = "videoinfer_conn_id"
    default_conn_name = "videoinfer_default"
    conn_type = "videoinfer"
    hook_name = "Video Inference"

    def __init__(self, videoinfer_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.videoinfer_conn_id = videoinfer_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the unused connection fields and label the rest."""
        return {
            "hidden_fields": ["schema", "login"],
            "relabeling": {"password": "API Key", "host": "Base URL"},
            "placeholders": {
                "host": api.DEFAULT_BASE_URL,
                "port": "(optional, when the Base URL has none)",
                "extra": json.dumps({"read_timeout": 60, "retry_max_attempts": 5}),
            },
        }

    @cached_property
    def settings(self) -> ClientSettings:
        """The connection's settings, read once."""
        settings = ClientSettings.from_connection(self.get_connection(self.videoinfer_conn_id))
        _mask(settings.api_key)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """The one HTTP session (connection pool) of this hook."""
        session = requests.Session()
        session.headers["User-Agent"] = "airflow-provider-videoinfer"
        return session

    def get_conn(self) -> requests.Session:
        """Return the HTTP session."""
        return self.session

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the host with one cheap call, without retries."""
        try:
            workspace = self._call(api.WORKSPACE_ENDPOINT, "connection test", retry=RetryPolicy(max_attempts=1))
        except VideoInferError as err:
            return False, str(err)
        name = workspace.get("workspace") if isinstance(workspace, dict) else None
        return True, f"Connected to workspace {name or '(unnamed)'} at {self.settings.base_url}."

    def request_upload_url(self, file_name: str) -> str:
        """Ask for a signed URL to upload one video to.

        :param file_name: the video's file name; its extension must be mp4, avi, mkv or webm.
        :return: the signed URL, valid for one ``PUT`` and then usable as ``input_url``.
        """
        name = api.validate_video_file_name(file_name)
        body = self._call(api.UPLOAD_URL_ENDPOINT, f"upload URL for {name!r}", json_body={"file_name": name})
        return api.parse_upload_url(body)

    def upload_video(self, source: str | os.PathLike[str] | ObjectStoragePath, file_name: str | None = None) -> str:
        """Upload a video, streamed with constant memory, and return its ``input_url``.

        :param source: a local path, or any ``ObjectStoragePath``/fsspec URI (``s3://...``).
        :param file_name: the name to upload it as; defaults to the source's own name.
        """
        opener, size, source_name = storage.open_video_source(source)
        name = api.validate_video_file_name(file_name or source_name)
        signed_url = self.request_upload_url(name)
        what = f"upload of {name!r} ({size} bytes)"
        self.log.info("Starting the %s.", what)
        body = _StreamingBody(opener, size)
        headers = {"Content-Type": "application/octet-stream"}
        timeout = (self.settings.connect_timeout, self.settings.transfer_timeout)
        self._retrying(lambda: self._send("PUT", signed_url, what, data=body, headers=headers, timeout=timeout).close())
        return signed_url

    def submit_job(self, input_url: str, infer_fps: int, models: Sequence[Any]) -> str:
        """Schedule an inference job and return its id.

        Never retried in a way that could create a second job: only answers that prove the
        service did no work (no connection, 429, 503) are retried.

        :param input_url: an uploaded video's signed URL, or any public http(s) video URL.
        :param infer_fps: frames per second to sample, 1 to 120.
        :param models: dicts or :class:`~airflow_provider_videoinfer.api.ModelSpec`.
        """
        payload = api.build_submit_payload(input_url, infer_fps, models)
        names = ", ".join(model["model_id"] for model in payload["models"])
        body = self._call(
            api.SUBMIT_JOB_ENDPOINT, f"submission of a job ({names})", json_body=payload, idempotent=False
        )
        job_id = api.parse_job_id(body)
        self.log.info("Submitted video inference job %s (%s at %s fps).", job_id, names, payload["infer_fps"])
        return job_id

    def get_job(self, job_id: str) -> api.JobState:
        """Return a job's current state.

        :param job_id: the id returned by :meth:`submit_job`.
        """
        job_id = api.validate_job_id(job_id)
        body = self._call(api.JOB_STATUS_ENDPOINT, f"status of job {job_id}", params={"job_id": job_id})
        return api.parse_job_state(job_id, body)

    def wait_for_job(self, job_id: str, poll_interval: float = 60.0, timeout: float | None = None) -> api.JobState:
        """Poll a job in this process until it stops; raise if it fails or outlasts ``timeout``.

        :param job_id: the job to wait for.
        :param poll_interval: seconds between polls (the hosted API allows one a minute).
        :param timeout: seconds to wait at most; None waits as long as the job runs.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.get_job(job_id)
            if state.status is api.JobStatus.SUCCEEDED:
                return state
            if state.status is api.JobStatus.FAILED:
                raise api.job_failed(state)
            if deadline is not None and time.monotonic() + poll_interval > deadline:
                raise VideoInferTimeoutError(
                    f"Video inference job {job_id} was still running after {timeout:g} s; it keeps running "
                    "on the service. Raise the timeout, or wait for it again with VideoInferJobSensor."
                )
            time.sleep(poll_interval)

    def download_result(self, output_url: str, destination: str | os.PathLike[str] | ObjectStoragePath) -> str:
        """Stream a job's result JSON to a local path or ``ObjectStoragePath``; return the destination.

        The file appears complete or not at all (see :func:`~airflow_provider_videoinfer.storage.atomic_write`).

        :param output_url: the job's ``output_signed_url`` (no API key is sent with it).
        :param destination: a local path, or any ``ObjectStoragePath``/fsspec URI.
        """
        api.validate_input_url(output_url)
        what = "download of the job result"

        def attempt() -> None:
            response = self._send(
                "GET",
                output_url,
                what,
                stream=True,
                timeout=(self.settings.connect_timeout, self.settings.transfer_timeout),
            )
            with response, storage.atomic_write(destination) as out:
                _copy(response, out, what, self.settings.api_key)

        self._retrying(attempt)
        self.log.info("Downloaded the job result to %s.", storage.describe_location(destination))
        return storage.local_path(destination) or storage.describe_location(destination)

    def _call(
        self,
        endpoint: tuple[str, str],
        what: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Call an API endpoint with the key; return its JSON. Every API call goes through here."""
        method, _ = endpoint
        query = {**(params or {}), "api_key": self.settings.api_key}

        def attempt() -> Any:
            response = self._send(method, self.settings.url(endpoint), what, params=query, json=json_body)
            return _decode(response.status_code, response.headers, response.text, what, self.settings.api_key)

        return self._retrying(attempt, idempotent=idempotent, policy=retry)

    def _retrying(self, attempt: Callable[[], T], *, idempotent: bool = True, policy: RetryPolicy | None = None) -> T:
        """Run ``attempt`` under the retry policy (the connection's, unless ``policy`` is given)."""
        policy = policy or self.settings.retry
        return Retrying(**policy.tenacity_kwargs(idempotent=idempotent))(attempt)

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """Send one request, once; translate transport failures and error answers into provider errors."""
        kwargs.setdefault("timeout", (self.settings.connect_timeout, self.settings.read_timeout))
        try:
            response = self.session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            sent = not _never_sent(exc)
            raise _connection_error(what, exc, self.settings.api_key, request_sent=sent) from None
        except requests.RequestException as exc:
            raise _connection_error(what, exc, self.settings.api_key, request_sent=True) from None
        if response.status_code >= 400:
            with response:
                _decode(response.status_code, response.headers, response.text, what, self.settings.api_key)
        return response


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the connection failed before the request could be sent (refused, or connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _copy(response: requests.Response, out: IO[bytes], what: str, api_key: str) -> None:
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            out.write(chunk)
    except requests.RequestException as exc:
        raise _connection_error(what, exc, api_key, request_sent=True) from None


def _mask(secret: str) -> None:
    """Register the key with Airflow's secrets masker, so task logs never show it."""
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    except Exception:  # masking is best effort outside a task (e.g. in the triggerer's tests)
        log.debug("Could not register the API key with the secrets masker.")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle, too costly for each trigger."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class VideoInferAsyncClient:
    """The async transport (httpx) used by the trigger; it only polls jobs.

    :param settings: as read from the connection by :meth:`ClientSettings.from_connection`.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            verify=_ssl_context(),
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"User-Agent": "airflow-provider-videoinfer"},
        )

    @classmethod
    async def from_conn_id(cls, conn_id: str) -> VideoInferAsyncClient:
        """Build a client from an Airflow connection, without blocking the event loop."""
        conn = await BaseHook.aget_connection(conn_id)
        return cls(ClientSettings.from_connection(conn))

    async def get_job(self, job_id: str) -> api.JobState:
        """Return a job's current state (same contract and retries as the sync hook)."""
        job_id = api.validate_job_id(job_id)
        what = f"status of job {job_id}"
        url = self.settings.url(api.JOB_STATUS_ENDPOINT)
        params = {"job_id": job_id, "api_key": self.settings.api_key}
        key = self.settings.api_key

        async def attempt() -> Any:
            try:
                response = await self._client.get(url, params=params)
            except httpx.TimeoutException as exc:
                sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                raise _connection_error(what, exc, key, request_sent=sent) from None
            except httpx.HTTPError as exc:
                sent = not isinstance(exc, httpx.ConnectError)
                raise _connection_error(what, exc, key, request_sent=sent) from None
            return _decode(response.status_code, response.headers, response.text, what, key)

        body: Any = await AsyncRetrying(**self.settings.retry.tenacity_kwargs(idempotent=True))(attempt)
        return api.parse_job_state(job_id, body)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

"""The HTTP plumbing shared by the sync hook (requests) and the async client (httpx).

What both transports decide the same way lives here: which CA bundle and proxies to trust
(the environment, like requests), how a failed connection is told to the user in one plain
sentence, and the sync transport's single attempt. Turning an answer into a value or an
error is :func:`airflow_provider_videoinfer.responses.decode_response`'s job.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
import urllib3
from tenacity import Retrying

from airflow_provider_videoinfer.exceptions import VideoInferConnectionError
from airflow_provider_videoinfer.hooks import responses
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.settings import ClientSettings
from videoinfer_contract.redaction import install_log_redaction, redact

T = TypeVar("T")

CHUNK_SIZE = 1024 * 1024
USER_AGENT = "airflow-provider-videoinfer"

# Substrings of OpenSSL's and the resolver's messages, which both HTTP clients pass on as text.
_PLAIN_HTTP_MARKERS = ("wrong version number", "record layer failure", "packet length too long", "http request")
_UNTRUSTED_MARKERS = ("certificate verify failed", "certificate_verify_failed")
_DNS_MARKERS = ("name or service not known", "temporary failure in name resolution", "nodename nor servname")


def ca_bundle() -> tuple[str | None, str | None]:
    """The CA file and folder to trust, from the environment, as requests reads it.

    ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then ``SSL_CERT_FILE``; ``SSL_CERT_DIR`` for
    a folder. ``(None, None)`` means certifi's bundle.
    """
    cafile = next(
        (
            os.environ[name]
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
            if os.environ.get(name)
        ),
        None,
    )
    return cafile, os.environ.get("SSL_CERT_DIR") or None


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # Building a context loads the CA bundle: too costly to do for each of thousands of triggers.
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def ssl_context() -> ssl.SSLContext:
    """The TLS context for the async client: the environment's CA bundle (see :func:`ca_bundle`)."""
    return _ssl_context(*ca_bundle())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it; urllib3 keeps the cause in ``args[0]`` or ``reason``."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10 and cause not in chain:
        chain.append(cause)
        nested = [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args[:1]]
        cause = next((item for item in nested if isinstance(item, BaseException)), None)
    return chain


def describe_failure(exc: BaseException, url: str, settings: ClientSettings) -> str:
    """One plain sentence saying why a request to ``url`` got no answer, and what to do.

    :param exc: the requests or httpx exception.
    :param url: where the request went (only its scheme, host and port are named).
    :param settings: for the timeouts named in the sentence.
    """
    origin = _origin(url)
    text = " ".join(f"{type(item).__name__} {item}" for item in _causes(exc)).lower()
    if any(marker in text for marker in _PLAIN_HTTP_MARKERS):
        plain = "http://" + origin.split("://", 1)[1]
        return f"{origin} does not speak TLS (it answers plain HTTP): set the connection's Base URL to {plain}."
    if any(marker in text for marker in _UNTRUSTED_MARKERS):
        return (
            f"the TLS certificate of {origin} is not trusted: if your network uses its own CA, point "
            "SSL_CERT_FILE or REQUESTS_CA_BUNDLE at its bundle."
        )
    if any(marker in text for marker in _DNS_MARKERS) or "nameresolutionerror" in text:
        return f"the host of {origin} cannot be resolved: check the connection's Base URL and the network's DNS."
    if "connection refused" in text or "connectionrefusederror" in text:
        return (
            f"nothing answers at {origin} (connection refused): check the Base URL and port, and that the service runs."
        )
    if "connecttimeout" in text or "connect timeout" in text:
        return (
            f"no connection to {origin} within {settings.connect_timeout:g} s: check the Base URL, the network, "
            "and any proxy (HTTPS_PROXY, NO_PROXY)."
        )
    if "timeout" in text or "timed out" in text:
        return f"{origin} sent no answer in time (connection extra read_timeout/transfer_timeout)."
    if any(word in text for word in ("disconnected", "reset", "closed", "protocol", "incomplete", "chunked")):
        return f"{origin} dropped the connection before the answer was complete."
    return f"{type(exc).__name__}: {redact(str(exc), settings.api_key)}"


def connection_error(
    what: str, exc: BaseException, url: str, settings: ClientSettings, *, request_sent: bool
) -> VideoInferConnectionError:
    """The provider's error for a request that got no (complete) answer."""
    return VideoInferConnectionError(f"{what}: {describe_failure(exc, url, settings)}", request_sent=request_sent)


class StreamingBody:
    """An upload body read in chunks from a fresh handle on each attempt, with a known length.

    ``__len__`` makes requests send ``Content-Length`` rather than chunked encoding; iterating
    it re-opens the source, so a retried upload restarts from the first byte.

    :param opener: opens the source for reading, once per attempt.
    :param size: the source's size in bytes.
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


class SyncTransport:
    """One requests session with the connection's settings: single attempts and retried calls.

    :param settings: the connection's settings.
    """

    def __init__(self, settings: ClientSettings) -> None:
        install_log_redaction()
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        cafile, capath = ca_bundle()
        # requests reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE itself; SSL_CERT_FILE/DIR it does not.
        if cafile or capath:
            self.session.verify = cafile or capath  # type: ignore[assignment]

    def call(
        self,
        endpoint: tuple[str, str],
        what: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        policy: RetryPolicy | None = None,
    ) -> Any:
        """Call an API endpoint with the key, under the retry policy; return its JSON value.

        :param endpoint: ``(method, path)`` from :mod:`~videoinfer_contract.jobs`.
        :param what: what is being done, named in error messages.
        :param params: query parameters besides the key.
        :param json_body: the JSON request body, if any.
        :param idempotent: False for job submission (see :meth:`RetryPolicy.tenacity_kwargs`).
        :param policy: a policy other than the connection's, e.g. a single attempt.
        """
        method, _ = endpoint
        query = {**(params or {}), "api_key": self.settings.api_key}

        def attempt() -> Any:
            response = self.send(method, self.settings.url(endpoint), what, params=query, json=json_body)
            return responses.decode_response(
                response.status_code,
                response.headers,
                response.text,
                what,
                self.settings.api_key,
                base_url=self.settings.base_url,
            )

        return self.retrying(attempt, idempotent=idempotent, policy=policy)

    def retrying(self, attempt: Callable[[], T], *, idempotent: bool = True, policy: RetryPolicy | None = None) -> T:
        """Run ``attempt`` under the retry policy (the connection's, unless ``policy`` is given)."""
        policy = policy or self.settings.retry
        return Retrying(**policy.tenacity_kwargs(idempotent=idempotent))(attempt)

    def send(self, method: str, url: str, what: str, *, signed_url: bool = False, **kwargs: Any) -> requests.Response:
        """Send one request, once; raise the provider's error for no answer or an error answer.

        :param method: the HTTP method.
        :param url: the absolute URL.
        :param what: what is being done, named in error messages.
        :param signed_url: the URL is a signed upload or result URL (no key is sent with it).
        :param kwargs: passed to ``requests.Session.request``.
        """
        kwargs.setdefault("timeout", (self.settings.connect_timeout, self.settings.read_timeout))
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            sent = not _never_sent(exc)
            raise connection_error(what, exc, url, self.settings, request_sent=sent) from None
        if response.status_code >= 400:
            with response:
                responses.decode_response(
                    response.status_code,
                    response.headers,
                    response.text,
                    what,
                    self.settings.api_key,
                    signed_url=signed_url,
                    base_url=None if signed_url else self.settings.base_url,
                )
        return response

    def copy(self, response: requests.Response, out: IO[bytes], what: str) -> None:
        """Stream an answer's body to ``out``; a broken stream is a connection error."""
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                out.write(chunk)
        except requests.RequestException as exc:
            raise connection_error(what, exc, response.url, self.settings, request_sent=True) from None


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the connection failed before the request could be sent (refused, unresolved, connect timeout,
    TLS handshake)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True  # no connection, or its TLS handshake failed: no byte of the request was sent
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


#: Requests one async pool sends at once. Waiting for a slot is O(1) in asyncio, whereas httpcore's
#: own queue of requests waiting for a connection costs O(queued x connections) per event, which
#: stalled the event loop with thousands of triggers (see ``benchmarks/bench_triggerer.py``).
#: At 100 ms a request that is 200 polls a second, above the 167 that 10,000 jobs polled once a
#: minute need. Fewer idle connections than slots measured worse: connections were reopened.
MAX_CONCURRENT_REQUESTS = 20


@dataclass
class AsyncPool:
    """An httpx client (a connection pool) and the slots that bound its concurrent requests.

    :param client: the httpx client.
    :param slots: acquire one around each request.
    :param users: how many async clients share it.
    """

    client: httpx.AsyncClient
    slots: asyncio.Semaphore
    users: int = 0


def new_async_pool(settings: ClientSettings) -> AsyncPool:
    """An httpx pool with the connection's timeouts, the environment's CA bundle and proxies."""
    install_log_redaction()
    client = httpx.AsyncClient(
        verify=ssl_context(),
        trust_env=True,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(max_connections=MAX_CONCURRENT_REQUESTS, max_keepalive_connections=MAX_CONCURRENT_REQUESTS),
        headers={"User-Agent": USER_AGENT},
    )
    return AsyncPool(client, asyncio.Semaphore(MAX_CONCURRENT_REQUESTS))


class AsyncPools:
    """One httpx connection pool per event loop and connection settings, shared by every trigger.

    Thousands of triggers waiting in one triggerer then hold a few sockets between them rather
    than one each (see ``benchmarks/bench_triggerer.py``). A pool holds no key (the key travels
    in each request), and is closed when its last user releases it.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], AsyncPool]] = (
            weakref.WeakKeyDictionary()
        )

    @staticmethod
    def _key(settings: ClientSettings) -> tuple[Any, ...]:
        proxies = tuple(os.environ.get(name) for name in _PROXY_VARIABLES)
        return settings.base_url, settings.connect_timeout, settings.read_timeout, ca_bundle(), proxies

    def acquire(self, settings: ClientSettings) -> AsyncPool:
        """The shared pool for these settings on the running event loop; counts one more user."""
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        key = self._key(settings)
        pool = pools.get(key)
        if pool is None or pool.client.is_closed:
            pool = pools[key] = new_async_pool(settings)
        pool.users += 1
        return pool

    async def release(self, pool: AsyncPool) -> None:
        """Count one user less; close the pool when it was the last."""
        pool.users -= 1
        if pool.users > 0:
            return
        pools = self._pools.get(asyncio.get_running_loop(), {})
        for key, shared in list(pools.items()):
            if shared is pool:
                del pools[key]
        await pool.client.aclose()


#: The process's shared async pools (one per event loop).
ASYNC_POOLS = AsyncPools()

"""The videoinfer connection's two clients: :class:`VideoInferHook` (sync, requests) and
:class:`VideoInferAsyncClient` (async, httpx, for the trigger).

Both are thin: requests are built and answers decoded by :mod:`airflow_provider_videoinfer.hooks.responses`,
retried by :mod:`airflow_provider_videoinfer.hooks.retry`, sent through
:mod:`airflow_provider_videoinfer.hooks.transport`, and waits paced by
:mod:`airflow_provider_videoinfer.hooks.waiting`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
import requests
from airflow.sdk import ObjectStoragePath
from tenacity import AsyncRetrying

from airflow_provider_videoinfer import contract, storage
from airflow_provider_videoinfer.compat import BaseHook, aget_connection, mask_secret
from airflow_provider_videoinfer.exceptions import VideoInferError, VideoInferMalformedResponseError
from airflow_provider_videoinfer.hooks import responses, waiting
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.settings import ClientSettings
from airflow_provider_videoinfer.hooks.transport import (
    ASYNC_POOLS,
    StreamingBody,
    SyncTransport,
    connection_error,
    new_async_pool,
)
from videoinfer_contract.redaction import redact

if TYPE_CHECKING:
    from airflow_provider_videoinfer.contract import JobRequest, JobState

log = logging.getLogger(__name__)

#: One attempt: the connection test, and each poll of a wait (the wait does its own backoff).
SINGLE_ATTEMPT = RetryPolicy(max_attempts=1)


class VideoInferConnectionHook(BaseHook):
    """What every hook of the ``videoinfer`` connection shares, for both services: the connection id,
    its settings read once (the key registered with the secrets masker), one HTTP session.

    :param videoinfer_conn_id: the Airflow connection of type ``videoinfer``.
    """

    conn_name_attr = "videoinfer_conn_id"
    default_conn_name = "videoinfer_default"
    conn_type = "videoinfer"

    def __init__(self, videoinfer_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.videoinfer_conn_id = videoinfer_conn_id

    @cached_property
    def settings(self) -> ClientSettings:
        """The connection's settings, read once."""
        settings = ClientSettings.from_connection(self.get_connection(self.videoinfer_conn_id))
        mask_in_logs(settings.api_key)
        return settings

    @cached_property
    def transport(self) -> SyncTransport:
        """The one HTTP session (connection pool) of this hook, with its retry policy."""
        return SyncTransport(self.settings)


class VideoInferHook(VideoInferConnectionHook):
    """Talk to the Video Inference API (hosted, or the local server) through one HTTP session.

    :param videoinfer_conn_id: the Airflow connection of type ``videoinfer``; its password is the
        API key, its host the base URL (default ``https://api.roboflow.com``), its extra may set
        ``connect_timeout``, ``read_timeout``, ``transfer_timeout`` (seconds), ``retry_max_attempts``,
        ``retry_max_elapsed``, ``retry_initial_wait``, ``retry_max_wait`` and ``scheme``.
    """

    hook_name = "Video Inference"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's labels for Airflow before 3.2, which reads them here.

        Airflow 3.2+ reads them from :func:`~airflow_provider_videoinfer.get_provider_info`, their one
        home; this returns the same, with the method's underscore key names.
        """
        from airflow_provider_videoinfer import get_provider_info

        (connection_type,) = get_provider_info()["connection-types"]
        behaviour = connection_type["ui-field-behaviour"]
        return {key.replace("-", "_"): value for key, value in behaviour.items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields for Airflow before 3.2, which reads them here.

        Airflow 3.0 and 3.1 call this (and :meth:`get_ui_field_behaviour`) only when WTForms is
        installed, as it is with apache-airflow-providers-fab; without it their form shows the
        generic fields and the Extra box. Airflow 3.2+ reads the fields from
        :func:`~airflow_provider_videoinfer.get_provider_info`'s ``conn-fields``. Both come from
        the same declarations; WTForms has no decimal field these Airflow lines accept, so
        seconds are text fields (the hook reads a number written as text).
        """
        from wtforms import IntegerField, StringField
        from wtforms.validators import Optional

        from airflow_provider_videoinfer import _CONNECTION_FIELDS

        return {
            name: (IntegerField if kind == "integer" else StringField)(
                label, validators=[Optional()], description=f"{description} Default: {default:g}."
            )
            for name, (label, description, kind, default) in _CONNECTION_FIELDS.items()
        }

    def get_conn(self) -> requests.Session:
        """Return the HTTP session."""
        return self.transport.session

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the host with one cheap call, without retries; never raises."""
        try:
            workspace = self.transport.call(contract.WORKSPACE_ENDPOINT, "connection test", policy=SINGLE_ATTEMPT)
        except VideoInferError as err:
            return False, str(err)
        except Exception as err:  # the UI's Test button must get a sentence, not a traceback
            return False, f"connection test: {type(err).__name__}: {redact(str(err))}"
        name = workspace.get("workspace") if isinstance(workspace, dict) else None
        return True, f"Connected to workspace {name or '(unnamed)'} at {self.settings.base_url}."

    def request_upload_url(self, file_name: str) -> str:
        """Ask for a signed URL to upload one video to.

        :param file_name: the video's file name; its extension must be mp4, avi, mkv or webm.
        :return: the signed URL, valid for one ``PUT`` and then usable as ``input_url``.
        """
        name = contract.validate_video_file_name(file_name)
        body = self.transport.call(
            contract.UPLOAD_URL_ENDPOINT, f"upload URL for {name!r}", json_body={"file_name": name}
        )
        return responses.parse_upload_url(body)

    def upload_video(self, source: str | os.PathLike[str] | ObjectStoragePath, file_name: str | None = None) -> str:
        """Upload a video, streamed with constant memory, and return its ``input_url``.

        Checked before any call: the source is a non-empty file, its name has a video extension,
        and its first bytes are those of a video container (MP4, AVI, MKV or WebM).

        :param source: a local path, or any ``ObjectStoragePath``/fsspec URI (``s3://...``).
        :param file_name: the name to upload it as; defaults to the source's own name.
        """
        opener, size, source_name = storage.open_video_source(source)
        name = contract.validate_video_file_name(file_name or source_name)
        storage.check_video_header(source)
        signed_url = self.request_upload_url(name)
        what = f"upload of {name!r} ({size} bytes)"
        self.log.info("Starting the %s.", what)
        body = StreamingBody(opener, size)
        headers = {"Content-Type": "application/octet-stream"}
        timeout = (self.settings.connect_timeout, self.settings.transfer_timeout)
        transport = self.transport
        transport.retrying(
            lambda: transport.send(
                "PUT", signed_url, what, signed_url=True, data=body, headers=headers, timeout=timeout
            ).close()
        )
        return signed_url

    def check_video_url(self, url: str, name: str) -> str:
        """Check that a video URL's first bytes are those of a video container, as an upload's are;
        return the container. One ranged ``GET`` (retried under the connection's policy), through the
        connection's transport, so that its errors name ``name`` and never the URL.

        :param url: the video's (presigned) URL; no key is sent with it.
        :param name: what to call the video in messages (its storage URI), never the signed URL.
        :raises VideoInferValidationError: the bytes match no video container (a text file named .mp4).
        """
        size = contract.VIDEO_HEADER_BYTES
        what = f"read of the first {size} bytes of {name} through its presigned URL"
        transport = self.transport
        head = transport.retrying(lambda: transport.read_head(url, size, what))
        return contract.validate_video_header(head, f"video {name!r}")  # type: ignore[no-any-return]

    def submit(self, request: JobRequest) -> str:
        """Schedule one validated job and return its id.

        Never retried in a way that could create a second job: only answers that prove the
        service did no work (no connection, 429, 503) are retried.

        :param request: the job, from :meth:`JobRequest.build <airflow_provider_videoinfer.contract.JobRequest.build>`.
        """
        what = f"submission of a job ({request.model_names})"
        body = self.transport.call(contract.SUBMIT_JOB_ENDPOINT, what, json_body=request.to_payload(), idempotent=False)
        job_id = responses.parse_job_id(body)
        self.log.info(
            "Submitted video inference job %s (%s at %s fps).", job_id, request.model_names, request.infer_fps
        )
        return job_id

    def submit_job(self, input_url: str, infer_fps: int, models: Any) -> str:
        """Validate a job's inputs, schedule it and return its id (see :meth:`submit`).

        :param input_url: an uploaded video's signed URL, or any public http(s) video URL.
        :param infer_fps: frames per second to sample, 1 to 120.
        :param models: dicts or :class:`~airflow_provider_videoinfer.contract.ModelSpec`.
        """
        return self.submit(contract.build_job_request(input_url, infer_fps, models))

    def get_job(self, job_id: str, *, policy: RetryPolicy | None = None) -> JobState:
        """Return a job's current state.

        :param job_id: the id returned by :meth:`submit`.
        :param policy: the retry policy of this call; default the connection's.
        """
        endpoint, params = responses.status_request(job_id)
        job_id = params["job_id"]
        body = self.transport.call(endpoint, f"status of job {job_id}", params=params, policy=policy)
        return responses.parse_job_state(job_id, body)

    def wait_for_job(
        self,
        job_id: str,
        poll_interval: float = 60.0,
        timeout: float | None = None,
        *,
        last_poll: JobState | VideoInferError | None = None,
    ) -> JobState:
        """Poll a job in this process until it stops; raise if it fails or outlasts ``timeout``.

        Each poll is one attempt; :func:`~airflow_provider_videoinfer.hooks.waiting.step` decides
        what follows it, so outages (errors that leave the job's state unknown) are logged and
        polled through until the deadline.

        :param job_id: the job to wait for.
        :param poll_interval: seconds between polls (the hosted API allows one a minute).
        :param timeout: seconds to wait at most; None waits as long as the job runs.
        :param last_poll: what the caller has just read of the job (its state, or the error the read
            got); the wait starts from it, so the first poll comes as the wait step says rather than at
            once. None polls at once.
        """
        job_id = contract.validate_job_id(job_id)
        if timeout is None:
            poll_interval = contract.validate_seconds("poll_interval", poll_interval, contract.MAX_POLL_INTERVAL)
        else:
            poll_interval, timeout = contract.validate_wait(poll_interval, timeout, "timeout")
        started = time.time()
        deadline = None if timeout is None else started + timeout
        wait = waiting.Wait(job_id, poll_interval, started, deadline, self.settings.retry)
        outage: waiting.Outage | None = None
        poll = last_poll
        while True:
            if poll is None:
                poll = self.poll_job(job_id)
            now = time.time()
            outcome = waiting.step(wait, outage, poll, now, random.random())
            waiting.report(self.log, outcome, now)
            if not isinstance(outcome, waiting.PollAgain):
                return outcome.result()
            outage, poll = outcome.outage, None
            time.sleep(outcome.delay)

    def poll_job(self, job_id: str) -> JobState | VideoInferError:
        """One poll of a wait: a single attempt (the wait paces the next), its error returned, not raised.

        :param job_id: the job.
        """
        try:
            return self.get_job(job_id, policy=SINGLE_ATTEMPT)
        except VideoInferError as err:
            return err

    def download_result(self, output_url: str, destination: str | os.PathLike[str] | ObjectStoragePath) -> str:
        """Stream a job's result JSON to a local path or ``ObjectStoragePath``; return the destination.

        The destination is checked before the download (see
        :func:`~airflow_provider_videoinfer.storage.check_writable`). The file appears complete or
        not at all, and only once it has been read as a result file (a JSON object with frame
        lists), so an answer that is no result (a proxy's HTML page, a cut download) never
        replaces a file kept before (see :func:`~airflow_provider_videoinfer.storage.atomic_write`).

        :param output_url: the job's ``output_signed_url`` (no API key is sent with it).
        :param destination: a local path, or any ``ObjectStoragePath``/fsspec URI.
        :raises VideoInferMalformedResponseError: the answer is not a result file (after the connection's
            retries); the destination is left as it was.
        """
        contract.validate_output_url(output_url)
        storage.check_writable(destination)
        what = "download of the job result"
        where = storage.describe_location(destination)
        transport = self.transport

        def verify(path: str) -> None:
            from airflow_provider_videoinfer.results.reader import ResultReader, VideoInferResultFileError

            try:
                ResultReader(path, name="downloaded from the output URL").close()
            except VideoInferResultFileError as err:
                # Transient, like any answer that breaks the contract: a proxy's page may pass.
                raise VideoInferMalformedResponseError(
                    f"{what}: {err} Nothing was written to {where}; check the output URL (it may lead to a proxy "
                    "or login page), or read the job's status again for a fresh one.",
                    http_status=200,
                ) from None

        def attempt() -> None:
            timeout = (self.settings.connect_timeout, self.settings.transfer_timeout)
            response = transport.send("GET", output_url, what, signed_url=True, stream=True, timeout=timeout)
            with response, storage.atomic_write(destination, verify=verify) as out:
                transport.copy(response, out, what)

        transport.retrying(attempt)
        self.log.info("Downloaded the job result to %s.", where)
        return storage.local_path(destination) or where


def mask_in_logs(secret: str) -> None:
    """Register a secret (the API key, a presigned URL) with Airflow's secrets masker, so task logs never show it."""
    try:
        mask_secret(secret)
    except Exception:  # masking is best effort outside a task (e.g. in the triggerer's tests)
        log.debug("Could not register a secret with the secrets masker.")


class VideoInferAsyncClient:
    """The async transport (httpx) used by the trigger; it only polls jobs.

    Trusts the same CA bundle and proxies as requests (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``,
    ``HTTPS_PROXY``, ``NO_PROXY``...), so the triggerer reaches what the worker reaches.

    Clients built on a running event loop share one connection pool per loop and connection
    settings (:class:`~airflow_provider_videoinfer.hooks.transport.AsyncPools`), so thousands of
    triggers in one triggerer do not each hold a socket.

    :param settings: as read from the connection by :meth:`ClientSettings.from_connection`.
    :param share_pool: use the shared pool of the running loop (default); False gives this
        client its own, as when no loop runs yet.
    """

    def __init__(self, settings: ClientSettings, *, share_pool: bool = True) -> None:
        self.settings = settings
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            share_pool = False
        self._pool = ASYNC_POOLS.acquire(settings) if share_pool else new_async_pool(settings)
        if not share_pool:
            self._pool.users = 1

    @classmethod
    async def from_conn_id(cls, conn_id: str) -> VideoInferAsyncClient:
        """Build a client from an Airflow connection, without blocking the event loop."""
        conn = await aget_connection(conn_id)
        return cls(ClientSettings.from_connection(conn))

    async def get_job(self, job_id: str, *, policy: RetryPolicy | None = None) -> JobState:
        """Return a job's current state (same contract and retries as the sync hook).

        :param job_id: the job.
        :param policy: the retry policy of this call; default the connection's.
        """
        endpoint, params = responses.status_request(job_id)
        job_id = params["job_id"]
        body = await self.call(
            endpoint[0], self.settings.url(endpoint), f"status of job {job_id}", params, policy=policy
        )
        return responses.parse_job_state(job_id, body)

    async def call(
        self,
        method: str,
        url: str,
        what: str,
        params: Mapping[str, str] | None = None,
        *,
        policy: RetryPolicy | None = None,
    ) -> Any:
        """Send one API request with the key (no body), under the retry policy; return its JSON value.

        Shared by every async client of the connection (the video job trigger's, the batch trigger's).

        :param method: the HTTP method.
        :param url: the absolute URL.
        :param what: what is being done, named in error messages.
        :param params: query parameters besides the key.
        :param policy: the retry policy of this call; default the connection's. Only calls that may be
            sent again are made here (reads, an abort).
        """
        query = {**(params or {}), "api_key": self.settings.api_key}
        settings = self.settings

        async def attempt() -> Any:
            try:
                async with self._pool.slots:
                    response = await self._pool.client.request(method, url, params=query)
            except httpx.TimeoutException as exc:
                sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                raise connection_error(what, exc, url, settings, request_sent=sent) from None
            except httpx.HTTPError as exc:
                sent = not isinstance(exc, httpx.ConnectError)
                raise connection_error(what, exc, url, settings, request_sent=sent) from None
            return responses.decode_response(
                response.status_code,
                response.headers,
                response.text,
                what,
                settings.api_key,
                base_url=settings.base_url,
            )

        policy = policy or settings.retry
        if policy.max_attempts == 1:  # a wait's poll: skip tenacity's per-call cost (10,000 triggers poll)
            return await attempt()
        return await AsyncRetrying(**policy.tenacity_kwargs(idempotent=True))(attempt)

    async def poll_job(self, job_id: str) -> JobState | VideoInferError:
        """One poll of a wait: a single attempt (the wait paces the next), its error returned, not raised.

        :param job_id: the job.
        """
        try:
            return await self.get_job(job_id, policy=SINGLE_ATTEMPT)
        except VideoInferError as err:
            return err

    async def aclose(self) -> None:
        """Release the connection pool (closed with its last user); call once."""
        await ASYNC_POOLS.release(self._pool)

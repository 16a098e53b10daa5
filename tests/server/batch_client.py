"""A small Batch Processing client for the local server's tests, built on the contract (videoinfer_contract.batch)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from videoinfer_contract import batch

_T = TypeVar("_T")


def wait_for(predicate: Callable[[], _T], timeout: float = 60, what: str = "condition") -> _T:
    """Poll ``predicate`` until it returns a truthy value (events and request counts, never a guessed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class BatchClient:
    """Talks to one local server over real HTTP.

    :param base_url: the server's base URL.
    :param api_key: its key.
    """

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.key = {"api_key": api_key}
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.workspace = batch.parse_workspace(self.http.get("/", params=self.key).json())

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def call(self, endpoint: tuple[str, str], params: dict[str, Any] | None = None, **fields: Any) -> httpx.Response:
        """Send one request to a contract endpoint; ``json`` in ``fields`` is the body."""
        body = fields.pop("json", None)
        path = batch.endpoint_path(endpoint, workspace=self.workspace, **fields)
        return self.http.request(endpoint[0], path, params={**self.key, **(params or {})}, json=body)

    def ok(self, endpoint: tuple[str, str], params: dict[str, Any] | None = None, **fields: Any) -> Any:
        """:meth:`call`, asserting a 200, and return the JSON body."""
        answer = self.call(endpoint, params, **fields)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stage(self, batch_id: str, *videos: Path) -> None:
        """Upload videos into a simple batch, as the CLI does (signed PUT with the extension headers)."""
        for video in videos:
            answer = self.ok(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": video.name}, batch_id=batch_id)
            url, headers = batch.parse_upload_details(answer)
            put = httpx.put(url, headers=headers, content=video.read_bytes(), timeout=30)
            assert put.status_code == 200, put.text

    def definition(self, batch_id: str, workflow_id: str = "detect-motion", **values: Any) -> dict[str, Any]:
        """A video job body built by the contract."""
        return batch.VideoJobDefinition.build(self.workspace, batch_id, workflow_id, **values).to_payload()

    def create(self, job_id: str, body: dict[str, Any]) -> httpx.Response:
        """``POST /jobs/{job_id}``."""
        return self.call(batch.CREATE_JOB_ENDPOINT, json=body, job_id=job_id)

    def job(self, job_id: str) -> batch.BatchJob:
        """The job, typed."""
        return batch.parse_job(self.ok(batch.JOB_METADATA_ENDPOINT, job_id=job_id))

    def wait_ended(self, job_id: str, timeout: float = 120) -> batch.BatchJob:
        """Wait until the job is terminal; return it."""
        return wait_for(lambda: (job := self.job(job_id)).is_terminal and job, timeout, f"job {job_id} to end")

    def stages(self, job_id: str) -> tuple[batch.JobStage, ...]:
        """The job's stages, typed."""
        return batch.parse_stages(self.ok(batch.JOB_STAGES_ENDPOINT, job_id=job_id))

    def tasks(self, job_id: str, stage_id: str, page_size: int = 100) -> list[batch.JobTask]:
        """Every task of a stage, following the page tokens."""
        return self.all_pages(
            lambda token: batch.parse_tasks_page(
                self.ok(batch.STAGE_TASKS_ENDPOINT, _page(page_size, token), job_id=job_id, stage_id=stage_id)
            )
        )

    def logs(self, job_id: str, severity: str | None = None) -> list[batch.JobLogEntry]:
        """Every log entry of a job."""
        params = {"severity": severity} if severity else {}
        return self.all_pages(
            lambda token: batch.parse_logs_page(
                self.ok(batch.JOB_LOGS_ENDPOINT, {**params, **_page(None, token)}, job_id=job_id)
            )
        )

    def files(
        self, batch_id: str, part_name: str | None = None, page_size: int | None = None
    ) -> list[batch.StagedFile]:
        """Every stored file of a batch (or part), following the page tokens."""
        params = {"partName": part_name} if part_name else {}
        return self.all_pages(
            lambda token: batch.parse_files_page(
                self.ok(batch.BATCH_LIST_ENDPOINT, {**params, **_page(page_size, token)}, batch_id=batch_id)
            )
        )

    def count(self, batch_id: str) -> int:
        """The batch's count of stored files."""
        return batch.parse_count(self.ok(batch.BATCH_COUNT_ENDPOINT, batch_id=batch_id))

    def requests(self) -> dict[str, int]:
        """Requests per endpoint so far (``GET /_requests``, served with faults enabled)."""
        answer = self.http.get("/_requests", params=self.key)
        assert answer.status_code == 200, answer.text
        counts: dict[str, int] = answer.json()["requests"]
        return counts

    @staticmethod
    def all_pages(read: Callable[[str | None], batch.Page[_T]]) -> list[_T]:
        """Every item of a paged listing."""
        items: list[_T] = []
        token: str | None = None
        while True:
            page = read(token)
            items.extend(page.items)
            token = page.next_page_token
            if token is None:
                return items


def _page(size: int | None, token: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if size is not None:
        params["pageSize"] = size
    if token is not None:
        params["nextPageToken"] = token
    return params

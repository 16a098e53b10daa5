"""Fixtures of the local server tests: generated videos and servers run in-process over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoinfer_server.launch import RunningServer, run_server
from videoinfer_server.models.testing import TESTING_MODELS
from videoinfer_server.sample import FaceTruth, SampleTruth, make_face_video, make_sample_video

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


class Api:
    """A tiny client of the contract, as a DAG would use it, for the tests."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=30)
        self.key = {"api_key": server.api_key}

    def upload(self, path: Path, file_name: str | None = None) -> str:
        answer = self.http.post("/video_upload_signed_url", params=self.key, json={"file_name": file_name or path.name})
        answer.raise_for_status()
        url = answer.json()["signed_url"]
        with open(path, "rb") as fh:
            put = httpx.put(url, content=fh, headers={"Content-Type": "application/octet-stream"}, timeout=30)
        put.raise_for_status()
        return url

    def submit(self, input_url: str, infer_fps: int = 4, models: list[dict[str, Any]] | None = None) -> str:
        answer = self.http.post(
            "/videoinfer",
            params=self.key,
            json={"input_url": input_url, "infer_fps": infer_fps, "models": models or [MOTION]},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["job_id"]

    def status(self, job_id: str) -> dict[str, Any]:
        answer = self.http.get("/videoinfer", params={**self.key, "job_id": job_id})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(job_id)
            if state["status"] != 1:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still running after {timeout} s")
            time.sleep(0.05)

    def jobs(self) -> dict[str, dict[str, Any]]:
        answer = self.http.get("/_jobs", params=self.key)
        answer.raise_for_status()
        return {job["job_id"]: job for job in answer.json()["jobs"]}

    def run(self, path: Path, infer_fps: int = 4, models: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Upload, run a job, download its result; the job must succeed."""
        state = self.wait(self.submit(self.upload(path), infer_fps, models))
        assert state["status"] == 0, state
        result = httpx.get(state["output_signed_url"], timeout=30)
        assert result.status_code == 200, result.text
        return result.json()

    def arrivals(self, endpoint: str | None = None) -> list[float]:
        """When each request to ``endpoint`` (or to any named endpoint) arrived (``GET /_requests``)."""
        answer = self.http.get("/_requests", params={**self.key, **({"endpoint": endpoint} if endpoint else {})})
        answer.raise_for_status()
        return list(answer.json()["times"])

    def fault(self, **body: Any) -> None:
        answer = self.http.post("/_faults", params=self.key, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"ok": True}


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SampleTruth]:
    """Small generated videos with their ground truth, keyed by name."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "24": make_sample_video(folder / "v24.mp4", seconds=4, fps=24.0),
        "23.976": make_sample_video(folder / "v23976.mp4", seconds=4, fps=24000 / 1001),
        "29.97": make_sample_video(folder / "v2997.mp4", seconds=4, fps=29.97),
        "short": make_sample_video(folder / "short.mp4", seconds=1, fps=24.0, objects=1),
    }


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> FaceTruth:
    """Two drawn faces for 2 s at 24 fps: the left one turns (yaw -0.3 to +0.3 rad), the right one nods
    (pitch +0.3 to -0.3 rad)."""
    return make_face_video(tmp_path_factory.mktemp("faces") / "faces.mp4", seconds=2, fps=24.0)


@pytest.fixture(scope="session")
def scene_cut_video(tmp_path_factory: pytest.TempPathFactory) -> SampleTruth:
    """Moving rectangles for 2 s at 24 fps, on a textured scene that cuts to another one at 1 s."""
    return make_sample_video(tmp_path_factory.mktemp("cut") / "cut.mp4", seconds=2, fps=24.0, scene_cut_at=1.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server shared by a test module: faults enabled, test models loaded."""
    with run_server(tmp_path_factory.mktemp("data"), enable_faults=True, models=[TESTING_MODELS]) as running:
        yield running


@pytest.fixture()
def api(server: RunningServer) -> Iterator[Api]:
    client = Api(server)
    client.http.delete("/_faults", params=client.key)
    yield client
    client.http.delete("/_faults", params=client.key)
    client.http.close()


@pytest.fixture()
def make_api() -> Any:
    """Build an :class:`Api` for a server a test started itself."""
    return Api


@pytest.fixture()
def wait() -> Any:
    return wait_for

"""A server stopped in the middle of a job and started again on the same data dir finishes it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from videoinfer_server.launch import run_server
from videoinfer_server.models.testing import TESTING_MODELS

SLOW = {
    "model_id": "slow-test",
    "model_version": "1",
    "inference_type": "object-detection",
    "inference_params": {"delay": 0.05},
}
MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


def _on(base_url: str, url: str) -> str:
    """``url`` moved to the host and port of ``base_url``."""
    return urlunsplit(urlsplit(url)._replace(netloc=urlsplit(base_url).netloc))


def test_restart_resumes_running_and_queued_jobs(tmp_path, videos, make_api, wait):
    data = tmp_path / "data"
    options = {"models": [TESTING_MODELS], "workers": 1}
    with run_server(data, **options) as first:
        api = make_api(first)
        url = api.upload(videos["24"].path)
        spare_url = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": "later.mp4"}).json()[
            "signed_url"
        ]
        running = api.submit(url, 24, [SLOW, MOTION])  # 96 frames at 0.05 s: about 5 s
        queued = api.submit(url, 4, [MOTION])
        wait(lambda: api.jobs()[running]["state"] == "running", what="the job to start")
        assert api.status(running)["status"] == 1
        assert api.jobs()[queued]["state"] == "queued"
    # Stopped mid-job: nothing finished.
    with run_server(data, **options) as second:
        api = make_api(second)
        for job_id, frames in ((running, 96), (queued, 16)):
            state = api.wait(job_id, timeout=90)
            assert state["status"] == 0, state
            result = httpx.get(state["output_signed_url"]).json()
            assert result["frame_offset"] == list(range(0, 96, 96 // frames))
        jobs = api.jobs()
        assert jobs[running]["attempts"] == 2
        assert jobs[queued]["attempts"] == 1
        # A signed upload URL handed out before the restart still works, on the new port.
        put = httpx.put(_on(second.base_url, spare_url), content=videos["short"].path.read_bytes())
        assert put.status_code == 200
        assert api.wait(api.submit(_on(second.base_url, spare_url), 4))["status"] == 0


def test_finished_jobs_and_results_survive_a_restart(tmp_path, videos, make_api):
    data = tmp_path / "data"
    with run_server(data) as first:
        api = make_api(first)
        job_id = api.submit(api.upload(videos["short"].path), 4)
        before = api.wait(job_id)
    with run_server(data) as second:
        api = make_api(second)
        after = api.status(job_id)
        assert after["status"] == before["status"] == 0
        assert httpx.get(after["output_signed_url"]).json()["frame_offset"] == [0, 6, 12, 18]
        # The result URL signed by the first run is valid on the second.
        assert httpx.get(_on(second.base_url, before["output_signed_url"])).status_code == 200

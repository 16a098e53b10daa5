"""Fault injection: each action on each endpoint, counted, cleared; forced job failures; min_job_seconds;
the request log."""

from __future__ import annotations

import json

import httpx
import pytest

from videoinfer_server.launch import run_server

SLOW = {
    "model_id": "slow-test",
    "model_version": "1",
    "inference_type": "object-detection",
    "inference_params": {"delay": 0.05},
}


@pytest.fixture()
def requests_by_endpoint(api, videos):
    """One function per fault endpoint, sending a valid request to it."""
    done = api.wait(api.submit(api.upload(videos["short"].path), 4))
    upload_url = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": "f.mp4"}).json()[
        "signed_url"
    ]
    body = videos["short"].path.read_bytes()
    submit_body = {
        "input_url": upload_url,
        "infer_fps": 4,
        "models": [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}],
    }
    return {
        "workspace": lambda client: client.get(api.server.base_url + "/", params=api.key),
        "upload_url": lambda client: client.post(
            api.server.base_url + "/video_upload_signed_url", params=api.key, json={"file_name": "g.mp4"}
        ),
        "upload": lambda client: client.put(
            upload_url, content=body, headers={"Content-Type": "application/octet-stream"}
        ),
        "submit": lambda client: client.post(api.server.base_url + "/videoinfer", params=api.key, json=submit_body),
        "status": lambda client: client.get(
            api.server.base_url + "/videoinfer", params={**api.key, "job_id": done["job_id"]}
        ),
        "result": lambda client: client.get(done["output_signed_url"]),
    }


ENDPOINTS = ["workspace", "upload_url", "upload", "submit", "status", "result"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_status_fault_hits_the_next_n_requests_then_clears(api, requests_by_endpoint, endpoint):
    send = requests_by_endpoint[endpoint]
    api.fault(endpoint=endpoint, count=2, action="status", status_code=503, retry_after=1)
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            answer = send(client)
            assert answer.status_code == 503
            assert answer.json() == {"message": "injected fault"}
            assert answer.headers["Retry-After"] == "1"
        assert send(client).status_code == 200


@pytest.mark.parametrize("status_code", [408, 429, 500, 502, 503, 504, 520, 522, 524, 529])
def test_status_fault_answers_any_status_on_status_reads(api, requests_by_endpoint, status_code):
    api.fault(endpoint="status", count=1, action="status", status_code=status_code)
    with httpx.Client(timeout=30) as client:
        assert requests_by_endpoint["status"](client).status_code == status_code
        assert requests_by_endpoint["status"](client).status_code == 200


def test_status_fault_without_retry_after(api, requests_by_endpoint):
    api.fault(endpoint="status", count=1, action="status", status_code=429)
    with httpx.Client() as client:
        answer = requests_by_endpoint["status"](client)
    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_drop_fault_closes_the_connection_without_answer(api, requests_by_endpoint, endpoint):
    send = requests_by_endpoint[endpoint]
    api.fault(endpoint=endpoint, count=1, action="drop")
    with httpx.Client(timeout=30) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            send(client)
        assert send(client).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_lose_answer_fault_closes_the_connection_without_answer(api, requests_by_endpoint, endpoint):
    send = requests_by_endpoint[endpoint]
    api.fault(endpoint=endpoint, count=1, action="lose_answer")
    with httpx.Client(timeout=30) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            send(client)
        assert send(client).status_code == 200


def test_lose_answer_fault_on_submit_creates_the_job(api, requests_by_endpoint):
    """The app processed the submission: the job exists and is counted, though its id never reached the client."""
    before, submissions = set(api.jobs()), len(api.arrivals("submit"))
    api.fault(endpoint="submit", count=1, action="lose_answer")
    with httpx.Client(timeout=30) as client, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        requests_by_endpoint["submit"](client)
    created = set(api.jobs()) - before
    assert len(created) == 1, f"{len(created)} jobs created by the submission whose answer was lost"
    (job_id,) = created
    assert api.status(job_id)["job_id"] == job_id
    assert len(api.arrivals("submit")) == submissions + 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_fault_answers_200_with_a_body_that_is_not_json(api, requests_by_endpoint, endpoint):
    send = requests_by_endpoint[endpoint]
    api.fault(endpoint=endpoint, count=1, action="malformed")
    with httpx.Client(timeout=30) as client:
        answer = send(client)
        assert answer.status_code == 200
        with pytest.raises(ValueError):
            answer.json()
        assert send(client).status_code == 200


@pytest.mark.parametrize("endpoint", ["workspace", "status", "upload"])
def test_stall_fault_delays_the_answer(api, requests_by_endpoint, endpoint):
    send = requests_by_endpoint[endpoint]
    api.fault(endpoint=endpoint, count=1, action="stall", stall_seconds=1.5)
    with httpx.Client(timeout=httpx.Timeout(30, read=0.3)) as client, pytest.raises(httpx.ReadTimeout):
        send(client)
    # Once stalled, the request is answered normally.
    api.fault(endpoint=endpoint, count=1, action="stall", stall_seconds=0.2)
    with httpx.Client(timeout=30) as client:
        assert send(client).status_code == 200
        assert send(client).status_code == 200


def test_upload_after_a_dropped_upload_works(api, videos):
    api.fault(endpoint="upload", count=1, action="drop")
    url = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": "v.mp4"}).json()["signed_url"]
    body = videos["short"].path.read_bytes()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        httpx.put(url, content=body)
    assert httpx.put(url, content=body).status_code == 200
    assert api.wait(api.submit(url, 4))["status"] == 0


def test_request_times_note_every_request_answered_or_not(api, requests_by_endpoint):
    before = api.arrivals("status")
    with httpx.Client(timeout=30) as client:
        assert requests_by_endpoint["status"](client).status_code == 200
        api.fault(endpoint="status", count=1, action="status", status_code=520)
        assert requests_by_endpoint["status"](client).status_code == 520
        api.fault(endpoint="status", count=1, action="drop")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            requests_by_endpoint["status"](client)
        api.fault(endpoint="status", count=1, action="lose_answer")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            requests_by_endpoint["status"](client)
    after = api.arrivals("status")
    assert after[: len(before)] == before and len(after) == len(before) + 4, after
    assert after == sorted(after)
    assert len(api.arrivals()) >= len(after) + 1  # the other endpoints' requests too
    assert api.server.api_key not in json.dumps(api.arrivals())
    assert api.http.get("/_requests").status_code == 401


def test_delete_clears_every_fault(api, requests_by_endpoint):
    api.fault(endpoint="workspace", count=5, action="status", status_code=500)
    api.fault(endpoint="status", count=5, action="drop")
    assert api.http.delete("/_faults", params=api.key).json() == {"ok": True}
    with httpx.Client() as client:
        assert requests_by_endpoint["workspace"](client).status_code == 200
        assert requests_by_endpoint["status"](client).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "nope", "action": "status"},
        {"endpoint": "status", "action": "explode"},
        {"endpoint": "status", "action": "lose answer"},
        {"endpoint": "status", "action": "status", "count": 0},
        {"endpoint": "status", "status_code": 42},
        {"endpoint": "status", "action": "stall", "stall_seconds": -1},
    ],
)
def test_bad_fault_bodies_are_refused(api, body):
    assert api.http.post("/_faults", params=api.key, json=body).status_code == 400


def test_fault_endpoints_need_the_key(api):
    assert api.http.post("/_faults", json={"endpoint": "status"}).status_code == 401
    assert api.http.delete("/_faults").status_code == 401
    assert api.http.post("/_faults/jobs/x", json={"status": 3}).status_code == 401


def test_forced_failure_of_a_finished_job(api, videos):
    job_id = api.submit(api.upload(videos["short"].path), 4)
    assert api.wait(job_id)["status"] == 0
    answer = api.http.post(f"/_faults/jobs/{job_id}", params=api.key, json={"status": 3, "error": "boom"})
    assert answer.json() == {"ok": True}
    state = api.status(job_id)
    assert state["status"] == 3 and state["error"] == "boom"
    assert "output_signed_url" not in state


def test_forced_failure_of_a_running_job_applies_when_it_ends(api, videos, wait):
    job_id = api.submit(api.upload(videos["short"].path), 24, [SLOW])
    answer = api.http.post(f"/_faults/jobs/{job_id}", params=api.key, json={"status": 7, "error": "gpu on fire"})
    assert answer.status_code == 200
    state = api.wait(job_id)
    assert state["status"] == 7 and state["error"] == "gpu on fire"
    assert api.jobs()[job_id]["frames"] == 24  # it did run to its end
    assert api.http.post("/_faults/jobs/unknown", params=api.key, json={"status": 3}).status_code == 404
    assert api.http.post(f"/_faults/jobs/{job_id}", params=api.key, json={"status": 0}).status_code == 400


def test_min_job_seconds_keeps_jobs_running(tmp_path, videos, make_api, wait):
    with run_server(tmp_path / "data", min_job_seconds=3) as server:
        api = make_api(server)
        job_id = api.submit(api.upload(videos["short"].path), 4)
        wait(lambda: api.jobs()[job_id]["state"] == "succeeded", what="processing to end")
        assert api.status(job_id)["status"] == 1
        assert api.jobs()[job_id]["status"] == 1
        assert api.wait(job_id)["status"] == 0


def test_poll_min_interval_answers_429_with_retry_after(tmp_path, videos, make_api):
    with run_server(tmp_path / "data", poll_min_interval=60) as server:
        api = make_api(server)
        job_id = api.submit(api.upload(videos["short"].path), 4)
        first = api.http.get("/videoinfer", params={**api.key, "job_id": job_id})
        assert first.status_code == 200
        second = api.http.get("/videoinfer", params={**api.key, "job_id": job_id})
        assert second.status_code == 429
        assert 1 <= int(second.headers["Retry-After"]) <= 60
        # The limit is per job.
        other = api.submit(api.upload(videos["short"].path), 4)
        assert api.http.get("/videoinfer", params={**api.key, "job_id": other}).status_code == 200

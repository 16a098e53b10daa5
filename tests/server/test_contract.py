"""The local server serves the Video Inference API contract, over real HTTP."""

from __future__ import annotations

import contextlib
import io

import httpx
import pytest

from airflow_provider_videoinfer.hooks.responses import parse_job_state, parse_upload_url
from videoinfer_server.cli import main as cli_main
from videoinfer_server.models import BUILTIN_MODEL_IDS

ENDPOINTS = [
    ("GET", "/", None),
    ("POST", "/video_upload_signed_url", {"file_name": "a.mp4"}),
    ("POST", "/video_upload_signed_url/", {"file_name": "a.mp4"}),
    ("POST", "/videoinfer", {}),
    ("POST", "/videoinfer/", {}),
    ("GET", "/videoinfer", None),
    ("GET", "/videoinfer/", None),
    ("GET", "/models", None),
    ("GET", "/models/", None),
    ("GET", "/_jobs", None),
    ("GET", "/_jobs/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_every_endpoint_refuses_missing_or_bad_key(api, method, path, body, key):
    params = {} if key is None else {"api_key": key}
    answer = api.http.request(method, path, params=params, json=body)
    assert answer.status_code == 401
    assert "api_key" in answer.json()["message"]


def test_workspace(api):
    answer = api.http.get("/", params=api.key)
    assert answer.status_code == 200
    assert answer.json() == {"workspace": "local"}


@pytest.mark.parametrize("path", ["/video_upload_signed_url", "/video_upload_signed_url/"])
def test_upload_url_has_the_sdk_shape(api, path):
    answer = api.http.post(path, params=api.key, json={"file_name": "clip.MP4"})
    assert answer.status_code == 200
    url = parse_upload_url(answer.json())
    # The official SDK's parsing of the expiry must work unchanged.
    assert int(url.split("&X-Goog-Expires=")[1].split("&")[0]) == 3600
    assert len(url.split("&X-Goog-Expires")) == 2
    assert url.startswith(api.server.base_url + "/uploads/")
    assert "api_key" not in url


@pytest.mark.parametrize("trailing", ["", "/"])
def test_upload_job_and_result_round_trip(api, videos, trailing):
    truth = videos["24"]
    url = api.upload(truth.path)
    answer = api.http.post(
        "/videoinfer" + trailing,
        params=api.key,
        json={
            "input_url": url,
            "infer_fps": 4,
            "models": [
                {
                    "model_id": "motion-detection",
                    "model_version": 1,
                    "inference_type": "object-detection",
                    "inference_params": {"confidence": 0.2},
                },
            ],
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"job_id", "message"}
    job_id = body["job_id"]
    deadline_state = api.wait(job_id)
    state = parse_job_state(job_id, api.http.get("/videoinfer" + trailing, params={**api.key, "job_id": job_id}).json())
    assert deadline_state["status"] == 0 and state.code == 0
    # Results are downloaded without the API key.
    result = httpx.get(state.output_url).json()
    assert list(result) == ["frame_offset", "time_offset", "motion-detection"]
    assert result["frame_offset"] == list(range(0, truth.frame_count, 6))
    assert result["time_offset"][:3] == [0.0, 0.25, 0.5]
    assert len(result["motion-detection"]) == len(result["frame_offset"])
    frame = result["motion-detection"][5]
    assert set(frame) == {"time", "image", "predictions"}
    assert frame["image"] == {"width": 320, "height": 240}
    assert frame["predictions"], "moving rectangles must be detected"
    for prediction in frame["predictions"]:
        assert set(prediction) == {
            "x",
            "y",
            "width",
            "height",
            "confidence",
            "class",
            "class_id",
            "detection_id",
        }
        assert 0 <= prediction["confidence"] <= 1


def test_job_listing_counts_jobs_without_secrets(api, videos):
    before = len(api.jobs())
    job_id = api.submit(api.upload(videos["short"].path), 2)
    api.wait(job_id)
    jobs = api.jobs()
    assert len(jobs) == before + 1
    job = jobs[job_id]
    assert {"job_id", "status", "infer_fps", "models", "created_at"} <= set(job)
    assert job["infer_fps"] == 2 and job["models"][0]["model_id"] == "motion-detection"
    assert api.server.api_key not in api.http.get("/_jobs", params=api.key).text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"infer_fps": 0}, "infer_fps"),
        ({"infer_fps": 121}, "infer_fps"),
        ({"infer_fps": 2.5}, "infer_fps"),
        ({"infer_fps": "fast"}, "infer_fps"),
        ({"infer_fps": None}, "infer_fps"),
        ({"models": []}, "models is empty"),
        ({"models": None}, "models"),
        (
            {"models": [{"model_id": "x", "model_version": "1", "inference_type": "detection"}]},
            "inference_type",
        ),
        (
            {"models": [{"model_id": "", "model_version": "1", "inference_type": "object-detection"}]},
            "model_id",
        ),
        (
            {
                "models": [
                    {
                        "model_id": "motion-detection",
                        "model_version": "1",
                        "inference_type": "object-detection",
                    }
                ]
                * 2
            },
            "twice",
        ),
        ({"input_url": "ftp://example.com/v.mp4"}, "input_url"),
        ({"input_url": ""}, "input_url"),
        ({"input_url": "https://example.com/video.mp4"}, "--allow-remote-urls"),
    ],
)
def test_submit_validates_the_body(api, body, expected):
    payload = {
        "input_url": "https://example.com/v.mp4",
        "infer_fps": 4,
        "models": [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}],
        **body,
    }
    answer = api.http.post("/videoinfer", params=api.key, json=payload)
    assert answer.status_code == 400
    assert expected in answer.json()["message"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_non_object_bodies_are_refused(api, raw):
    for path in ("/videoinfer", "/video_upload_signed_url"):
        answer = api.http.post(path, params=api.key, content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400


def test_status_errors(api):
    assert api.http.get("/videoinfer", params=api.key).status_code == 400
    answer = api.http.get("/videoinfer", params={**api.key, "job_id": "no-such-job"})
    assert answer.status_code == 404


def test_result_needs_a_valid_signature(api, videos):
    state = api.wait(api.submit(api.upload(videos["short"].path), 2))
    url = state["output_signed_url"]
    assert httpx.get(url).status_code == 200
    assert httpx.get(url.split("?")[0]).status_code == 403
    assert httpx.get(url.split("?")[0], params=api.key).status_code == 403


def test_models_are_listed(api, capsys):
    answer = api.http.get("/models", params=api.key)
    assert answer.status_code == 200
    listed = {(m["model_id"], m["model_version"], m["inference_type"]) for m in answer.json()["models"]}
    assert {m[0] for m in listed} >= set(BUILTIN_MODEL_IDS)
    assert ("people-detection", "1", "object-detection") in listed
    assert ("foreground-segmentation", "1", "semantic-segmentation") in listed
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli_main(["models", "--no-entry-points"]) == 0
    for model_id in BUILTIN_MODEL_IDS:
        assert model_id in out.getvalue()


def test_unknown_model_fails_the_job_with_code_4(api, videos):
    url = api.upload(videos["short"].path)
    job_id = api.submit(
        url,
        2,
        [{"model_id": "rock-paper-scissors", "model_version": "4", "inference_type": "object-detection"}],
    )
    state = api.wait(job_id)
    assert state["status"] == 4
    assert "rock-paper-scissors" in state["error"] and "--model" in state["error"]


def test_inference_type_mismatch_fails_with_code_4(api, videos):
    url = api.upload(videos["short"].path)
    job_id = api.submit(
        url, 2, [{"model_id": "motion-detection", "model_version": "1", "inference_type": "classification"}]
    )
    state = api.wait(job_id)
    assert state["status"] == 4
    assert "object-detection" in state["error"]


def test_infer_fps_above_frame_rate_fails_with_code_5(api, videos):
    state = api.wait(api.submit(api.upload(videos["short"].path), 30))
    assert state["status"] == 5
    assert "frame rate" in state["error"]


def test_nothing_uploaded_fails_with_code_6(api):
    url = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": "never.mp4"}).json()[
        "signed_url"
    ]
    state = api.wait(api.submit(url, 2))
    assert state["status"] == 6


def test_a_model_failing_on_a_frame_gives_null(api, videos):
    flaky = {
        "model_id": "flaky-test",
        "model_version": "1",
        "inference_type": "object-detection",
        "inference_params": {"fail_every": 12},
    }
    result = api.run(videos["short"].path, 4, [flaky])
    offsets = result["frame_offset"]
    assert offsets == [0, 6, 12, 18]
    assert [frame is None for frame in result["flaky-test"]] == [True, False, True, False]

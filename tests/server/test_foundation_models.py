"""The built-in ``clip`` and ``gaze`` models on generated frames with known ground truth, and a job
submitted exactly as the official SDK's ``predict_video(..., additional_models=["clip", "gaze"])`` does."""

from __future__ import annotations

import json
import math
import time
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest
import requests
from helpers import assert_written_as_records

from airflow_provider_videoinfer.results.reader import ResultReader
from videoinfer_contract.results import Detections, Embedding, GazeResult
from videoinfer_server.models import VideoContext, VideoFrame, build_registry

CLIP = {"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"}
GAZE = {"model_id": "gaze", "model_version": "1", "inference_type": "gaze-detection"}
FACES = {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"}
MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
FACE_KEYS = {"x", "y", "width", "height", "confidence", "class", "class_id", "landmarks"}


def decoded_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_clip_similarity_orders_same_frame_above_shifted_frame_above_another_scene(scene_cut_video):
    model = build_registry(load_entry_points=False).resolve("clip", "1", "clip-embed-image")
    opened = model.open({}, VideoContext(fps=24.0, infer_fps=4, width=320, height=240))
    infer = getattr(opened, "infer", opened)

    def embed(image: np.ndarray) -> np.ndarray:
        embedding = infer(VideoFrame(image=image, index=0, time=0.0))
        assert isinstance(embedding, Embedding) and embedding.dimensions == 512
        return np.array(embedding.vector)

    frames = decoded_frames(scene_cut_video.path)
    scene = frames[0]
    other_scene = frames[scene_cut_video.scene_cut_frame + 6]
    ok, jpeg = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    same = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)  # the same frame, re-encoded
    shifted = np.roll(scene, 32, axis=1)  # the same scene, panned by a tenth of the frame
    anchor = embed(scene)
    assert abs(np.linalg.norm(anchor) - 1) < 1e-4
    same_sim, shifted_sim, other_sim = (cosine(anchor, embed(image)) for image in (same, shifted, other_scene))
    assert same_sim > 0.98
    assert same_sim > shifted_sim > other_sim
    assert other_sim < 0.6


def test_clip_embeddings_of_a_job_change_at_the_scene_cut(api, scene_cut_video):
    result = api.run(scene_cut_video.path, 4, [CLIP])
    offsets = result["frame_offset"]
    vectors = result["clip"]
    assert len(vectors) == len(offsets) == 8
    for vector in vectors:
        assert isinstance(vector, list) and len(vector) == 512
        assert all(isinstance(v, float) for v in vector)
        assert abs(math.hypot(*vector) - 1) < 1e-3
    steps = [cosine(a, b) for a, b in zip(vectors[:-1], vectors[1:], strict=True)]
    cut = offsets.index(scene_cut_video.scene_cut_frame)
    # Within a scene the rectangles move, yet consecutive frames stay close; across the cut they do not.
    assert all(sim > 0.9 for n, sim in enumerate(steps) if n != cut - 1), steps
    assert steps[cut - 1] < 0.6, steps


def nearest(faces, x: float, y: float):
    return min(faces, key=lambda face: math.dist(face.centre, (x, y)))


def test_gaze_finds_the_drawn_faces_their_eyes_and_their_head_angles(api, face_video):
    result = api.run(face_video.path, 4, [GAZE])
    assert len(result["gaze"]) == len(result["frame_offset"]) == 8
    for offset, frame in zip(result["frame_offset"], result["gaze"], strict=True):
        assert set(frame) == {"time", "predictions"}
        assert len(frame["predictions"]) == 2, (offset, frame)
        for prediction in frame["predictions"]:
            assert set(prediction) == {"face", "yaw", "pitch"}
            face = prediction["face"]
            assert set(face) == FACE_KEYS
            assert face["class"] == "face" and face["class_id"] == 0 and 0 < face["confidence"] <= 1
            truth = nearest(face_video.faces[offset], face["x"], face["y"])
            # The detector's box follows the eyes, nose and mouth, which move over a turned or tilted head.
            assert math.dist((face["x"], face["y"]), truth.centre) < 0.2 * truth.width
            for eye_x, eye_y in truth.eyes:
                assert abs(eye_x - face["x"]) < face["width"] / 2 and abs(eye_y - face["y"]) < face["height"] / 2
            assert [set(point) for point in face["landmarks"]] == [{"x", "y"}, {"x", "y"}]
            for found, drawn in zip(face["landmarks"], truth.eyes, strict=True):  # image-left eye first
                assert math.dist((found["x"], found["y"]), drawn) < 3, (found, drawn)
            assert abs(prediction["yaw"] - truth.yaw) < 0.05, (offset, prediction, truth)
            assert abs(prediction["pitch"] - truth.pitch) < 0.05, (offset, prediction, truth)
    # The documented signs: yaw positive when the face turns toward the image's right, pitch when it tilts up.
    turning = [min(frame["predictions"], key=lambda p: p["face"]["x"])["yaw"] for frame in result["gaze"]]
    assert turning[0] < -0.2 and turning[-1] > 0.2
    assert turning == sorted(turning)
    nodding = [max(frame["predictions"], key=lambda p: p["face"]["x"])["pitch"] for frame in result["gaze"]]
    assert nodding[0] > 0.2 and nodding[-1] < -0.2
    assert nodding == sorted(nodding, reverse=True)


def test_clip_and_gaze_treat_inference_params_like_every_builtin_model(api, face_video, caplog):
    """Unknown keys are ignored and invalid values fall back to the default with a logged warning."""
    bad = {"confidence": "very", "no_such_param": [1, 2]}
    plain = api.run(face_video.path, 2, [CLIP, GAZE, MOTION])
    odd = api.run(
        face_video.path,
        2,
        [
            {**CLIP, "inference_params": {"no_such_param": 1}},
            {**GAZE, "inference_params": bad},
            {**MOTION, "inference_params": bad},
        ],
    )
    assert odd["clip"] == plain["clip"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("inference_params.confidence='very' is not a number" in w for w in warnings) == 2, warnings
    for key in ("gaze", "motion-detection"):
        for a, b in zip(odd[key], plain[key], strict=True):
            for prediction in a["predictions"] + b["predictions"]:
                prediction.pop("detection_id", None)
            assert a["predictions"] == b["predictions"]
    assert any(frame["predictions"] for frame in plain["gaze"])
    # A valid value is honoured.
    strict = api.run(face_video.path, 2, [{**GAZE, "inference_params": {"confidence": 1.01}}])
    assert all(frame["predictions"] == [] for frame in strict["gaze"])


def test_a_job_submitted_as_the_sdk_does_reads_back_typed(server, face_video, tmp_path):
    """``predict_video(video, fps=2, additional_models=["clip", "gaze"])``, replayed with requests."""
    api_url, key = server.base_url, server.api_key
    response = requests.post(
        urljoin(api_url, "/video_upload_signed_url?api_key=" + key),
        headers={"Content-Type": "application/json"},
        data=json.dumps({"file_name": face_video.path.name}),
    )
    assert response.ok, response.text
    signed_url = response.json()["signed_url"]
    with open(face_video.path, "rb") as fh:
        assert requests.put(signed_url, data=fh.read(), headers={"Content-Type": "application/octet-stream"}).ok
    models = [FACES, CLIP, GAZE]  # the SDK appends the two foundation models' specs to the project's model
    response = requests.post(
        urljoin(api_url, "/videoinfer/?api_key=" + key),
        headers={"Content-Type": "application/json"},
        data=json.dumps({"input_url": signed_url, "infer_fps": 2, "models": models}),
    )
    assert response.ok, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 120
    while True:
        data = requests.get(urljoin(api_url, "/videoinfer/?api_key=" + key + "&job_id=" + job_id)).json()
        if data["status"] != 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert data["status"] == 0, data
    path = tmp_path / "result.json"
    path.write_bytes(requests.get(data["output_signed_url"]).content)
    written = json.loads(path.read_bytes())
    assert_written_as_records(written, [(m["model_id"], m["inference_type"]) for m in models])
    with ResultReader(path) as reader:
        frames = list(reader)
    assert [frame.frame_offset for frame in frames] == [0, 12, 24, 36]
    for frame in frames:
        embedding, gaze, faces = frame.results["clip"], frame.results["gaze"], frame.results["face-detection"]
        assert isinstance(embedding, Embedding) and embedding.dimensions == 512
        assert abs(math.hypot(*embedding.vector) - 1) < 1e-3
        assert isinstance(gaze, GazeResult) and len(gaze.predictions) == 2
        for looking in gaze.predictions:
            assert len(looking.face.landmarks) == 2 and -math.pi / 2 <= looking.yaw <= math.pi / 2
        assert isinstance(faces, Detections)
        for drawn in face_video.faces[frame.frame_offset]:
            assert any(math.dist((d.x, d.y), drawn.centre) < 0.2 * drawn.width for d in faces.predictions)


@pytest.mark.parametrize("model", [CLIP, GAZE])
def test_clip_and_gaze_are_listed(api, model):
    listed = api.http.get("/models", params=api.key).json()["models"]
    entry = next(m for m in listed if m["model_id"] == model["model_id"])
    assert (entry["model_version"], entry["inference_type"]) == (model["model_version"], model["inference_type"])
    if model is CLIP:
        assert "NOT CLIP" in entry["description"]

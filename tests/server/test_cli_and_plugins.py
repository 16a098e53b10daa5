"""The command line, user models (``--model`` and entry points), and an SDK-style client."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
import requests

from videoinfer_server.cli import main as cli_main
from videoinfer_server.launch import run_server
from videoinfer_server.models import ENTRY_POINT_GROUP, build_registry, simple_model

PLUGIN = """
from videoinfer_server.models import simple_model

def brightness(frame, params):
    mean = float(frame.image.mean())
    return {"time": 0.0, "image": {"width": frame.width, "height": frame.height},
            "predictions": [{"class": "bright" if mean > 100 else "dark", "class_id": 0, "confidence": 1.0}],
            "top": "bright" if mean > 100 else "dark", "confidence": 1.0, "mean": mean}

def models():
    return [simple_model("brightness", "classification", brightness, model_version="2",
                         description="mean brightness")]
"""


@pytest.fixture()
def plugin_dir(tmp_path, monkeypatch):
    """A user module ``my_models`` and an installed distribution declaring it as an entry point."""
    (tmp_path / "my_models.py").write_text(PLUGIN)
    dist = tmp_path / "my_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbrightness = my_models:models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_models", None)


def test_model_option_adds_user_models(plugin_dir, tmp_path, videos, make_api):
    with run_server(tmp_path / "data", models=["my_models:models"], load_entry_points=False) as server:
        api = make_api(server)
        listed = api.http.get("/models", params=api.key).json()["models"]
        assert {
            "model_id": "brightness",
            "model_version": "2",
            "inference_type": "classification",
            "description": "mean brightness",
            "source": "my_models:models",
        } in listed
        spec = {"model_id": "brightness", "model_version": "2", "inference_type": "classification"}
        result = api.run(videos["short"].path, 4, [spec])
        assert [frame["top"] for frame in result["brightness"]] == ["bright"] * 4
        # Version 1 does not exist: the error names the versions there are.
        wrong = api.wait(api.submit(api.upload(videos["short"].path), 4, [{**spec, "model_version": "1"}]))
        assert wrong["status"] == 4 and "versions 2" in wrong["error"]


def test_entry_point_models_are_loaded(plugin_dir):
    registry = build_registry()
    assert ("brightness", "2") in {(m["model_id"], m["model_version"]) for m in registry.describe()}
    assert "brightness" not in {m["model_id"] for m in build_registry(load_entry_points=False).describe()}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli_main(["models"]) == 0
    assert "brightness" in out.getvalue() and "entry point" in out.getvalue()


def test_bad_model_providers_are_refused():
    with pytest.raises(ValueError, match="package.module:callable"):
        build_registry(["no_colon"], load_entry_points=False)
    with pytest.raises(TypeError, match="model_id"):
        build_registry(["os:getcwd"], load_entry_points=False)
    registry = build_registry(load_entry_points=False)
    registry.add(simple_model("x", "object-detection", lambda frame, params: None))
    assert registry.resolve("x", "1", "object-detection").model_id == "x"


def test_sample_command_writes_a_video(tmp_path):
    out = tmp_path / "demo.mp4"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert cli_main(["sample", str(out), "--seconds", "1.5"]) == 0
    assert out.stat().st_size > 0
    assert "36 frames" in printed.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert cli_main(["sample", str(tmp_path / "faces.mp4"), "--faces", "--seconds", "1"]) == 0
    assert "24 frames" in printed.getvalue()
    assert (tmp_path / "faces.mp4").stat().st_size > 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "videoinfer_server.cli",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "cli-data"),
            "--log-level",
            "warning",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return process, port


def _wait_up(port: int, key: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", params={"api_key": key})
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_command_takes_the_key_from_env_or_prints_a_random_one(tmp_path):
    env = {**os.environ, "VIDEOINFER_API_KEY": "env-key"}
    process, port = _start(tmp_path, env, "--workspace", "my-space", "--enable-faults")
    try:
        assert _wait_up(port, "env-key").json() == {"workspace": "my-space"}
        assert httpx.delete(f"http://127.0.0.1:{port}/_faults", params={"api_key": "env-key"}).status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    env.pop("VIDEOINFER_API_KEY")
    process, port = _start(tmp_path, env)
    try:
        # Airflow may log a few lines first.
        line = next(line for line in process.stdout if "API key" in line)
        key = line.rsplit(" ", 1)[1].strip()
        assert _wait_up(port, key).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/", params={"api_key": "env-key"}).status_code == 401
    finally:
        process.terminate()
        process.wait(30)
    # Uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert process.returncode in (0, -15)


def test_an_sdk_style_client_works_unchanged(server, videos):
    """The official SDK's calls, replayed with requests: urljoin, trailing slashes, expiry parsing."""
    api_url = server.base_url
    key = server.api_key
    response = requests.request(
        "POST",
        urljoin(api_url, "/video_upload_signed_url?api_key=" + key),
        headers={"Content-Type": "application/json"},
        data=json.dumps({"file_name": videos["short"].path.name}),
    )
    assert response.ok
    signed_url = response.json()["signed_url"]
    expires = signed_url.split("&X-Goog-Expires")[1].split("&")[0].strip("=")
    assert int(expires) > 0
    with open(videos["short"].path, "rb") as fh:
        video_data = fh.read()
    assert requests.put(signed_url, data=video_data, headers={"Content-Type": "application/octet-stream"}).ok
    models = [{"model_id": "motion-detection", "model_version": 1, "inference_type": "object-detection"}]
    response = requests.request(
        "POST",
        urljoin(api_url, "/videoinfer/?api_key=" + key),
        headers={"Content-Type": "application/json"},
        data=json.dumps({"input_url": signed_url, "infer_fps": 5, "models": models}),
    )
    assert response.ok
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 60
    while True:
        data = requests.get(
            urljoin(api_url, "/videoinfer/?api_key=" + key + "&job_id=" + job_id),
            headers={"Content-Type": "application/json"},
        ).json()
        if data["status"] != 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert data["status"] == 0
    result = requests.get(data["output_signed_url"], headers={"Content-Type": "application/json"}).json()
    assert result["frame_offset"] == [0, 5, 10, 15, 20]
    assert len(result["motion-detection"]) == 5

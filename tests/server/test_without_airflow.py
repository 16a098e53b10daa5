"""The local server is its own distribution: installed into a virtualenv without Airflow, it serves a whole job."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import videoinfer_server
from videoinfer_server.launch import run_server_process

REPO = Path(__file__).resolve().parents[2]
MODELS = [
    {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"},
    {"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"},
    {"model_id": "gaze", "model_version": "1", "inference_type": "gaze-detection"},
]

# The calls of the official SDK's video inference, in its order: a signed upload URL, the upload,
# the job, polls of its status, the result. Run by the virtualenv's own interpreter.
SDK_CALLS = """
import json, sys, time
import httpx

base_url, key, video = sys.argv[1], sys.argv[2], sys.argv[3]
models = json.loads(sys.argv[4])
auth = {"api_key": key}
with httpx.Client(base_url=base_url, timeout=60) as http:
    signed = http.post("/video_upload_signed_url", params=auth, json={"file_name": "faces.mp4"}).json()["signed_url"]
    with open(video, "rb") as body:
        httpx.put(signed, content=body.read(), timeout=60).raise_for_status()
    job = {"input_url": signed, "infer_fps": 4, "models": models}
    job_id = http.post("/videoinfer", params=auth, json=job).json()["job_id"]
    deadline = time.monotonic() + 240
    while True:
        status = http.get("/videoinfer", params={**auth, "job_id": job_id}).json()
        if status["status"] != 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["status"] == 0, status
    print(json.dumps(httpx.get(status["output_signed_url"], timeout=60).json()))
"""


@pytest.fixture(scope="module")
def python_without_airflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding the contract and the server distributions (not editable), and no Airflow."""
    venv = tmp_path_factory.mktemp("no-airflow") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # The constraints file of the running Airflow and Python: the versions known to install together.
    airflow, python_version = version("apache-airflow"), f"{sys.version_info.major}.{sys.version_info.minor}"
    constraints = REPO / "constraints" / f"airflow-{airflow}-py{python_version}.txt"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-c", constraints, REPO / "contract", REPO / "server"],
        check=True,
        timeout=900,
    )
    installed = subprocess.run([python, "-m", "pip", "list"], capture_output=True, text=True, check=True).stdout
    assert "videoinfer-server" in installed and "apache-airflow" not in installed
    return python


def test_the_server_distribution_serves_a_job_without_airflow(python_without_airflow, tmp_path, face_video):
    help_text = subprocess.run(
        [python_without_airflow.parent / "videoinfer-server", "--help"], capture_output=True, text=True, timeout=120
    )
    assert help_text.returncode == 0 and "--data-dir" in help_text.stdout, help_text.stderr
    with run_server_process(
        tmp_path / "data", "no-airflow-key", "--no-entry-points", python=python_without_airflow, start_timeout=60
    ) as base_url:
        client = subprocess.run(
            [python_without_airflow, "-c", SDK_CALLS, base_url, "no-airflow-key", face_video.path, json.dumps(MODELS)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert client.returncode == 0, client.stderr
    result = json.loads(client.stdout)
    assert list(result) == ["frame_offset", "time_offset", "motion-detection", "clip", "gaze"]
    assert len(result["clip"]) == len(result["frame_offset"]) == 8
    assert all(len(vector) == 512 for vector in result["clip"])
    assert all(len(frame["predictions"]) == 2 for frame in result["gaze"])


def test_the_server_imports_only_the_shared_contract():
    """Also imports inside functions, which the process test above reaches only if they run."""
    package = Path(videoinfer_server.__file__).parent
    outside = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            outside |= {
                (path.relative_to(package).as_posix(), name)
                for name in names
                if name.split(".")[0] in ("airflow", "airflow_provider_videoinfer")
            }
    assert outside == set()


def test_the_provider_wheel_holds_no_server_code(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, REPO],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("airflow_provider_videoinfer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("airflow_provider_videoinfer/hooks/") for name in names)
    assert not [name for name in names if "server" in name.split("/")[0] or "/server/" in name]
    assert not [name for name in names if name.startswith(("videoinfer_server", "videoinfer_contract"))]

"""The local server runs its models and the contract in a process where Airflow cannot be imported."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from types import SimpleNamespace

import airflow_provider_videoinfer.server
from airflow_provider_videoinfer.server.testing import python_without, run_server_process

MODELS = [
    {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"},
    {"model_id": "clip", "model_version": "1", "inference_type": "clip-embed-image"},
    {"model_id": "gaze", "model_version": "1", "inference_type": "gaze-detection"},
]


def test_the_launcher_makes_airflow_unimportable():
    """Without this, the test below would prove nothing."""
    blocked = subprocess.run(python_without(["airflow"], "airflow"), capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0
    assert "ModuleNotFoundError" in blocked.stderr and "blocked" in blocked.stderr


def test_a_job_completes_on_a_server_without_airflow(tmp_path, face_video, make_api):
    with run_server_process(
        tmp_path / "data", "no-airflow-key", "--no-entry-points", block_imports=["airflow"], start_timeout=60
    ) as base_url:
        api = make_api(SimpleNamespace(base_url=base_url, api_key="no-airflow-key"))
        try:
            listed = {m["model_id"] for m in api.http.get("/models", params=api.key).json()["models"]}
            assert {"clip", "gaze", "motion-detection"} <= listed
            result = api.run(face_video.path, 4, MODELS)
        finally:
            api.http.close()
    assert list(result) == ["frame_offset", "time_offset", "motion-detection", "clip", "gaze"]
    assert len(result["clip"]) == len(result["frame_offset"]) == 8
    assert all(len(vector) == 512 for vector in result["clip"])
    assert all(len(frame["predictions"]) == 2 for frame in result["gaze"])


ALLOWED = {
    "airflow_provider_videoinfer.api",
    "airflow_provider_videoinfer.exceptions",
    "airflow_provider_videoinfer.results.format",
    "airflow_provider_videoinfer.redaction",
}


def test_the_server_imports_only_the_shared_contract_from_the_provider():
    """Also imports inside functions, which the process test above reaches only if they run."""
    package = Path(airflow_provider_videoinfer.server.__file__).parent
    outside = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "airflow" or (
                    name.startswith("airflow_provider_videoinfer") and not name.startswith(package_name(package))
                ):
                    outside.add((path.relative_to(package).as_posix(), name))
    assert {name for _, name in outside} <= ALLOWED, sorted(outside)


def package_name(package: Path) -> str:
    return "airflow_provider_videoinfer." + package.name

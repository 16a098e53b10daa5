"""A real Airflow api-server process over the test session's SQLite database, and headless Chromium.

The api-server serves Airflow's own UI and the provider's results view; it runs with a copy of the
simple auth manager that hides one DAG from the user ``outsider``. Chromium is Debian's
(``/usr/bin/chromium``) driven by Playwright from PyPI: nothing downloads a browser. Screenshots
go to ``tests/browser/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from helpers import connection_json, run_dag

from videoinfer_server.launch import free_port, stop_process

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
CHROMIUM = os.environ.get("VIDEOINFER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERS = {"admin": "admin-pw-3b1e", "outsider": "outsider-pw-9c2d"}


@dataclass(frozen=True)
class ApiServer:
    """A running api-server: its base URL and a way to get a user's JWT."""

    base_url: str
    log: Path

    def token(self, user: str) -> str:
        """A JWT of ``user`` (one of :data:`USERS`), as the UI keeps in its ``_token`` cookie."""
        answer = requests.post(
            f"{self.base_url}/auth/token", json={"username": user, "password": USERS[user]}, timeout=10
        )
        answer.raise_for_status()
        return answer.json()["access_token"]


@pytest.fixture(scope="session")
def finished_run(airflow_db, server, tmp_path_factory):
    """A successful run of the quick start, made against the local server in the session's database.

    Its results task was given the video, so its summary names a contact sheet.
    """
    from videoinfer_server.sample import make_sample_video

    folder = tmp_path_factory.mktemp("browser-run")
    video = folder / "street.mp4"
    make_sample_video(video, seconds=6.0, fps=24.0, size=(480, 270), objects=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
        patch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")
        run = run_dag("videoinfer_quickstart", video=str(video), results_dir=str(folder / "results"))
    return run


@pytest.fixture(scope="session")
def folder_run(airflow_db, server, tmp_path_factory):
    """A run of the folder example over two good videos and a corrupt one (``b-corrupt.mp4``)."""
    from videoinfer_server.sample import make_sample_video

    source = tmp_path_factory.mktemp("browser-folder")
    make_sample_video(source / "a.mp4", seconds=2.0, fps=10.0)
    (source / "b-corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    make_sample_video(source / "c.mp4", seconds=2.0, fps=10.0)
    results = tmp_path_factory.mktemp("browser-folder-results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
        patch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")
        return run_dag("videoinfer_folder", source=f"file://{source}", results_dir=f"file://{results}", infer_fps=2)


@pytest.fixture(scope="session")
def batch_run(airflow_db, server, tmp_path_factory):
    """A run of the Batch Processing example over two local videos (uploaded), its results kept locally."""
    from videoinfer_server.sample import make_sample_video

    videos = tmp_path_factory.mktemp("browser-batch")
    for seed, name in enumerate(("one.mp4", "two.mp4")):
        make_sample_video(videos / name, seconds=2.0, fps=10.0, objects=2 + seed, seed=seed)
    results = tmp_path_factory.mktemp("browser-batch-results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(server.base_url))
        patch.setenv("VIDEOINFER_POLL_INTERVAL", "0.3")
        return run_dag("videoinfer_batch", source=str(videos), results_dir=str(results), max_runtime_seconds=600)


@pytest.fixture(scope="package")
def api_server(airflow_db, finished_run, folder_run, batch_run, tmp_path_factory) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free loopback port; stopped by its pid at the end, also on failure.

    Package-scoped: it stops after the browser tests, before other tests write to the database.
    """
    folder = tmp_path_factory.mktemp("api-server")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps(USERS))
    from airflow.configuration import conf

    env = {
        **os.environ,
        # Connections saved through the UI must decrypt in this process too.
        "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__AUTH_MANAGER": "deny_auth_manager.OneDagHiddenAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,outsider:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        # The connection form's Test button (off by default in Airflow 3).
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    # The trigger forms are built from the serialized DAGs; a DAG processor would write them too.
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True, capture_output=True)
    port = free_port()
    log = folder / "api-server.log"
    with open(log, "wb") as output:
        command = ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base_url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the api-server did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield ApiServer(base_url, log)
    finally:
        stop_process(process)


@pytest.fixture(scope="package")
def browser():
    """Debian's headless Chromium through Playwright's bundled driver."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: install Debian's 'chromium' package (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, api_server, request):
    """A fresh page signed in as ``admin`` (its JWT in the ``_token`` cookie, as after a login).

    A screenshot of the page's last state is kept in ``tests/browser/artifacts/<test>.png``.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.add_cookies([{"name": "_token", "value": api_server.token("admin"), "url": api_server.base_url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()

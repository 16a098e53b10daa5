"""Helpers shared by the tests: the test API key, connections, and the local server's test endpoints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import requests

from videoinfer_contract.results import RECORD_TYPES, Embedding, encode_frame_result

API_KEY = "vi-test-key-7f3a9c1e5b"  # distinctive, so leak checks can search for it
#: A corrupt video: an MP4's first bytes (so the upload's check of the container passes), then nothing a
#: decoder can read, so that its job fails on the service (status 3 on the local server).
CORRUPT_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 5000
#: (where, text) of every log, output and failure text the test session captured (filled by conftest).
CAPTURED: list[tuple[str, str]] = []
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
_SPACE_AND_BOXES = re.compile(r"[\s\u2500-\u257f]+")


def console(*texts: str) -> str:
    """What a DAG run printed, as plain words on one line: colours removed, wrapped lines joined.

    Airflow 3.0 prints a task's exception through rich, coloured and wrapped at 100 columns.
    """
    return " ".join(_COLOURS.sub("", "".join(texts)).split())


def holds_key(text: str, api_key: str = API_KEY) -> bool:
    """Whether ``text`` shows the key, also when rich wrapped it across lines or inside a box."""
    return api_key in text or api_key in _SPACE_AND_BOXES.sub("", _COLOURS.sub("", text))


def connection_json(base_url: str, api_key: str = API_KEY, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` value of a videoinfer connection, with fast retries for tests."""
    settings = {"retry_initial_wait": 0.05, "retry_max_wait": 0.5, "read_timeout": 5, **extra}
    return json.dumps({"conn_type": "videoinfer", "host": base_url, "password": api_key, "extra": settings})


def assert_written_as_records(result: dict, models: list[tuple[str, str]]) -> None:
    """Every frame result of ``models`` in a result file (decoded) is exactly a contract record: it
    decodes into its task type's record, which encodes back to the same JSON, no key more or less."""
    for model_id, inference_type in models:
        for frame in result[model_id]:
            text = msgspec.json.encode(frame)
            if inference_type == "clip-embed-image":
                record = Embedding(msgspec.json.decode(text, type=tuple[float, ...]))
            else:
                record = msgspec.json.decode(text, type=RECORD_TYPES[inference_type])
            assert msgspec.json.decode(encode_frame_result(record)) == frame, model_id


def inject_fault(server, endpoint: str, action: str = "status", count: int = 1, **options: object) -> None:
    """Make the next ``count`` requests to ``endpoint`` fail on the local server."""
    body = {"endpoint": endpoint, "action": action, "count": count, **options}
    requests.post(f"{server.base_url}/_faults", params={"api_key": API_KEY}, json=body, timeout=5).raise_for_status()


def clear_faults(server) -> None:
    """Disarm every fault the local server has armed."""
    requests.delete(f"{server.base_url}/_faults", params={"api_key": API_KEY}, timeout=5).raise_for_status()


def request_times(server, endpoint: str) -> list[float]:
    """When each request to ``endpoint`` reached the local server (UNIX seconds, oldest first)."""
    answer = requests.get(f"{server.base_url}/_requests", params={"api_key": API_KEY, "endpoint": endpoint}, timeout=5)
    answer.raise_for_status()
    return answer.json()["times"]


def server_jobs(server) -> list[dict]:
    """Every job the local server has received."""
    answer = requests.get(f"{server.base_url}/_jobs", params={"api_key": API_KEY}, timeout=5)
    answer.raise_for_status()
    return answer.json()["jobs"]


def stored_digests(server) -> set[str]:
    """SHA-256 of every file the local server keeps in its data directory (uploads included)."""
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in server.data_dir.rglob("*") if p.is_file()}


@contextlib.contextmanager
def on_task_failure(callback: Callable[[Any, BaseException | str | None], None]) -> Iterator[None]:
    """Call ``callback(task_instance, error)`` each time a try of a task fails (retried or not).

    An Airflow listener, called by the task runner in the task's own process (``dag.test()`` runs
    tasks in the test process), right when the try ends: tests drive a recovery from that event
    instead of a timer, so they hold however slow the machine is.
    """
    import pluggy

    try:
        from airflow.sdk.listener import get_listener_manager  # the task runner's, Airflow 3.1+
    except ImportError:
        from airflow.listeners.listener import get_listener_manager  # type: ignore[no-redef]

    hookimpl = pluggy.HookimplMarker("airflow")

    class Listener:
        @hookimpl
        def on_task_instance_failed(self, previous_state, task_instance, error):
            callback(task_instance, error)

    listener = Listener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    try:
        yield
    finally:
        manager.pm.unregister(listener)


def dag_bag(folder: str | os.PathLike[str] | None = None):
    """The DAGs of a folder, by default the test DAGs folder (the example DAGs and tests/dags), parsed afresh.

    Not cached: ``dag.test(run_conf=...)`` changes the DAG's params in place.
    """
    from airflow_provider_videoinfer.compat import AIRFLOW_V_3_2_PLUS

    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(str(folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"]))


def run_dag(dag_id: str, **conf):
    """Run a DAG of the test DAGs folder with ``dag.test()`` and the given run config."""
    dag = dag_bag().get_dag(dag_id)
    assert dag is not None, f"DAG {dag_id} did not load: {dag_bag().import_errors}"
    return dag.test(run_conf=conf)


def xcom(run, task_id: str, key: str = "return_value"):
    """The XCom value a task of a finished run pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def states(run) -> dict[str, str]:
    """Each task's state in a finished run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}


def key_leaks_in_airflow(api_key: str) -> list[str]:
    """Where the key appears in the Airflow database (every table, every row) or the task log files."""
    home = Path(os.environ["AIRFLOW_HOME"])
    leaks = []
    with sqlite3.connect(home / "airflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            if any(api_key in repr(row) for row in db.execute(f'SELECT * FROM "{table}"')):
                leaks.append(f"table {table}")
    for file in (home / "logs").rglob("*") if (home / "logs").exists() else []:
        if file.is_file() and api_key in file.read_text(errors="replace"):
            leaks.append(str(file))
    return leaks


def run_moto_server(*, authenticate: bool = False, record_to: Path | None = None):
    """Start moto's standalone S3 server on a free loopback port; a context manager yielding its URL.

    :param authenticate: check credentials (moto then knows none, so every key is refused).
    :param record_to: a file where moto records every request it receives (method, URL, headers;
        see :func:`moto_requests`).
    """
    import contextlib
    import subprocess
    import sys
    import time

    from videoinfer_server.launch import free_port, stop_process

    @contextlib.contextmanager
    def running():
        port = free_port()
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if authenticate else {**os.environ}
        if record_to is not None:
            env.update({"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(record_to)})
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{url}/moto-api/", timeout=1)
                    break
                except requests.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("moto's S3 server did not start") from None
                    time.sleep(0.1)
            yield url
        finally:
            stop_process(process, timeout=10)

    return running()


def aws_connection_json(endpoint_url: str, key_id: str = "testing", secret: str = "testing-secret") -> str:
    """The ``AIRFLOW_CONN_*`` value of an Airflow ``aws`` connection to an S3 API at ``endpoint_url``."""
    extra = {"endpoint_url": endpoint_url, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": key_id, "password": secret, "extra": extra})


def moto_client(endpoint_url: str, key_id: str = "testing", signature_version: str | None = None) -> Any:
    """A boto3 S3 client of moto's server at ``endpoint_url`` (moto accepts any key unless it authenticates).

    :param signature_version: botocore's ``s3`` (SigV2) or ``s3v4``; botocore's choice when None.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id,
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(signature_version=signature_version) if signature_version else None,
    )


def moto_requests(record: Path, path: str) -> list[tuple[str, str]]:
    """(method, client) of each request moto recorded for ``path`` (``/bucket/key``), in order.

    The client is ``"botocore"`` for the provider's file systems (s3fs and boto3 sign with
    botocore) and ``"httpx"`` for the local videoinfer server fetching an input URL.
    """
    from urllib.parse import urlsplit

    found = []
    for line in record.read_text().splitlines() if record.exists() else []:
        entry = json.loads(line)
        if urlsplit(entry["url"]).path != path:
            continue
        agent = {key.lower(): value for key, value in entry["headers"].items()}.get("user-agent", "")
        client = "httpx" if "httpx" in agent else "botocore" if "botocore" in agent else agent
        found.append((entry["method"], client))
    return found


def moto_ranges(record: Path, path: str, client: str = "botocore") -> list[str | None]:
    """The ``Range`` header (None without one) of each GET that ``client`` sent moto for ``path``: the
    worker reads a video's headers (its facts, before a job) in a few ranged GETs, never the video."""
    from urllib.parse import urlsplit

    found = []
    for line in record.read_text().splitlines() if record.exists() else []:
        entry = json.loads(line)
        headers = {key.lower(): value for key, value in entry["headers"].items()}
        sender = headers.get("user-agent", "").lower()
        if entry["method"] == "GET" and urlsplit(entry["url"]).path == path and client in sender:
            found.append(headers.get("range"))
    return found


def server_rows(server, query: str) -> list[tuple]:
    """Rows of a query on the local server's own database (what it stores, unredacted)."""
    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as db:
        return db.execute(query).fetchall()


#: An unmasked credential of a presigned URL (the redaction writes ``name=***``): S3 SigV4 and
#: SigV2, Google Cloud Storage (and the local server's upload URLs), Azure SAS.
SIGNATURE_LEAK = re.compile(
    r"(?<![\w-])(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|AWSAccessKeyId|Signature|"
    r"X-Goog-Signature|X-Goog-Credential|GoogleAccessId|sig)=(?!\*\*\*)[^&\s'\"]+",
    re.IGNORECASE,
)


def signature_leaks(text: str) -> list[str]:
    """Each unmasked presigned-URL credential in ``text`` (``name=value``)."""
    return [match.group(0) for match in SIGNATURE_LEAK.finditer(text)]


#: Azurite's well-known development account (public: Azure's documentation prints it).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_command() -> str | None:
    """The ``azurite-blob`` command (npm package ``azurite``): ``$AZURITE_BLOB`` (``make test`` sets
    it), else on the PATH; None when neither exists."""
    import shutil

    command = os.environ.get("AZURITE_BLOB")
    return command if command and os.access(command, os.X_OK) else shutil.which("azurite-blob")


def run_azurite(log: Path):
    """Start Azurite's Blob service (in memory) on a free loopback port; a context manager yielding
    its connection string. Its access log (one line per request, query string included) goes to ``log``.
    """
    import contextlib
    import subprocess
    import time

    from videoinfer_server.launch import free_port, stop_process

    @contextlib.contextmanager
    def running():
        command = azurite_command()
        assert command, "azurite-blob not found: npm install azurite, or set AZURITE_BLOB"
        port = free_port()
        options = ["--blobPort", str(port), "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck"]
        with log.open("w") as output:
            process = subprocess.Popen([command, *options], stdout=output, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        try:
            deadline = time.monotonic() + 60
            while "successfully listens" not in log.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not start: {log.read_text()[-500:]}")
                time.sleep(0.1)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={endpoint};"
            )
        finally:
            stop_process(process, timeout=10)

    return running()


class FakeTaskStateStore(dict):
    """Airflow 3.3's ``task_state_store`` as the operators use it, in memory."""

    def set(self, key: str, value: object) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


class FakeTaskInstance:
    """Enough of a running task instance for ``execute``: what it pushes to XCom is kept in ``pushed``."""

    try_number = 1
    max_tries = 0

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def task_context() -> dict:
    """A context for calling an operator's ``execute`` outside a DAG run (a first try, no retries)."""
    return {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}

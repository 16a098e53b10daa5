"""A real Airflow deployment on this machine, for the system tests and ``make demo EXECUTOR=...``.

On 127.0.0.1 with free ports, in one temporary folder: Postgres (:mod:`postgres`), Airflow's
api-server, scheduler, dag-processor and triggerer(s) as separate processes, and local videoinfer
servers as processes of their own. With the LocalExecutor the scheduler runs the tasks; with the
CeleryExecutor a Redis broker (:mod:`redis_server`) and Celery workers do, and moto's S3 server
(:mod:`object_store`) holds videos, results and Airflow's task and trigger logs: each worker and
triggerer has an Airflow home, a working folder, a ``TMPDIR`` and a hostname of its own, and shares
nothing with the others but the DAGs folder, as on separate machines. Each process writes its
output to a file under ``logs/``; :meth:`Deployment.stop` stops every process it started by
process id (:mod:`processes`, descendants included), also when a test failed or the interpreter exits.

The REST helpers (:meth:`Deployment.api`) log in through the simple auth manager's ``/auth/token``.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from object_store import CONN_ID as S3_CONN_ID
from object_store import S3Server
from postgres import PostgresCluster
from processes import Process, wait_until
from redis_server import RedisServer

from videoinfer_server.launch import free_port
from videoinfer_server.models.testing import TESTING_MODELS

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DAGS = Path(__file__).resolve().parent / "dags"
#: What every Airflow process of the deployment imports from the tests: its ``hostname_callable``.
PYTHONPATH = Path(__file__).resolve().parent / "pythonpath"
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
#: Task processes each Celery worker runs at once.
WORKER_CONCURRENCY = 3
ADMIN = "admin"
TERMINAL_RUN_STATES = {"success", "failed"}
#: Seconds each part of the system test session took (deployment, each scenario), shown at its end.
TIMINGS: dict[str, float] = {}


@dataclass
class VideoServer:
    """A local videoinfer server process with a fixed port and data dir, so that it can be restarted.

    :param name: its name (also the name of its connection, ``videoinfer_<name>``).
    :param process: the process.
    :param base_url: e.g. ``http://127.0.0.1:40123``.
    :param api_key: the key it accepts.
    """

    name: str
    process: Process
    base_url: str
    api_key: str = field(repr=False)

    @property
    def conn_id(self) -> str:
        """The Airflow connection id that points at this server."""
        return "videoinfer_default" if self.name == "default" else f"videoinfer_{self.name}"

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until it answers ``GET /``."""

        def ready() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"the local server {self.name} exited; see {self.process.log_path}")
            return requests.get(self.base_url + "/", params={"api_key": self.api_key}, timeout=2).ok

        wait_until(f"the local server {self.name}", ready, timeout, 0.2)

    def start(self) -> None:
        """Start (or restart) it on its port with its data dir."""
        self.process.start()
        self.wait_ready()

    def jobs(self) -> list[dict[str, Any]]:
        """Every job it received (``GET /_jobs``)."""
        answer = requests.get(f"{self.base_url}/_jobs", params={"api_key": self.api_key}, timeout=10)
        answer.raise_for_status()
        return list(answer.json()["jobs"])

    def request_times(self, endpoint: str) -> list[float]:
        """When each request to ``endpoint`` arrived (UNIX seconds, oldest first; ``GET /_requests``)."""
        params = {"api_key": self.api_key, "endpoint": endpoint}
        answer = requests.get(f"{self.base_url}/_requests", params=params, timeout=10)
        answer.raise_for_status()
        return list(answer.json()["times"])

    def fail_job(self, job_id: str, status: int, error: str) -> None:
        """Make a job fail with ``status`` when it ends (``POST /_faults/jobs/<job_id>``)."""
        body = {"status": status, "error": error}
        url = f"{self.base_url}/_faults/jobs/{job_id}"
        requests.post(url, params={"api_key": self.api_key}, json=body, timeout=10).raise_for_status()

    def inject_fault(self, endpoint: str, action: str = "status", count: int = 1, **options: Any) -> None:
        """Make its next ``count`` requests to ``endpoint`` fail (``POST /_faults``)."""
        body = {"endpoint": endpoint, "action": action, "count": count, **options}
        answer = requests.post(f"{self.base_url}/_faults", params={"api_key": self.api_key}, json=body, timeout=10)
        answer.raise_for_status()


class Deployment:
    """Postgres, Airflow's four processes and local servers, in one temporary folder.

    :param server_names: one local server per name; ``"default"`` is ``videoinfer_default``'s, each
        other one gets the connection ``videoinfer_<name>``. All connections use default settings.
    :param env: more environment for the Airflow processes (e.g. ``VIDEOINFER_POLL_INTERVAL``).
    :param executor: ``"local"`` (the scheduler runs the tasks) or ``"celery"`` (Celery workers, a
        Redis broker, and S3 for task and trigger logs: see the module's docstring).
    :param triggerers: how many triggerers: ``triggerer``, or ``triggerer-1``, ``triggerer-2``... when
        several (each then with a home and hostname of its own, as the workers).
    :param workers: how many Celery workers (``worker-1``, ``worker-2``...), with ``executor="celery"``.
    :param s3: run moto's S3 server, connection ``moto_s3`` (always with ``executor="celery"``).
    :param api_port: the api-server's port; default: a free one.
    :param system_dags: parse the system tests' DAGs (``tests/system/dags``) beside the examples.
    """

    def __init__(
        self,
        server_names: tuple[str, ...] = ("default",),
        env: dict[str, str] | None = None,
        *,
        executor: str = "local",
        triggerers: int = 1,
        workers: int = 2,
        s3: bool = False,
        api_port: int | None = None,
        system_dags: bool = True,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor={executor!r}: use one of {', '.join(EXECUTORS)}")
        self.executor = executor
        self.dag_folders = (ROOT / "example_dags", SYSTEM_DAGS) if system_dags else (ROOT / "example_dags",)
        self.folder = Path(tempfile.mkdtemp(prefix=f"videoinfer-{executor}-"))
        os.chmod(self.folder, 0o755)  # the postgres user must reach its cluster inside
        self.logs = self.folder / "logs"
        self.logs.mkdir()
        self.home = self.folder / "airflow"
        self.dags = self.home / "dags"
        self.dags.mkdir(parents=True)
        self.api_key = "vi-system-key-" + secrets.token_hex(8)  # distinctive, for the leak scan
        self.admin_password = secrets.token_urlsafe(12)
        self.postgres = PostgresCluster(self.folder / "pgdata", self.logs)
        self.api_port = api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self._worker_log_port, self._trigger_log_port = free_port(), free_port()
        self._api_secret, self._jwt_secret = secrets.token_hex(16), secrets.token_hex(32)
        self.extra_env = dict(env or {})
        self.processes: dict[str, Process] = {}
        self.servers: dict[str, VideoServer] = {}
        self._server_names = server_names
        self._token: str | None = None
        self._stopped = False
        celery = executor == "celery"
        self.redis = RedisServer(self.folder / "redis", self.logs) if celery else None
        self.s3 = S3Server(self.logs, self.clean_env()) if s3 or celery else None
        self.triggerers = ["triggerer"] if triggerers == 1 else [f"triggerer-{n}" for n in range(1, triggerers + 1)]
        self.workers = [f"worker-{n}" for n in range(1, workers + 1)] if celery else []

    # ----- lifecycle -----

    def start(self) -> None:
        """Start everything and wait until the api-server answers; stop what started if anything fails."""
        atexit.register(self.stop)
        begin = time.monotonic()
        try:
            self.processes["postgres"] = self.postgres.start()
            if self.redis:
                self.processes["redis"] = self.redis.start()
            if self.s3:
                self.processes["moto-s3"] = self.s3.start()
            for name in self._server_names:
                self._start_server(name)
            self._link_dags()
            env = self.airflow_env()
            migrate = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
            )
            (self.logs / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
            if migrate.returncode:
                raise RuntimeError(f"airflow db migrate failed; see {self.logs / 'db-migrate.log'}")
            for component in ("api-server", "scheduler", "dag-processor"):
                self._start_airflow(component, [component])
            for name in self.triggerers:
                self._start_airflow(name, ["triggerer"])
            for name in self.workers:
                self._start_airflow(
                    name,
                    ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(WORKER_CONCURRENCY)],
                )
            wait_until(
                "the api-server", lambda: requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).ok, 180, 1
            )
            for name in self.workers:
                self.wait_for_worker(name)
            TIMINGS[f"{self.executor} deployment start"] = time.monotonic() - begin
        except BaseException:
            self.stop()
            raise

    def stop(self) -> list[str]:
        """Stop every process (Airflow's first, Postgres last), each by its pid; keep the logs.

        :return: the processes still running after that, as ``"name pid"`` (none, normally).
        """
        if self._stopped:
            return []
        self._stopped = True
        order = [
            *self.workers,
            *self.triggerers,
            *("scheduler", "dag-processor", "api-server"),
            *(s.process.name for s in self.servers.values()),
            *("moto-s3", "redis"),
        ]
        left: list[str] = []
        for name in order:
            if name in self.processes:
                left += [f"{name} {pid}" for pid in self.processes[name].stop()]
        left += [f"postgres {pid}" for pid in self.postgres.stop()]
        return left

    # ----- Postgres -----

    @property
    def sql_alchemy_conn(self) -> str:
        """The metadata database's SQLAlchemy URL."""
        return self.postgres.url

    def pg_dump(self) -> str:
        """A plain-text ``pg_dump`` of the metadata database (every row of every table), also kept in the logs."""
        dump = self.postgres.dump()
        (self.logs / "pg_dump.sql").write_text(dump)
        return dump

    # ----- local servers -----

    def _start_server(self, name: str) -> None:
        port = free_port()
        data_dir = self.folder / f"server-{name}"
        command = [sys.executable, "-m", "videoinfer_server.cli", "--port", str(port)]
        command += ["--host", "127.0.0.1", "--data-dir", str(data_dir), "--enable-faults", "--workers", "4"]
        # The slow-test model lets each scenario choose how long its jobs run. Videos in S3 are read by the
        # server itself, through the presigned URLs the submit tasks give it (no upload).
        command += ["--model", TESTING_MODELS, "--allow-remote-urls"]
        env = {**self.clean_env(), "VIDEOINFER_API_KEY": self.api_key}
        process = Process(f"server-{name}", command, env, self.logs / f"server-{name}.log")
        server = VideoServer(name, process, f"http://127.0.0.1:{port}", self.api_key)
        self.processes[process.name] = process
        self.servers[name] = server
        server.start()

    # ----- Airflow -----

    def _link_dags(self) -> None:
        for folder in self.dag_folders:
            for file in sorted(folder.glob("*.py")):
                (self.dags / file.name).symlink_to(file)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN: self.admin_password}))

    @staticmethod
    def clean_env() -> dict[str, str]:
        """This process's environment without any Airflow setting (the unit tests' conftest sets some)."""
        return {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}

    def airflow_env(self) -> dict[str, str]:
        """The environment of every Airflow process: the whole configuration is here."""
        env = self.clean_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PYTHONPATH), env.get("PYTHONPATH")])),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "videoinfer_system_hostname.hostname",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.executor],
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "16",
                # No Fernet key: trigger kwargs and other values stay in clear text in the database,
                # so that the pg_dump scan for the API key would see a leak there.
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.api_url,
                # One secret for every component: the api-server checks what the scheduler signs.
                "AIRFLOW__API__SECRET_KEY": self._api_secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._worker_log_port),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._trigger_log_port),
                # A task whose process died is noticed in seconds, not five minutes.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                # Triggers of a killed triggerer move to a live one after 10 s instead of 30 s.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            }
        )
        for server in self.servers.values():
            conn = {"conn_type": "videoinfer", "host": server.base_url, "password": self.api_key}
            env[f"AIRFLOW_CONN_{server.conn_id.upper()}"] = json.dumps(conn)
        if self.s3:
            env[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = self.s3.connection()
        if self.redis:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.redis.url
            # No disk shared with the workers and triggerers: the api-server reads their logs from S3.
            env["AIRFLOW__LOGGING__REMOTE_LOGGING"] = "True"
            env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] = "s3://airflow-logs/logs"
            env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] = S3_CONN_ID
        env.update(self.extra_env)
        return env

    def _own_machine(self, name: str) -> tuple[dict[str, str], Path]:
        """The environment and working folder of a worker or triggerer that shares no disk but the DAGs
        folder: its own Airflow home (hence its own task log folder), ``TMPDIR`` and hostname."""
        folder = self.folder / name
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        env = {"AIRFLOW_HOME": str(folder / "home"), "TMPDIR": str(folder / "tmp"), "VIDEOINFER_SYSTEM_HOSTNAME": name}
        return env, folder

    def _start_airflow(self, name: str, arguments: list[str]) -> None:
        env, cwd = self.airflow_env(), None
        if name in self.workers or (name in self.triggerers and len(self.triggerers) > 1):
            own, cwd = self._own_machine(name)
            env.update(own)
            # Their logs are read from S3: no log server, which would take the same port on this machine.
            arguments = [*arguments, "--skip-serve-logs"]
        command = [sys.executable, "-m", "airflow", *arguments]
        process = Process(name, command, env, self.logs / f"{name}.log", cwd=cwd)
        self.processes[name] = process
        process.start()

    def wait_for_worker(self, name: str, timeout: float = 180) -> None:
        """Wait until the Celery worker ``name`` says it is ready (it then takes tasks from the broker)."""
        process = self.processes[name]

        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"the Celery worker {name} exited; see {process.log_path}")
            return f"{name}@" in (text := process.log_path.read_text(errors="replace")) and " ready." in text

        wait_until(f"the Celery worker {name}", ready, timeout, 0.5)

    def restart(self, component: str) -> None:
        """Start a stopped or killed Airflow process again, with the same settings."""
        self.processes[component].start()

    # ----- REST API -----

    def token(self, renew: bool = False) -> str:
        """A JWT of the admin user from the simple auth manager's ``/auth/token``."""
        if self._token is None or renew:
            answer = requests.post(
                f"{self.api_url}/auth/token", json={"username": ADMIN, "password": self.admin_password}, timeout=30
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` as the admin user; return the JSON answer (raise on an HTTP error)."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token(renew=attempt > 0)}"}
            answer = requests.request(method, f"{self.api_url}/api/v2{path}", headers=headers, timeout=60, **kwargs)
            if answer.status_code != 401:
                break
        if not answer.ok:
            raise requests.HTTPError(
                f"{method} {path}: HTTP {answer.status_code}: {answer.text[:500]}", response=answer
            )
        return answer.json() if answer.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has stored ``dag_id`` (raise with its import errors if it does not)."""

        def parsed() -> bool:
            try:
                return bool(self.api("GET", f"/dags/{dag_id}"))
            except requests.HTTPError as err:
                if err.response is not None and err.response.status_code == 404:
                    return False
                raise

        try:
            wait_until(f"DAG {dag_id} to be parsed", parsed, timeout, 1)
        except TimeoutError as err:
            errors = self.api("GET", "/importErrors")
            raise TimeoutError(f"{err}; import errors: {json.dumps(errors)[:3000]}") from None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run of ``dag_id`` with ``conf``; return its run id."""
        self.wait_for_dag(dag_id)
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Clear tasks of a run, as a user does from the UI: they run again, and the run with them."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "reset_dag_runs": True}
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state of a DAG run."""
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        """Wait until a DAG run ends; return its state (``success`` or ``failed``)."""
        return str(
            wait_until(
                f"run {run_id} of {dag_id} to end",
                lambda: (state := self.run_state(dag_id, run_id)) in TERMINAL_RUN_STATES and state,
                timeout,
                2,
            )
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return list(answer["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance of a run."""
        suffix = f"/{map_index}" if map_index >= 0 else ""
        return dict(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}"))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value of a task instance."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.api("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The log of one try of a task instance, as text."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.api("GET", path, params={"map_index": map_index, "full_content": True})
        lines = answer.get("content", [])
        return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)

    def asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The asset events a run produced."""
        answer = self.api("GET", "/assets/events", params={"source_dag_id": dag_id, "source_run_id": run_id})
        return list(answer["asset_events"])

    # ----- logs -----

    def log_files(self) -> Iterator[Path]:
        """Every log file of the deployment: each process's output, Airflow's task and component logs."""
        for folder in (self.logs, self.home / "logs", *sorted(self.folder.glob("*/home/logs"))):
            if folder.exists():
                yield from (path for path in sorted(folder.rglob("*")) if path.is_file())

    def log_report(self, dag_ids: tuple[str, ...] = (), tail: int = 80) -> str:
        """The tails of the processes' logs and the task logs of ``dag_ids``, for a failed test's report."""
        parts = [f"Deployment folder (logs kept): {self.folder}"]
        for process in self.processes.values():
            if process.log_path.exists():
                lines = process.log_path.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"----- {process.log_path.name} (last {len(lines)} lines)\n" + "\n".join(lines))
        for dag_id in dag_ids:
            for path in sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log")):
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"----- {path.relative_to(self.home)}\n" + "\n".join(lines))
        return "\n".join(parts).replace(self.api_key, "***")

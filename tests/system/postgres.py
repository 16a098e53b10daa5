"""A throwaway Postgres cluster from Debian's packages, on 127.0.0.1 and a free port, in a folder of its own.

Postgres refuses to run as root: when we are root, ``initdb`` and ``postgres`` run as the
``postgres`` user (``runuser``), in a folder chowned to it.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from processes import Process, wait_until

from videoinfer_server.launch import free_port

DATABASE = "airflow"
USER = "airflow"


def postgres_bin(name: str) -> str:
    """The path of a Postgres program (``initdb``, ``postgres``, ``pg_dump``...) from Debian's packages."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(
            f"{name} not found: the system tests need Debian's postgresql package. "
            "Install it with `make system-packages` (as root) or `apt-get install -y postgresql`."
        )
    return path


class PostgresCluster:
    """A cluster in ``folder`` with one database and one password-protected user.

    :param folder: an empty folder for the cluster's data and sockets.
    :param logs: the folder of its log files.
    """

    def __init__(self, folder: Path, logs: Path) -> None:
        self.folder, self.logs = folder, logs
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.user = "postgres" if os.geteuid() == 0 else None
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """The database's SQLAlchemy URL (psycopg2)."""
        return f"postgresql+psycopg2://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, path: Path) -> Path:
        if self.user:
            shutil.chown(path, self.user)
        return path

    def start(self) -> Process:
        """initdb, start the server, create the database; return the server's process."""
        self.folder.mkdir(mode=0o700)
        (self.folder.parent / "pgsocket").mkdir()
        data, sockets = self._as_owner(self.folder), self._as_owner(self.folder.parent / "pgsocket")
        password_file = self.folder.parent / "pgpass.txt"
        password_file.write_text(self.password + "\n")
        self._as_owner(password_file)
        initdb = [postgres_bin("initdb"), "-D", str(data), "-U", USER, "--pwfile", str(password_file), "-E", "UTF8"]
        initdb += ["--auth-host", "scram-sha-256", "--auth-local", "trust"]
        if self.user:
            initdb = ["runuser", "-u", self.user, "--", *initdb]
        result = subprocess.run(
            initdb, env=self.env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        (self.logs / "initdb.log").write_text(result.stdout + result.stderr)
        password_file.unlink()
        if result.returncode:
            raise RuntimeError(f"initdb failed; see {self.logs / 'initdb.log'}")

        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(sockets),
            "fsync": "off",  # a throwaway cluster: speed over durability
            "max_connections": "200",
        }
        command = [postgres_bin("postgres"), "-D", str(data), "-p", str(self.port)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log = self.logs / "postgres.log"
        log.touch()
        self._as_owner(log)
        self.process = Process("postgres", command, self.env, log, user=self.user)
        self.process.start()
        ready = [postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        wait_until(
            "Postgres",
            lambda: self._alive() and subprocess.run(ready, capture_output=True, timeout=10).returncode == 0,
            60,
        )
        self._client("psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {DATABASE}")
        return self.process

    def _alive(self) -> bool:
        if self.process is None or not self.process.alive():
            raise RuntimeError(f"Postgres exited; see {self.logs / 'postgres.log'}")
        return True

    def _client(self, program: str, *args: str) -> str:
        command = [postgres_bin(program), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, *args]
        env = {**self.env, "PGPASSWORD": self.password}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"{program} failed: {result.stderr}")
        return result.stdout

    def dump(self) -> str:
        """A plain-text ``pg_dump`` of the database: every row of every table."""
        return self._client("pg_dump", DATABASE)

    def stop(self) -> list[int]:
        """Fast shutdown (SIGINT), then remove the data; return the pids still running (none, normally)."""
        left = self.process.stop(signal.SIGINT) if self.process else []
        shutil.rmtree(self.folder, ignore_errors=True)
        return left

"""A throwaway Redis server from Debian's ``redis-server`` package: the Celery executor's broker.

On 127.0.0.1 and a free port, with no persistence (nothing is saved to disk), in a folder of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis
from processes import Process, wait_until

from videoinfer_server.launch import free_port


def redis_server_bin() -> str:
    """The path of Debian's ``redis-server``."""
    path = shutil.which("redis-server")
    if not path:
        raise RuntimeError(
            "redis-server not found: the Celery system tests need Debian's redis-server package. "
            "Install it with `make system-packages` (as root) or `apt-get install -y redis-server`."
        )
    return path


class RedisServer:
    """One Redis server.

    :param folder: an empty folder for its working directory.
    :param logs: the folder of its log file.
    """

    def __init__(self, folder: Path, logs: Path) -> None:
        self.folder, self.logs = folder, logs
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """The broker URL, e.g. ``redis://127.0.0.1:40123/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Process:
        """Start it and wait until it answers PING; return its process."""
        self.folder.mkdir()
        command = [redis_server_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
        self.process = Process("redis", command, {}, self.logs / "redis.log", cwd=self.folder)
        self.process.start()

        def answers() -> bool:
            if not self.process or not self.process.alive():
                raise RuntimeError(f"redis-server exited; see {self.logs / 'redis.log'}")
            with redis.Redis(port=self.port, socket_timeout=2) as client:
                return bool(client.ping())

        wait_until("Redis", answers, 30, 0.1)
        return self.process

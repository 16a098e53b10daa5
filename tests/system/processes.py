"""Processes the system tests start, and stop by process id, with their output in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check()`` until it returns something truthy; raise TimeoutError naming ``what`` after ``timeout`` s.

    Connection errors, HTTP errors and missing keys count as "not yet"; any other exception ends the wait.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, OSError, KeyError, ValueError) as err:
            last_error = err
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})")
        time.sleep(interval)


@dataclass
class Process:
    """One process: how to start it, its log file, and its ``Popen``.

    :param name: a short name, also the log file's stem.
    :param command: the command line.
    :param env: its environment.
    :param log_path: where its stdout and stderr go (appended to across restarts).
    :param user: run it as this user through ``runuser`` (Postgres as ``postgres`` when we are root).
    :param cwd: its working directory; default: the folder of its log file.
    """

    name: str
    command: list[str]
    env: dict[str, str] = field(repr=False)
    log_path: Path
    user: str | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The process id of the running process."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def start(self) -> None:
        """Start it in a session of its own (so that a terminal's Ctrl-C reaches only the test runner)."""
        command = ["runuser", "-u", self.user, "--", *self.command] if self.user else self.command
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting {self.name}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.cwd or self.log_path.parent,
            )

    def alive(self) -> bool:
        """Whether it is running."""
        return self.popen is not None and self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants, as running now."""
        if self.popen is None:
            return []
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill9(self) -> None:
        """``kill -9`` the process and its descendants (e.g. the triggerer's trigger runner and log server),
        as a crash of its machine would; reap it."""
        assert self.popen is not None
        tree = self.tree()
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.popen.wait(timeout=30)
        psutil.wait_procs(tree, timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> list[int]:
        """Send ``sig`` to it, wait, then SIGKILL it and every descendant still alive, each by its pid.

        :return: the pids that still run after all that (none, normally).
        """
        if self.popen is None:
            return []
        tree = self.tree()
        if self.popen.poll() is None:
            # runuser waits for its child: signal the child (Postgres) itself.
            targets = [p for p in tree[1:] if _parent(p) == self.popen.pid] if self.user else tree[:1]
            for target in targets or tree[:1]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    target.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        for process in tree[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(tree[1:], timeout=10)
        return [process.pid for process in tree if _running(process)]


def _parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.NoSuchProcess:
        return None


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_task_process(pid: int, ancestor: Process) -> None:
    """``kill -9`` one process, after checking that it descends from ``ancestor`` (a process we started)."""
    process = psutil.Process(pid)
    if ancestor.pid not in {parent.pid for parent in process.parents()}:
        raise AssertionError(f"process {pid} does not descend from {ancestor.name} ({ancestor.pid}): not ours")
    os.kill(pid, signal.SIGKILL)

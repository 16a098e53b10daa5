"""Worker threads fed by a queue of ids: what the video jobs, the batch jobs and the reference ingests share."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class QueueWorkers:
    """``count`` threads taking ids from a queue and handing each to ``handle``; an exception is logged,
    never kills a thread.

    :param name: the threads' name prefix.
    :param count: how many threads.
    :param handle: called with each id, in one of the threads.
    """

    def __init__(self, name: str, count: int, handle: Callable[[str], None]) -> None:
        self._name = name
        self._count = count
        self._handle = handle
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        """Set when the workers stop: long work checks it and stops early."""

    def start(self) -> None:
        """Start the threads."""
        for n in range(self._count):
            thread = threading.Thread(target=self._loop, name=f"{self._name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, item: str) -> None:
        """Queue an id."""
        self._queue.put(item)

    def stop(self, timeout: float = 15.0) -> None:
        """Set :attr:`stopping` and wait for the threads (each at most ``timeout`` seconds)."""
        self.stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            item = self._queue.get()
            if item is None or self.stopping.is_set():
                return
            try:
                self._handle(item)
            except Exception:  # never let a worker die
                log.exception("%s failed on %s", self._name, item)

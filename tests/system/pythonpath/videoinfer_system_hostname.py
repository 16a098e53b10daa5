"""The ``[core] hostname_callable`` of the system tests' Airflow processes (this folder is on their PYTHONPATH).

Two Celery workers and two triggerers run on one machine; each is told its own name in
``VIDEOINFER_SYSTEM_HOSTNAME``, so that Airflow records which one ran a task or holds a trigger
(the ``hostname`` of task instances and triggerer jobs), as if they ran on machines of their own.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``VIDEOINFER_SYSTEM_HOSTNAME``, or this machine's fully qualified name when it is not set."""
    return os.environ.get("VIDEOINFER_SYSTEM_HOSTNAME") or socket.getfqdn()

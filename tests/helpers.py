"""Helpers shared by the tests: the test API key, connections, and the local server's test endpoints."""

from __future__ import annotations

import hashlib
import json

import requests

API_KEY = "vi-test-key-7f3a9c1e5b"  # distinctive, so leak checks can search for it


def connection_json(base_url: str, api_key: str = API_KEY, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` value of a videoinfer connection, with fast retries for tests."""
    settings = {"retry_initial_wait": 0.05, "retry_max_wait": 0.5, "read_timeout": 5, **extra}
    return json.dumps({"conn_type": "videoinfer", "host": base_url, "password": api_key, "extra": settings})


def inject_fault(server, endpoint: str, action: str = "status", count: int = 1, **options: object) -> None:
    """Make the next ``count`` requests to ``endpoint`` fail on the local server."""
    body = {"endpoint": endpoint, "action": action, "count": count, **options}
    requests.post(f"{server.base_url}/_faults", params={"api_key": API_KEY}, json=body, timeout=5).raise_for_status()


def server_jobs(server) -> list[dict]:
    """Every job the local server has received."""
    answer = requests.get(f"{server.base_url}/_jobs", params={"api_key": API_KEY}, timeout=5)
    answer.raise_for_status()
    return answer.json()["jobs"]


def stored_digests(server) -> set[str]:
    """SHA-256 of every file the local server keeps in its data directory (uploads included)."""
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in server.data_dir.rglob("*") if p.is_file()}

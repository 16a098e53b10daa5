"""A local server speaking the Video Inference API, for developing and testing DAGs offline.

Start it with ``videoinfer-server --data-dir DIR --api-key KEY`` or, from tests, with
:func:`airflow_provider_videoinfer.server.testing.run_server`. Needs the ``server`` extra (OpenCV,
NumPy, FastAPI, uvicorn, httpx) and not Airflow: of the provider it imports only the contract
(:mod:`airflow_provider_videoinfer.api`, :mod:`airflow_provider_videoinfer.exceptions`) and the result
file's key names (:mod:`airflow_provider_videoinfer.results.format`).
"""

from __future__ import annotations

from airflow_provider_videoinfer.server.config import ServerConfig
from airflow_provider_videoinfer.server.failures import FailureCode

__all__ = ["FailureCode", "ServerConfig"]

"""A local server speaking the Video Inference API, for developing and testing DAGs offline.

Start it with ``videoinfer-server --data-dir DIR --api-key KEY`` or, from tests, with
:func:`airflow_provider_videoinfer.server.testing.run_server`. Needs the ``server`` extra
(OpenCV, NumPy) plus FastAPI and uvicorn.
"""

from __future__ import annotations

from airflow_provider_videoinfer.server.config import ServerConfig
from airflow_provider_videoinfer.server.failures import FailureCode

__all__ = ["FailureCode", "ServerConfig"]

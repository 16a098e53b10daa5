"""A local server speaking the Video Inference API, for developing and testing offline.

Start it with ``videoinfer-server --data-dir DIR --api-key KEY`` or, from tests, with
:func:`videoinfer_server.launch.run_server`. It needs no Airflow: of the client side it shares
only the contract (:mod:`videoinfer_contract`: the job request and its validation, key redaction,
the result file's schema).
"""

from __future__ import annotations

from videoinfer_server.config import ServerConfig
from videoinfer_server.job_failures import FailureCode

__all__ = ["FailureCode", "ServerConfig"]

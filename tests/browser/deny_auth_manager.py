"""Airflow's simple auth manager, except that the user ``outsider`` may not read one DAG.

The simple auth manager has no per-DAG permissions; the browser tests' api-server uses this one
to prove that the results view asks Airflow whether the user may read the DAG.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

OUTSIDER = "outsider"
HIDDEN_DAG = "videoinfer_quickstart"


class OneDagHiddenAuthManager(SimpleAuthManager):
    """Denies ``outsider`` every access to :data:`HIDDEN_DAG`."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == OUTSIDER and details is not None and details.id == HIDDEN_DAG:
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)

"""The DAG of tests/test_compat.py: a task that registers a secret through compat.mask_secret."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_videoinfer import compat

#: The secret the task registers; the test reads how the task's logs would show it.
SECRET = "compat-secret-9f3c2a"


def _as_logged(text: str) -> Any:
    """``text`` as the task's logs show it (Airflow's redact: in airflow.sdk.log from 3.1)."""
    if compat.AIRFLOW_V_3_1_PLUS:
        from airflow.sdk.log import redact
    else:
        from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]
    return redact(text)


with DAG("vi_compat_masking", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):

    @task
    def register() -> dict[str, Any]:
        """Whether Airflow 3.0's private names found the masker shared with the supervisor, and a logged line."""
        found = compat.in_process_secrets_masker() is not None
        compat.mask_secret(SECRET)
        return {"found": found, "logged": _as_logged(f"the secret is {SECRET}")}

    register()

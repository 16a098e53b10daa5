"""What differs between the Airflow lines the provider supports, in one place.

Every other module imports these names from here, never with a try/except of its own.
"""

from __future__ import annotations

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
    )

__all__ = ["AirflowException", "AirflowFailException", "AirflowSensorTimeout"]

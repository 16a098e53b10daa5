"""What differs between the Airflow lines the provider supports (3.0 to 3.3), in one place.

Every other module imports these names from here: nothing else reads Airflow's version or tries an
import to find out what this Airflow has. What is the same on every supported line (``BaseOperator``,
``BaseSensorOperator``, ``PokeReturnValue``, ``ObjectStoragePath``, ``Asset``, ``AssetAlias``,
``Context``, ``Variable`` and ``mask_secret`` from ``airflow.sdk``; ``BaseTrigger`` and
``TriggerEvent`` from ``airflow.triggers.base``) is imported where it is used.

====================================  =======  =======  =======  =======
                                       3.0      3.1      3.2      3.3
====================================  =======  =======  =======  =======
``BaseHook`` in ``airflow.sdk``        no       yes      yes      yes
``BaseHook.aget_connection``           no       yes      yes      yes
exceptions in ``airflow.sdk``          no       partly   yes      yes
``conf`` in ``airflow.sdk``            no       no       yes      yes
connection form from provider info     no       no       yes      yes
plugin tabs (``external_views``)       no       yes      yes      yes
UI token cookie on plugin routes       no       yes      yes      yes
``task_state_store``                   no       no       no       yes
====================================  =======  =======  =======  =======
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as _airflow_version
from airflow.sdk.log import mask_secret as _mask_secret
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: The running Airflow's release, without pre-release or local parts (3.1.8rc1 -> 3.1.8).
AIRFLOW_VERSION = Version(Version(_airflow_version).base_version)
AIRFLOW_V_3_1_PLUS = Version("3.1.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_2_PLUS = Version("3.2.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= AIRFLOW_VERSION

#: The connection form is built from ``get_provider_info()``'s ``conn-fields``; before 3.2 from the
#: hook's ``get_connection_form_widgets`` and ``get_ui_field_behaviour``, read only when WTForms is
#: installed (it comes with apache-airflow-providers-fab).
FORM_FROM_PROVIDER_INFO = AIRFLOW_V_3_2_PLUS
#: A plugin can add a tab to task instance pages (``external_views``), and the api-server accepts
#: the UI's ``_token`` cookie on plugin routes, so a signed-in browser can open the results view.
#: Airflow 3.0 mounts the plugin's FastAPI app, reachable with an ``Authorization: Bearer`` header only.
HAS_PLUGIN_TABS = AIRFLOW_V_3_1_PLUS
#: ``airflow dags test`` and ``dag.test()`` leave structlog unconfigured, so they print debug lines,
#: among them every ``MaskSecret(value=...)`` message a task sends, the secret in clear (Airflow's
#: own connection lookup sends one per password). A worker's supervisor omits that body; from 3.1
#: the debug lines are not printed. :func:`filter_debug_logs` is the mitigation.
DAGS_TEST_PRINTS_DEBUG = not AIRFLOW_V_3_1_PLUS

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
else:  # Airflow 3.1 has AirflowException in airflow.sdk.exceptions, but not the two others
    from airflow.configuration import conf  # type: ignore[no-redef]
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from a coroutine (the trigger) without blocking the event loop.

    :param conn_id: the connection's id.
    """
    if AIRFLOW_V_3_1_PLUS:
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    # Airflow 3.0's triggerer answers a synchronous read from a worker thread (as its own providers do).
    return await sync_to_async(BaseHook.get_connection)(conn_id)


def mask_secret(secret: Any) -> None:
    """Hide ``secret`` in every log of this process and of its supervisor.

    On Airflow 3.0 under ``airflow dags test`` the supervisor runs in this process and shares its
    masker: the secret is added to it without the ``MaskSecret`` message that process prints
    (see :data:`DAGS_TEST_PRINTS_DEBUG`).
    """
    if DAGS_TEST_PRINTS_DEBUG:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.secrets_masker import _secrets_masker
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

        if isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms):
            _secrets_masker().add_mask(secret)
            return
    _mask_secret(secret)


def filter_debug_logs() -> None:
    """Drop debug lines from this process's structlog output: on Airflow 3.0, call it before
    ``dag.test()``, or run ``airflow dags test`` as
    ``python -c "from airflow_provider_videoinfer.compat import filter_debug_logs; filter_debug_logs();
    from airflow.__main__ import main; main()" dags test ...`` (see :data:`DAGS_TEST_PRINTS_DEBUG`).
    """
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


__all__ = [
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "DAGS_TEST_PRINTS_DEBUG",
    "FORM_FROM_PROVIDER_INFO",
    "HAS_PLUGIN_TABS",
    "aget_connection",
    "conf",
    "filter_debug_logs",
    "mask_secret",
]

"""What differs between the Airflow lines the provider supports (3.0 to 3.3), in one place.

Every other module imports these names from here: nothing else reads Airflow's version or tries an
import to find out what this Airflow has. What is the same on every supported line (``BaseOperator``,
``BaseSensorOperator``, ``PokeReturnValue``, ``ObjectStoragePath``, ``Asset``, ``AssetAlias``,
``Context``, ``Variable`` and ``mask_secret`` from ``airflow.sdk``; ``BaseTrigger`` and
``TriggerEvent`` from ``airflow.triggers.base``) is imported where it is used.

**From apache-airflow-providers-common-compat** (as Airflow's own providers do), where its
``sdk`` module is installed: ``BaseHook``, ``conf``, ``AirflowException``,
``AirflowFailException``, ``AirflowSensorTimeout`` (``airflow.providers.common.compat.sdk``) and
the trigger's connection read (``airflow.providers.common.compat.connection.get_async_connection``).
The constraints of Airflow 3.1.8, 3.2.2 and 3.3.2 pin a common-compat that has them (1.14.1 and
later); those of Airflow 3.0.6 pin 1.7.3, which has no ``sdk`` module, so on 3.0 (or with any
common-compat that old) this module imports the same names from Airflow itself.

**The provider's own**, where common-compat has nothing: ``AirflowRescheduleException`` (not in
its ``sdk``), the version flags, :func:`mask_secret` on Airflow 3.0 under ``airflow dags test``
and :func:`filter_debug_logs`.

**Private Airflow names**: one function uses them, :func:`in_process_secrets_masker`, on Airflow
3.0 only; ``tests/test_compat.py`` (a core test, run on every supported line) fails when they move.

=====================================  =======  ======  ===  ===
                                       3.0      3.1     3.2  3.3
=====================================  =======  ======  ===  ===
common-compat's ``sdk`` (constraints)  no       yes     yes  yes
``BaseHook`` in ``airflow.sdk``        no       yes     yes  yes
``BaseHook.aget_connection``           no       yes     yes  yes
exceptions in ``airflow.sdk``          no       partly  yes  yes
``conf`` in ``airflow.sdk``            no       no      yes  yes
``airflow dags test`` debug lines      printed  no      no   no
``task_state_store``                   no       no      no   yes
=====================================  =======  ======  ===  ===
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

#: ``airflow dags test`` and ``dag.test()`` leave structlog unconfigured, so they print debug lines,
#: among them every ``MaskSecret(value=...)`` message a task sends, the secret in clear (Airflow's
#: own connection lookup sends one per password). A worker's supervisor omits that body; from 3.1
#: the debug lines are not printed. :func:`filter_debug_logs` is the mitigation.
DAGS_TEST_PRINTS_DEBUG = not AIRFLOW_V_3_1_PLUS

try:  # common-compat 1.14.1+ (the constraints of Airflow 3.1 to 3.3)
    from airflow.providers.common.compat.connection import get_async_connection as _get_async_connection
    from airflow.providers.common.compat.sdk import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        BaseHook,
        conf,
    )

    HAS_COMMON_COMPAT_SDK = True
except ImportError:  # Airflow 3.0.6's constraints pin common-compat 1.7.3, without its sdk module
    from airflow.configuration import conf  # type: ignore[no-redef]
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

    _get_async_connection = None  # type: ignore[assignment]
    HAS_COMMON_COMPAT_SDK = False

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowRescheduleException
else:
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from a coroutine (the trigger) without blocking the event loop.

    :param conn_id: the connection's id.
    """
    if _get_async_connection is not None:
        return await _get_async_connection(conn_id)
    from asgiref.sync import sync_to_async

    # Airflow 3.0's triggerer answers a synchronous read from a worker thread (as its own providers do).
    return await sync_to_async(BaseHook.get_connection)(conn_id)


def in_process_secrets_masker() -> Any | None:
    """The secrets masker a task shares with its supervisor when both run in one process (Airflow
    3.0's ``airflow dags test`` and ``dag.test()``); None anywhere else, and on Airflow 3.1+.

    The provider's one use of private Airflow names: ``task_runner.SUPERVISOR_COMMS``,
    ``supervisor.InProcessSupervisorComms`` and ``secrets_masker._secrets_masker``, imported on
    Airflow 3.0 only. ``tests/test_compat.py`` calls it inside a ``dag.test()`` task on every
    supported line, so a release that moves them fails that test, not a user's task.
    """
    if not DAGS_TEST_PRINTS_DEBUG:
        return None
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.secrets_masker import _secrets_masker
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

    if isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms):
        return _secrets_masker()
    return None


def mask_secret(secret: Any) -> None:
    """Hide ``secret`` in every log of this process and of its supervisor (``airflow.sdk.log.mask_secret``).

    On Airflow 3.0 under ``airflow dags test`` the supervisor runs in this process and shares its
    masker: the secret is added to it without the ``MaskSecret`` message that process prints
    (see :data:`DAGS_TEST_PRINTS_DEBUG` and :func:`in_process_secrets_masker`).
    """
    masker = in_process_secrets_masker()
    if masker is not None:
        masker.add_mask(secret)
        return
    _mask_secret(secret)


def filter_debug_logs() -> None:
    """On Airflow 3.0, drop debug lines from this process's structlog output; on 3.1+ do nothing.

    The provider never calls it: it reconfigures structlog for the whole process, which is the
    caller's choice. Call it before ``dag.test()`` on Airflow 3.0, or run ``airflow dags test`` as
    ``python -c "from airflow_provider_videoinfer.compat import filter_debug_logs; filter_debug_logs();
    from airflow.__main__ import main; main()" dags test ...`` (see :data:`DAGS_TEST_PRINTS_DEBUG`);
    ``make demo`` and the tests do.
    """
    if not DAGS_TEST_PRINTS_DEBUG:
        return
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


__all__ = [
    "AIRFLOW_VERSION",
    "DAGS_TEST_PRINTS_DEBUG",
    "HAS_COMMON_COMPAT_SDK",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "aget_connection",
    "conf",
    "filter_debug_logs",
    "in_process_secrets_masker",
    "mask_secret",
]

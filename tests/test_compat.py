"""What compat.py takes from Airflow and from common-compat, pinned on every supported line (a core test).

A release of Airflow or of apache-airflow-providers-common-compat that moves a name the provider
uses fails here, not in a user's task.
"""

from __future__ import annotations

import pytest
import structlog
from helpers import run_dag, xcom

from airflow_provider_videoinfer import compat

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_the_names_come_from_common_compat_where_it_has_them():
    """Common-compat's sdk where it is installed (the constraints of 3.1 to 3.3), Airflow's own names on 3.0."""
    assert compat.HAS_COMMON_COMPAT_SDK is compat.AIRFLOW_V_3_1_PLUS  # as the constraints pin it
    if compat.HAS_COMMON_COMPAT_SDK:
        from airflow.providers.common.compat import sdk

        assert compat.BaseHook is sdk.BaseHook and compat.conf is sdk.conf
        assert compat.AirflowFailException is sdk.AirflowFailException
    # The classes Airflow's task runner and sensor loop catch, whichever module gave them.
    assert issubclass(compat.AirflowFailException, compat.AirflowException)
    assert issubclass(compat.AirflowSensorTimeout, compat.AirflowException)
    assert compat.conf.getboolean("operators", "default_deferrable", fallback=False) in (True, False)


def test_the_private_names_hold_on_this_line_inside_a_dag_test_task():
    """Inside a ``dag.test()`` task, :func:`compat.in_process_secrets_masker` finds Airflow 3.0's shared
    masker through its private names (None on 3.1+, which do not need them), and :func:`compat.mask_secret`
    hides the secret in what the task logs, on every line."""
    run = run_dag("vi_compat_masking")
    assert run.state == "success"
    assert xcom(run, "register") == {"found": compat.DAGS_TEST_PRINTS_DEBUG, "logged": "the secret is ***"}


def test_filter_debug_logs_drops_debug_lines_on_3_0_and_leaves_structlog_alone_after(capsys):
    saved = structlog.get_config()
    try:
        compat.filter_debug_logs()
        if not compat.DAGS_TEST_PRINTS_DEBUG:
            assert structlog.get_config() == saved
            return
        logger = structlog.get_logger("videoinfer.compat-test")
        logger.debug("a debug line")
        logger.info("an info line")
        out = capsys.readouterr().out
        assert "an info line" in out and "a debug line" not in out
    finally:
        structlog.configure(**saved)


async def test_a_trigger_reads_its_connection_without_blocking(videoinfer_conn):
    conn = await compat.aget_connection("videoinfer_default")
    assert conn.conn_type == "videoinfer" and conn.password

"""The system tests' deployment: one per test session, shared by every scenario."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deployment import TIMINGS, Deployment

#: One local server per scenario that disturbs its server (faults, a kill, an outage), so that
#: scenarios running at the same time never see each other's disturbances.
SERVERS = ("default", "faults", "restart", "outage", "transient", "pacing")
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the system tests after the others, so that their deployment (stopped at the session's
    end) never runs beside the other tests. tests/conftest.py then still moves its suite-wide
    leak check after them."""
    system = [item for item in items if item.path.is_relative_to(HERE)]
    items[:] = [item for item in items if item not in system] + system


def run_deployment(*server_names: str, **options: Any) -> Iterator[Deployment]:
    """Start a deployment, yield it, stop it and check that none of its processes is left."""
    running = Deployment(server_names, env={"VIDEOINFER_POLL_INTERVAL": "3"}, **options)
    try:
        running.start()
        yield running
    finally:
        left = running.stop()
    assert not left, f"processes of the deployment still running after it stopped: {left}"


# Module scope: each deployment is stopped before the next module's starts, so two never run at once.
@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """Postgres, Airflow's api-server, scheduler (LocalExecutor), dag-processor and triggerer, and the local servers."""
    yield from run_deployment(*SERVERS)


@pytest.fixture(scope="module")
def celery_deployment() -> Iterator[Deployment]:
    """The CeleryExecutor: Redis, two Celery workers and two triggerers sharing no disk, S3 (moto), local servers."""
    yield from run_deployment("default", "faults", executor="celery", triggerers=2, workers=2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the deployment's process logs (and the scenario's task logs) to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    running = next((value for value in funcargs.values() if isinstance(value, Deployment)), None)
    if report.failed and running is not None:
        dag_ids = tuple(getattr(item.function, "dag_ids", ()))
        report.sections.append(("deployment logs", running.log_report(dag_ids)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show how long the deployment and each scenario took."""
    if TIMINGS:
        terminalreporter.section("system test timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name:<20} {seconds:7.1f} s")

"""The task store's writes fail in the metadata database itself, on every Airflow line.

The Task SDK of Airflow 3.0 to 3.2 catches a failed ``Variable.set`` and ``Variable.delete`` and only
logs it, so a store that raises (a stand-in) tells nothing about those lines. Here the database refuses
the write: a SQLite trigger aborts every insert and update of the table the store writes (``variable``
below 3.3, ``task_state_store`` from 3.3), under a real ``dag.test()`` run of a submit task with
``retries=2`` against the local server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState
from helpers import console, run_dag, server_jobs, states

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook

pytestmark = pytest.mark.usefixtures("airflow_db")

#: The tables the task store writes: Variables below Airflow 3.3, ``task_state_store`` from 3.3.
STORE_TABLES = ("variable", "task_state_store")


def refuse_writes(db: sqlite3.Connection, table: str, allowed: int = 0) -> None:
    """Triggers that let the first ``allowed`` inserts and updates of ``table`` land and abort every later
    one, whatever the value (Variables may be encrypted) and however Airflow writes it (update, upsert,
    delete then insert)."""
    db.execute(f"CREATE TABLE IF NOT EXISTS videoinfer_test_writes_{table} (n INTEGER)")
    for event in ("INSERT", "UPDATE"):
        count = f"(SELECT COUNT(*) FROM videoinfer_test_writes_{table})"
        db.execute(
            f"CREATE TRIGGER videoinfer_test_refuse_{event.lower()}_{table} BEFORE {event} ON {table} "
            f"WHEN {count} >= {allowed} BEGIN SELECT RAISE(ABORT, 'read-only: the test refuses this write'); END;"
        )
        db.execute(
            f"CREATE TRIGGER videoinfer_test_count_{event.lower()}_{table} AFTER {event} ON {table} "
            f"BEGIN INSERT INTO videoinfer_test_writes_{table} VALUES (1); END;"
        )


@pytest.fixture
def database(airflow_db: Path) -> Iterator[sqlite3.Connection]:
    """The tests' Airflow metadata database (SQLite); every trigger a test adds is dropped after it."""
    db = sqlite3.connect(airflow_db / "airflow.db", isolation_level=None)
    before = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    try:
        yield db
    finally:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            if name not in before:
                db.execute(f"DROP TRIGGER {name}")
        for table in STORE_TABLES:
            db.execute(f"DROP TABLE IF EXISTS videoinfer_test_writes_{table}")
        db.close()


def tables(db: sqlite3.Connection) -> list[str]:
    """The task store's tables this Airflow line has."""
    found = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [table for table in STORE_TABLES if table in found]


@pytest.fixture
def input_url(videoinfer_conn, sample_video) -> str:
    return VideoInferHook().upload_video(sample_video)


def test_a_store_that_cannot_be_written_submits_nothing(videoinfer_conn, input_url, database, capfd):
    for table in tables(database):
        refuse_writes(database, table)
    before = len(server_jobs(videoinfer_conn))

    run = run_dag("vi_test_store_writes", input_url=input_url)

    printed = console(*capfd.readouterr())
    assert len(server_jobs(videoinfer_conn)) == before, f"a job was submitted; the run printed: {printed[-3000:]}"
    assert run.state == DagRunState.FAILED, states(run)
    assert states(run)["submit"] == TaskInstanceState.FAILED
    assert "cannot keep the id of its job for its next try" in printed, printed[-3000:]
    assert "so no job is submitted" in printed


def test_a_store_write_that_fails_after_the_submission_names_the_job(videoinfer_conn, input_url, database, capfd):
    """The entry before the submission is written; the one with the job's id is refused: the task fails
    naming that job, and no try submits another."""
    for table in tables(database):
        refuse_writes(database, table, allowed=1)
    before = {job["job_id"] for job in server_jobs(videoinfer_conn)}

    run = run_dag("vi_test_store_writes", input_url=input_url)

    printed = console(*capfd.readouterr())
    created = [job["job_id"] for job in server_jobs(videoinfer_conn) if job["job_id"] not in before]
    assert len(created) == 1, f"{len(created)} jobs for one task; the run printed: {printed[-3000:]}"
    assert run.state == DagRunState.FAILED, states(run)
    assert f"Job {created[0]} was submitted, but its id could not be kept" in printed, printed[-3000:]


def test_the_database_really_refuses_the_writes(database):
    """The triggers refuse what they should (else the tests above would prove nothing)."""
    for table in tables(database):
        refuse_writes(database, table)
        with pytest.raises(sqlite3.IntegrityError, match="read-only"):
            database.execute(f"INSERT INTO {table} DEFAULT VALUES")

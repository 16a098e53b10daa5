"""Where a task keeps what its next try must find: the submitted job, a sensor's outage under way.

On Airflow 3.3+ that is the task's own ``task_state_store``. Before 3.3 it is an Airflow Variable
per task instance and key (:class:`VariableTaskStore`), deleted when the task ends. Both live in
the metadata database, so they survive a killed worker and are readable by the next try wherever
it runs. Operators reach either through :func:`task_store` and :func:`kept_until_the_task_ends`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_videoinfer.compat import AirflowFailException, AirflowRescheduleException

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Prefix of the Variables that stand in for task_state_store before Airflow 3.3.
VARIABLE_PREFIX = "videoinfer_task_state"


class TaskStore(Protocol):
    """What a try of a task keeps for the next: JSON values by key, scoped to the task instance."""

    #: Whether Airflow drops the values by itself (task_state_store's retention); else the task must.
    expires: bool
    #: What the store is, for messages.
    name: str

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


class _NativeTaskStore:
    """Airflow 3.3+'s ``task_state_store``, whose values expire by themselves."""

    expires = True
    name = "task_state_store"

    def __init__(self, accessor: Any) -> None:
        self._accessor = accessor

    def get(self, key: str) -> Any:
        return self._accessor.get(key)

    def set(self, key: str, value: Any) -> None:
        self._accessor.set(key, value)

    def delete(self, key: str) -> None:
        self._accessor.delete(key)


class VariableTaskStore:
    """One Airflow Variable per task instance and key, for Airflow before 3.3.

    The Variable's key is ``videoinfer_task_state_<key>_<digest>``, where the digest (of the DAG
    id, run id, task id and map index) keeps it short whatever those ids are; its value names the
    task instance in full, so a person reading the Variables list knows what it belongs to.

    :param ti: the running task instance (``context["ti"]``).
    """

    expires = False
    name = "Airflow Variables"

    def __init__(self, ti: Any) -> None:
        self._owner = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}
        digest = hashlib.sha256(json.dumps(self._owner, sort_keys=True).encode()).hexdigest()[:32]
        self._suffix = digest

    def variable_key(self, key: str) -> str:
        """The Variable that holds ``key`` for this task instance."""
        return f"{VARIABLE_PREFIX}_{key}_{self._suffix}"

    def get(self, key: str) -> Any:
        from airflow.sdk import Variable

        stored = Variable.get(self.variable_key(key), default=None, deserialize_json=True)
        if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in self._owner.items()):
            return None
        return stored.get("value")

    def set(self, key: str, value: Any) -> None:
        from airflow.sdk import Variable

        description = (
            f"Kept by airflow-provider-videoinfer for the next try of task {self._owner['task_id']} of DAG "
            f"{self._owner['dag_id']} (run {self._owner['run_id']}); deleted when the task ends."
        )
        Variable.set(self.variable_key(key), {**self._owner, "value": value}, description, serialize_json=True)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(self.variable_key(key))


def task_store(context: Context) -> TaskStore:
    """The store of the running task instance: its ``task_state_store`` where the context has one
    (Airflow 3.3+ always gives it), else Variables."""
    accessor = context.get("task_state_store")
    if accessor is not None:
        return _NativeTaskStore(accessor)
    return VariableTaskStore(context["ti"])


@contextmanager
def kept_until_the_task_ends(store: TaskStore, key: str, context: Context) -> Iterator[None]:
    """Delete ``key`` from a store whose values do not expire once the task has ended: when the block
    returns, or raises an error that ends the task (no retry left, or a fatal error).

    A deferral (``TaskDeferred``, a ``BaseException``) or a reschedule leaves the key for the rest of
    the task. A worker killed on the task's last try leaves it too: a small stale Variable.
    """
    try:
        yield
    except AirflowRescheduleException:
        raise
    except Exception as err:
        if not store.expires and (isinstance(err, AirflowFailException) or _last_try(context)):
            with suppress(Exception):  # the task's own error is the one to report
                store.delete(key)
        raise
    if not store.expires:
        store.delete(key)


def _last_try(context: Context) -> bool:
    ti = context["ti"]
    return ti.try_number > ti.max_tries

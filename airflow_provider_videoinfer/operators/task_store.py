"""Where a task keeps what its next try must find: the submitted job, a sensor's outage under way.

On Airflow 3.3+ that is the task's own ``task_state_store``. Before 3.3 it is an Airflow Variable
per task instance and key. Both live in the metadata database, so they survive a killed worker and
are readable by the next try wherever it runs. Operators reach either through :func:`task_store`
and :func:`kept_until_the_task_ends`.

Three rules hold on every Airflow line:

- **A write is verified**: each entry carries a random nonce and is read back; a write that did not
  land raises :class:`~airflow_provider_videoinfer.exceptions.VideoInferStoreError` (the Task SDK of
  Airflow 3.0 to 3.2 only logs a failed ``Variable.set``; reading back is how it is noticed).
- **A retry finds the entry, a clear does not**: each entry carries the task instance's
  ``max_tries``, which Airflow raises when a task instance is cleared and keeps across retries; an
  entry written under another ``max_tries`` is from before a clear and reads as absent
  (``task_state_store`` keeps its values through a clear).
- **An entry goes when the task ends**: success (once recorded, from the success callback), a
  fatal failure, a failure on the last try, a skip, a sensor timeout, a kill on the last try. The
  one exception is a submission whose answer was lost: its entry stays as the record that a job may
  exist, until a clear's next success.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_videoinfer.compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_videoinfer.exceptions import VideoInferStoreError, VideoInferSubmissionUnknownError
from videoinfer_contract.redaction import redact

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

#: Prefix of the Variables that stand in for task_state_store before Airflow 3.3.
VARIABLE_PREFIX = "videoinfer_task_state"
#: Errors that end a task whatever its retries: no next try will read the store.
_ENDS_THE_TASK = (AirflowFailException, AirflowSkipException, AirflowSensorTimeout)


class Backend(Protocol):
    """Raw JSON values by key for one task instance: ``task_state_store`` or Variables."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


class VariableBackend:
    """One Airflow Variable per task instance and key, for Airflow before 3.3.

    The Variable's key is ``videoinfer_task_state_<key>_<digest>``, where the digest (of the DAG
    id, run id, task id and map index) keeps it short whatever those ids are; its value names the
    task instance in full, so a person reading the Variables list knows what it belongs to (see
    "Left-over entries" in the docs' retries page to list and remove them).

    :param ti: the running task instance (``context["ti"]``).
    """

    def __init__(self, ti: Any) -> None:
        self._owner = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}
        self._suffix = hashlib.sha256(json.dumps(self._owner, sort_keys=True).encode()).hexdigest()[:32]

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


class TaskStore:
    """What a try of a task keeps for the next: JSON values by key, verified, scoped to the task
    instance and to its run of tries (a clear starts a new one).

    :param backend: ``task_state_store`` or :class:`VariableBackend`.
    :param max_tries: the task instance's ``max_tries`` (raised by a clear, kept by a retry).
    :param name: what the store is, for messages.
    """

    def __init__(self, backend: Backend, max_tries: int, name: str) -> None:
        self.backend = backend
        self.max_tries = max_tries
        self.name = name

    def get(self, key: str) -> Any:
        """The value kept under ``key`` by a try of this run of tries; None when there is none, or when it
        was written before the task instance was cleared."""
        entry = self.backend.get(key)
        if not (isinstance(entry, dict) and "nonce" in entry):
            return entry  # written by an earlier release of the provider: taken as current
        if entry.get("max_tries") != self.max_tries:
            return None
        return entry.get("value")

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` and read it back; raise :class:`VideoInferStoreError` when it did
        not land (whatever the backend raised, or nothing at all where it only logs a failure)."""
        nonce = uuid.uuid4().hex
        try:
            self.backend.set(key, {"max_tries": self.max_tries, "nonce": nonce, "value": value})
            kept = self.backend.get(key)
        except Exception as err:
            raise VideoInferStoreError(f"{self.name}: {err.__class__.__name__}: {redact(str(err))}") from None
        if not (isinstance(kept, dict) and kept.get("nonce") == nonce):
            raise VideoInferStoreError(f"{self.name}: the value written under {key!r} could not be read back")

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self.backend.delete(key)


def task_store(context: Context) -> TaskStore:
    """The store of the running task instance: its ``task_state_store`` where the context has one
    (Airflow 3.3+ always gives it), else Variables."""
    ti = context["ti"]
    max_tries = int(getattr(ti, "max_tries", 0) or 0)
    accessor = context.get("task_state_store")
    if accessor is not None:
        return TaskStore(accessor, max_tries, "task_state_store")
    return TaskStore(VariableBackend(ti), max_tries, "Airflow Variables")


@contextmanager
def kept_until_the_task_ends(store: TaskStore, key: str, context: Context) -> Iterator[None]:
    """Delete ``key`` when the block raises an error that ends the task: a fatal error, a skip, a sensor
    timeout, or any error on the last try.

    A deferral (``TaskDeferred``, a ``BaseException``) or a reschedule leaves the key for the rest of
    the task, and so does a return: the key goes once the success is recorded (:func:`forget_on_success`),
    so that a worker lost between the two still has its entry for the retry.
    """
    try:
        yield
    except AirflowRescheduleException:
        raise
    except Exception as err:
        # A lost submission's entry stays: it records that a job may exist, should the task run again
        # without a clear (a clear ignores it; the next success removes it).
        if isinstance(err, VideoInferSubmissionUnknownError):
            raise
        if isinstance(err, _ENDS_THE_TASK) or last_try(context):
            forget(store, key)
        raise


def forget(store: TaskStore, key: str) -> None:
    """Delete ``key``, whatever the backend says: the task's own outcome is the one to report."""
    with suppress(Exception):
        store.delete(key)


def forget_on_success(task: BaseOperator, key: str) -> None:
    """Have ``task`` delete ``key`` from its store once Airflow has recorded its success.

    Airflow runs ``on_success_callback`` after the task's success is sent; the user's own callbacks are
    kept and run first.

    :param task: the operator or sensor.
    :param key: its store key.
    """

    def forget_key(context: Context) -> None:
        forget(task_store(context), key)

    current: Any = task.on_success_callback
    callbacks: list[Callable[..., Any]] = (
        [] if current is None else list(current) if isinstance(current, (list, tuple)) else [current]
    )
    task.on_success_callback = [*callbacks, forget_key]


def last_try(context: Context) -> bool:
    """Whether the running try is the task instance's last (no retry follows a failure)."""
    ti = context["ti"]
    return bool(ti.try_number > ti.max_tries)

"""The sensor in poke and reschedule mode polls when the wait's step says, through Airflow's own sensor loop.

The local server answers 503 with a ``Retry-After`` (state unknown: the step waits what the
service asked), then "running" (the step waits one poll interval); Airflow's
``BaseSensorOperator.execute`` sleeps or reschedules by the delay the sensor handed it.
"""

from __future__ import annotations

import datetime
import re
import time

import pytest
from helpers import API_KEY, clear_faults, connection_json, inject_fault

from airflow_provider_videoinfer.compat import AirflowRescheduleException, AirflowSensorTimeout
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.task_store import task_store
from airflow_provider_videoinfer.sensors.videoinfer import OUTAGE_KEY, VideoInferJobSensor

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


class Store:
    """What a task's ``task_state_store`` offers the sensor: get, set, delete."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.values.get(key)

    def set(self, key: str, value: object) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class FirstPoke:
    """A task instance whose sensor is at its first reschedule (Airflow counts the timeout from now)."""

    def get_first_reschedule_date(self, context: object) -> None:
        return None


@pytest.fixture(scope="module")
def long_server(tmp_path_factory):
    """A local server whose jobs run for ten minutes: "running" for the whole test, however slow the machine."""
    from videoinfer_server.launch import run_server

    with run_server(tmp_path_factory.mktemp("long"), API_KEY, enable_faults=True, min_job_seconds=600) as running:
        yield running


@pytest.fixture
def running_job(long_server, sample_video, monkeypatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", connection_json(long_server.base_url))
    clear_faults(long_server)
    hook = VideoInferHook()
    return hook.submit_job(hook.upload_video(sample_video), 5, [MOTION])


def _sensor(job_id: str, mode: str, **kwargs: object) -> VideoInferJobSensor:
    return VideoInferJobSensor(task_id="wait", job_id=job_id, deferrable=False, mode=mode, **kwargs)


def _next_polls(text: str) -> list[float]:
    return [float(seconds) for seconds in re.findall(r"next poll in ([\d.]+) s, at \d\d:\d\d:\d\d UTC", text)]


def test_a_poke_hands_the_steps_delay_to_airflow(long_server, running_job, capfd):
    sensor = _sensor(running_job, "poke", poll_interval=10)
    inject_fault(long_server, "status", "status", count=1, status_code=503, retry_after=17)
    assert sensor.poke({}) is False
    assert sensor.poke_interval == 17.0  # what the service asked, longer than the poll interval
    assert sensor.poke({}) is False
    assert sensor.poke_interval == 10.0  # running: one poll interval
    out, err = capfd.readouterr()
    assert _next_polls(out + err) == [17.0, 10.0]
    assert "the service answers again after" in out + err


def test_a_rescheduled_sensor_is_rescheduled_when_the_step_says_and_remembers_the_outage(
    long_server, running_job, capfd
):
    sensor = _sensor(running_job, "reschedule", poll_interval=10)
    context = {"ti": FirstPoke(), "task_state_store": Store()}
    inject_fault(long_server, "status", "status", count=2, status_code=503, retry_after=27)
    for failed_polls in (1, 2):
        before = datetime.datetime.now(datetime.UTC)
        with pytest.raises(AirflowRescheduleException) as rescheduled:
            sensor.execute(context)  # Airflow's sensor loop: one poke, then a reschedule
        after = datetime.datetime.now(datetime.UTC)
        seconds = datetime.timedelta(seconds=27)  # above the backoff of one and two poll intervals
        assert before + seconds <= rescheduled.value.reschedule_date <= after + seconds
        saved = task_store(context).get(OUTAGE_KEY)  # type: ignore[arg-type]
        assert isinstance(saved, dict) and saved["failed"] == failed_polls
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute(context)
    assert rescheduled.value.reschedule_date >= after + datetime.timedelta(seconds=10)
    assert task_store(context).get(OUTAGE_KEY) is None  # type: ignore[arg-type]  # the outage ended
    out, err = capfd.readouterr()
    assert "(2 failed polls in a row)" in out + err
    assert "the service answers again after" in out + err and "(2 failed polls)." in out + err
    assert _next_polls(out + err) == [27.0, 27.0, 10.0]


class Rescheduled:
    """A task instance whose sensor first poked two hours ago, the date given as Airflow 3.0 may give it
    (ISO text) or as later versions do (a datetime)."""

    def __init__(self, as_text: bool) -> None:
        first = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
        self.first = first.isoformat() if as_text else first

    def get_first_reschedule_date(self, context: object) -> object:
        return self.first


@pytest.mark.parametrize("as_text", [True, False], ids=["iso-text", "datetime"])
def test_a_rescheduled_sensor_counts_its_timeout_from_its_first_poke(running_job, as_text):
    sensor = _sensor(running_job, "reschedule", poll_interval=10, timeout=3600)
    context = {"ti": Rescheduled(as_text), "task_state_store": Store()}
    with pytest.raises(AirflowSensorTimeout, match=r"was still running after 2:00:0\d, at the deadline"):
        sensor.execute(context)


def test_a_poking_sensor_times_out_at_its_deadline_naming_what_was_known(long_server, running_job):
    sensor = _sensor(running_job, "poke", poll_interval=0.2, timeout=1.0)
    inject_fault(long_server, "status", "status", count=1000, status_code=503)
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout, match="its state was unknown") as err:
        sensor.execute({})
    assert f"Video inference job {running_job} had not been seen to finish" in str(err.value)
    assert "HTTP 503" in str(err.value)
    assert time.monotonic() - started < 30  # it stopped at its deadline, not at Airflow's next check


def test_airflows_own_exponential_backoff_is_refused():
    with pytest.raises(VideoInferValidationError, match="drop exponential_backoff=True"):
        _sensor("job-1", "poke", exponential_backoff=True)


class _Slept(Exception):
    """Ends a poking sensor's loop after the sleeps a test wants to see."""


def test_airflows_poke_loop_sleeps_the_delay_the_wait_step_chose(long_server, running_job, monkeypatch):
    """The sensor hands each delay to Airflow's own poke loop through ``poke_interval``: this pins that
    reliance on every Airflow line (the loop must sleep what the step chose, not the interval given)."""
    import inspect

    from airflow.sdk import BaseSensorOperator

    loop = inspect.getmodule(BaseSensorOperator)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise _Slept

    monkeypatch.setattr(loop.time, "sleep", sleep)  # type: ignore[union-attr]
    sensor = _sensor(running_job, "poke", poll_interval=10)
    inject_fault(long_server, "status", "status", count=1, status_code=503, retry_after=17)
    inject_fault(long_server, "status", "status", count=1, status_code=429, retry_after=27)
    with pytest.raises(_Slept):
        sensor.execute({"ti": FirstPoke(), "task_state_store": Store()})
    assert slept == [17.0, 27.0, 10.0]  # two Retry-Afters above the backoff, then the job running

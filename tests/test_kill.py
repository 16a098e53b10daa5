"""A killed task says that its job goes on running: the service has no endpoint to cancel a job."""

from __future__ import annotations

import concurrent.futures
import threading

from helpers import server_jobs

from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from airflow_provider_videoinfer.sensors.videoinfer import VideoInferJobSensor

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


class TaskInstance:
    """The part of a task instance the submit operator uses: XCom pushes, observable from the test; its tries."""

    try_number = 1
    max_tries = 0

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}
        self.job_pushed = threading.Event()

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value
        if key == "job_id":
            self.job_pushed.set()


class TaskStateStore(dict):
    """Airflow 3.3's ``task_state_store`` as the operator uses it (a try keeps its job id for the next)."""

    def set(self, key: str, value: object) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


def test_a_submit_killed_while_it_waits_names_the_job_left_running(slow_conn, sample_video, capfd):
    input_url = VideoInferHook().upload_video(sample_video)
    submit = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=input_url,
        infer_fps=5,
        models=[MOTION],
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.2,
        wait_timeout=120,
    )
    ti = TaskInstance()
    jobs_before = len(server_jobs(slow_conn))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        context = {"ti": ti, "task_state_store": TaskStateStore()}
        waiting = pool.submit(submit.execute, context)  # type: ignore[arg-type]
        if not ti.job_pushed.wait(timeout=60):
            waiting.result(timeout=1)  # the operator's own error, if it raised one
            raise AssertionError("the operator never pushed its job id")
        submit.on_kill()  # what Airflow calls when the task is killed while it waits
        waiting.result(timeout=120)  # the job itself runs on and finishes
    job_id = ti.pushed["job_id"]
    out, err = capfd.readouterr()
    killed = [line for line in (out + err).splitlines() if "was killed" in line]
    assert len(killed) == 1, killed
    assert f"job {job_id} goes on running on the service" in killed[0]
    assert "no endpoint to cancel a job" in killed[0] and f"VideoInferJobSensor(job_id={job_id!r})" in killed[0]
    assert len(server_jobs(slow_conn)) == jobs_before + 1  # on_kill submitted nothing


def test_a_submit_killed_before_any_job_id_says_a_job_may_run(capfd):
    submit = VideoInferSubmitJobOperator(
        task_id="submit", input_url="https://example.com/v.mp4", infer_fps=5, models=[MOTION]
    )
    submit.on_kill()
    out, err = capfd.readouterr()
    assert "killed before the service returned a job id" in out + err


def test_a_killed_sensor_names_the_rendered_job_it_waited_for(capfd):
    sensor = VideoInferJobSensor(task_id="wait", job_id="{{ params.job }}", deferrable=False)
    sensor.render_template_fields({"params": {"job": "job-3f2c"}})  # type: ignore[arg-type]
    sensor.on_kill()
    out, err = capfd.readouterr()
    assert "job job-3f2c goes on running on the service" in out + err
    assert "a retry of the sensor waits for it again" in out + err

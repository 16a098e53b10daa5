"""The two promises under the faults that broke them: never a second paid job, only a definite answer ends a wait.

Each test runs the submit operator against the real local server over HTTP; the faults (an answer lost
after the job was created, CDN statuses, 429s) are injected in the server. A try is an ``execute`` with
the task instance's store; a retry keeps the store and ``max_tries``, a clear raises ``max_tries`` (as
Airflow's ``clear_task_instances`` does) and keeps the store (as ``task_state_store`` does on 3.3).
"""

from __future__ import annotations

import pytest
from helpers import CORRUPT_MP4, FakeTaskStateStore, clear_faults, inject_fault, request_times, server_jobs

from airflow_provider_videoinfer.exceptions import (
    VideoInferConnectionError,
    VideoInferJobFailedFatalError,
    VideoInferServerError,
    VideoInferSubmissionUnknownError,
    VideoInferTransientError,
)
from airflow_provider_videoinfer.hooks.retry import created_nothing
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}


class TaskInstance:
    """A task instance across tries: ``retry()`` is its next try, ``clear()`` a clear by a user."""

    def __init__(self, retries: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "d", "r", "submit", -1
        self.try_number, self.max_tries = 1, retries
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value

    def retry(self) -> None:
        self.try_number += 1

    def clear(self, retries: int) -> None:
        self.max_tries = self.try_number + retries
        self.try_number += 1


class Task:
    """One task instance of a submit operator and its store, tried again and cleared at will."""

    def __init__(self, input_url: str, retries: int = 2, **kwargs: object) -> None:
        self.operator = VideoInferSubmitJobOperator(
            task_id="submit", input_url=input_url, infer_fps=5, models=[MOTION], retries=retries, **kwargs
        )
        self.ti = TaskInstance(retries)
        self.store = FakeTaskStateStore()

    def execute(self) -> str:
        return self.operator.execute({"ti": self.ti, "task_state_store": self.store})  # type: ignore[arg-type]


@pytest.fixture
def input_url(videoinfer_conn, sample_video) -> str:
    return VideoInferHook().upload_video(sample_video)


def test_a_submission_whose_answer_is_lost_is_never_sent_again_by_a_retry(videoinfer_conn, input_url):
    task = Task(input_url)
    before = len(server_jobs(videoinfer_conn))
    inject_fault(videoinfer_conn, "submit", "lose_answer")
    with pytest.raises(VideoInferSubmissionUnknownError) as lost:
        task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 1  # the service created the job; its answer was lost
    message = str(lost.value)
    assert "got no answer" in message and "dropped the connection" in message
    assert "clear this task" in message and "resubmit_unknown_outcome=True" in message
    assert "errors.rst#a-submission-got-no-answer" in message
    # Were the task retried anyway (a worker killed after the submission, say), no try submits again.
    task.ti.retry()
    with pytest.raises(VideoInferSubmissionUnknownError, match="got no answer"):
        task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 1


def test_a_clear_after_a_lost_answer_submits_anew(videoinfer_conn, input_url):
    task = Task(input_url)
    inject_fault(videoinfer_conn, "submit", "lose_answer")
    with pytest.raises(VideoInferSubmissionUnknownError):
        task.execute()
    before = len(server_jobs(videoinfer_conn))
    task.ti.clear(retries=2)
    job_id = task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 1 and task.ti.pushed["job_id"] == job_id


def test_resubmit_unknown_outcome_lets_a_retry_pay_for_a_new_job(videoinfer_conn, input_url, capfd):
    task = Task(input_url, resubmit_unknown_outcome=True)
    inject_fault(videoinfer_conn, "submit", "lose_answer")
    with pytest.raises(VideoInferSubmissionUnknownError):
        task.execute()
    before = len(server_jobs(videoinfer_conn))
    task.ti.retry()
    task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 1
    out, err = capfd.readouterr()
    assert "submitting a new one (resubmit_unknown_outcome=True)" in out + err


def test_a_submission_the_service_refused_is_sent_again_by_the_next_try(videoinfer_conn, input_url):
    """503 proves the service did no work: once the connection's retries are spent, the next try submits."""
    task = Task(input_url)
    before = len(server_jobs(videoinfer_conn))
    inject_fault(videoinfer_conn, "submit", "status", count=100, status_code=503, retry_after=0)
    with pytest.raises(VideoInferServerError, match="HTTP 503"):
        task.execute()
    clear_faults(videoinfer_conn)
    assert len(server_jobs(videoinfer_conn)) == before
    task.ti.retry()
    task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 1


@pytest.mark.parametrize(
    ("error", "nothing"),
    [
        (VideoInferConnectionError("refused", request_sent=False), True),  # refused, DNS, TLS handshake
        (VideoInferServerError("HTTP 503", http_status=503), True),
        (VideoInferServerError("HTTP 429", http_status=429), True),
        (VideoInferConnectionError("read timeout", request_sent=True), False),
        (VideoInferServerError("HTTP 502", http_status=502), False),
        (VideoInferServerError("HTTP 520", http_status=520), False),
        (VideoInferTransientError("not JSON", http_status=200), False),
    ],
)
def test_which_failed_submissions_surely_created_no_job(error, nothing):
    assert created_nothing(error) is nothing


def test_a_clear_after_a_failed_job_submits_anew(videoinfer_conn, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(CORRUPT_MP4)
    task = Task(VideoInferHook().upload_video(corrupt), wait_for_completion=True, deferrable=False, poll_interval=0.2)
    before = len(server_jobs(videoinfer_conn))
    with pytest.raises(VideoInferJobFailedFatalError, match="clear the task"):
        task.execute()
    task.ti.clear(retries=2)
    with pytest.raises(VideoInferJobFailedFatalError):
        task.execute()
    assert len(server_jobs(videoinfer_conn)) == before + 2, "the clear did not submit a new job"


def test_a_clear_submits_anew_although_the_store_kept_the_job_and_a_retry_reconnects(videoinfer_conn, input_url):
    """task_state_store keeps its values through a clear (3.3): the entry's max_tries tells a retry from a clear."""
    task = Task(input_url, wait_for_completion=True, deferrable=False, poll_interval=0.2)
    before = len(server_jobs(videoinfer_conn))
    task.execute()  # its entry stays until Airflow records the success (then the callback removes it)
    first = task.ti.pushed["job_id"]
    task.ti.retry()
    task.execute()
    assert task.ti.pushed["job_id"] == first and len(server_jobs(videoinfer_conn)) == before + 1  # reconnected
    task.ti.clear(retries=2)
    task.execute()
    assert task.ti.pushed["job_id"] != first
    assert len(server_jobs(videoinfer_conn)) == before + 2, "the clear reconnected to the old job"


@pytest.mark.parametrize("status", [520, 522, 524, 529, 408])
def test_cdn_and_timeout_statuses_during_a_wait_are_ridden_out(videoinfer_conn, input_url, status):
    task = Task(input_url, wait_for_completion=True, deferrable=False, poll_interval=0.2)
    before = len(server_jobs(videoinfer_conn))
    inject_fault(videoinfer_conn, "status", "status", count=3, status_code=status)
    assert task.execute().startswith(videoinfer_conn.base_url)
    assert len(server_jobs(videoinfer_conn)) == before + 1


def test_429s_are_polled_again_no_sooner_than_the_poll_interval(videoinfer_conn, input_url):
    poll_interval = 0.5
    task = Task(input_url, wait_for_completion=True, deferrable=False, poll_interval=poll_interval)
    polls_before = len(request_times(videoinfer_conn, "status"))
    inject_fault(videoinfer_conn, "status", "status", count=3, status_code=429)
    inject_fault(videoinfer_conn, "status", "status", count=1, status_code=429, retry_after=0)
    task.execute()
    times = request_times(videoinfer_conn, "status")[polls_before:]
    assert len(times) >= 5  # four 429s, then the poll that saw the job done
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= poll_interval * 0.95, gaps  # the server's clock; a little slack for its timestamps


def test_the_in_worker_wait_polls_no_sooner_than_the_poll_interval_after_submitting(videoinfer_conn, input_url):
    poll_interval = 0.5
    task = Task(input_url, wait_for_completion=True, deferrable=False, poll_interval=poll_interval)
    polls_before = len(request_times(videoinfer_conn, "status"))
    task.execute()
    submitted = request_times(videoinfer_conn, "submit")[-1]
    first_poll = request_times(videoinfer_conn, "status")[polls_before]
    assert first_poll - submitted >= poll_interval * 0.95


def test_a_successful_run_leaves_no_entry_behind(airflow_db, videoinfer_conn, sample_video):
    """Below 3.3 the entries are Variables, which nothing else removes: the success callback does, once the
    success is recorded. (3.3's task_state_store drops its values by itself.)"""
    from airflow.utils.state import DagRunState
    from helpers import run_dag, states
    from packaging.version import Version

    from airflow_provider_videoinfer.compat import AIRFLOW_VERSION

    if Version("3.3") <= AIRFLOW_VERSION:
        pytest.skip("Airflow 3.3+ keeps the entries in task_state_store, which expires them")
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    run = run_dag("vi_test_submit_and_wait_deferred", video=str(sample_video))
    assert run.state == DagRunState.SUCCESS, states(run)
    with create_session() as session:
        left = [
            variable.key
            for variable in session.query(VariableModel).filter(VariableModel.key.like("videoinfer_task_state_%"))
            if run.run_id in (variable.val or "")
        ]
    assert left == [], left

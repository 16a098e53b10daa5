"""Operators that upload a video and submit (and optionally wait for) an inference job."""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_videoinfer import contract, storage
from airflow_provider_videoinfer.compat import conf
from airflow_provider_videoinfer.exceptions import (
    VideoInferError,
    VideoInferJobFailedError,
    VideoInferNotFoundError,
    VideoInferStoreError,
    VideoInferSubmissionUnknownError,
    VideoInferTransientError,
    more_at,
)
from airflow_provider_videoinfer.hooks import responses
from airflow_provider_videoinfer.hooks.retry import created_nothing
from airflow_provider_videoinfer.hooks.settings import check_task_wait, effective_poll_interval
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook, mask_in_logs
from airflow_provider_videoinfer.hooks.waiting import is_transient
from airflow_provider_videoinfer.operators import cost
from airflow_provider_videoinfer.operators.base import (
    VideoInferBaseOperator,
    defer_until_done,
    log_job_left_running,
    validate_if_known,
    with_hint,
)
from airflow_provider_videoinfer.operators.resubmit import ResubmitPolicy
from airflow_provider_videoinfer.operators.task_store import (
    TaskStore,
    forget,
    forget_on_success,
    kept_until_the_task_ends,
    last_try,
    task_store,
)
from airflow_provider_videoinfer.triggers.events import JobEvent

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["VideoInferSubmitJobOperator", "VideoInferUploadOperator"]

#: Task store key under which the submitted job survives a retry of the task. Renaming it
#: breaks reconnection for tasks already in flight.
JOB_STATE_KEY = "videoinfer_job"
DEFAULT_WAIT_TIMEOUT = 7 * 24 * 3600.0
#: How long the presigned URL of a storage URI input stays valid by default: the service fetches the
#: video when the job leaves its queue, so a day leaves room for a long queue while the credential
#: expires well before S3's seven-day maximum.
DEFAULT_PRESIGNED_URL_LIFETIME = 24 * 3600
INPUT_URL_HINT = (
    "Pass a storage URI (s3://conn_id@bucket/key) for a video in object storage, or upload local files with "
    "VideoInferUploadOperator first and pass its return value."
)


class VideoInferUploadOperator(VideoInferBaseOperator):
    """Upload one video, streamed, and return its ``input_url`` (the XCom return value).

    The source is checked (it exists, is a non-empty file, has a supported extension) before
    any network call. Every byte goes through the worker: for a video in object storage whose
    file system can sign URLs (S3, GCS, Azure Blob), pass its URI straight to
    :class:`VideoInferSubmitJobOperator` instead, which has the service read it from the bucket.

    :param video: a local path, or any ``ObjectStoragePath``/fsspec URI such as
        ``s3://bucket/clip.mp4`` (templated).
    :param file_name: the name to upload it as (templated); default: the source's file name.
        Its extension must be mp4, avi, mkv or webm, in any case.
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    """

    template_fields: Sequence[str] = (*VideoInferBaseOperator.template_fields, "video", "file_name")
    ui_color = "#e4f0e8"

    def __init__(
        self,
        *,
        video: Any,
        file_name: str | None = None,
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        self.video = video
        self.file_name = file_name
        name = file_name if file_name is not None else video
        if isinstance(name, (str, os.PathLike)):
            validate_if_known(str(name), storage.video_file_name)

    def execute(self, context: Context) -> str:
        """Upload the video; return the signed URL to pass as ``input_url``."""
        self._uploaded_url: str | None = self.hook.upload_video(self.video, self.file_name)
        return self._uploaded_url

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the video read and the service's copy (see :mod:`airflow_provider_videoinfer.lineage`)."""
        from airflow_provider_videoinfer.lineage import upload_lineage

        return upload_lineage(self.video, getattr(self, "_uploaded_url", None))


def validate_job_input(value: Any) -> Any:
    """Check a job's ``input_url`` without any call: an http(s) URL, or a storage URI that names a remote object.

    :param value: what the user gave as ``input_url``.
    """
    if storage.is_storage_uri(value):
        storage.check_presignable(value)
        return value
    return contract.validate_input_url(value)


class VideoInferSubmitJobOperator(VideoInferBaseOperator):
    """Submit a video inference job; return its id, or its output URL when waiting for it.

    Inputs are validated before any network call. The job id is pushed to XCom (key ``job_id``)
    and kept where the next try of the task finds it (its ``task_state_store`` on Airflow 3.3+, an
    Airflow Variable before: :mod:`~airflow_provider_videoinfer.operators.task_store`, every write
    read back) before any waiting, so a retry of the task reconnects to the same job when it is
    still running or done, and submits a new one only when the service does not know it (404), when
    the inputs changed, or when it failed with a status that ``resubmit_failed_jobs`` allows. When
    the saved job cannot be read (the service is down, 5xx, 429...), no job is submitted: a wait
    starts from that unknown state, and without a wait the try fails and a later retry reconnects. A
    clear of the task submits anew (its entry is from before the clear). A task with retries whose
    store cannot keep the job id submits nothing.

    A submission whose answer is lost after it was sent (a read timeout, a reset, a 5xx other than
    503, a body without a job id) may have created a job: the task fails at once, without its
    retries (:class:`~airflow_provider_videoinfer.exceptions.VideoInferSubmissionUnknownError`), and
    no try submits again unless ``resubmit_unknown_outcome`` says so or the task is cleared. A
    submission that surely never reached the service (connection refused, DNS, TLS handshake) or
    that it refused (429, 503, a 4xx) is sent again by the connection's retries as before.

    A job that fails with a status ``resubmit_failed_jobs`` does not allow (by default, any) ends
    the task without its retries (:class:`VideoInferJobFailedFatalError`): a retry could only read
    the same failure.

    A storage URI as ``input_url`` (``s3://conn_id@bucket/key``, ``gs://``, ``abfs://``, an
    ``ObjectStoragePath``) is not uploaded: the object is checked to exist, and the service gets a
    presigned GET URL of it, valid for ``presigned_url_lifetime``, so it reads the video straight
    from the bucket and no byte of it crosses the worker. That URL is a credential: it is sent to
    the service only, never logged nor kept in XCom; a retry recognises its job by the storage URI,
    and signs no new URL when it reconnects. The file system must be able to sign URLs (fsspec's
    ``sign()``: s3fs, gcsfs with service account credentials, adlfs with an account key); a URL
    signed with temporary credentials (an assumed role, a session token) stops working when they
    expire.

    :param input_url: the uploaded video's URL (``VideoInferUploadOperator``'s return value), any
        public http(s) video URL, or a storage URI (templated).
    :param infer_fps: frames per second to sample, an integer from 1 to 120 and at most the
        video's frame rate (templated).
    :param models: one or more models, as dicts with ``model_id``, ``model_version``,
        ``inference_type`` and optional ``inference_params``, or ``ModelSpec`` (templated).
    :param videoinfer_conn_id: the ``videoinfer`` connection (templated).
    :param wait_for_completion: also wait for the job and return its ``output_signed_url``
        (default False: return the job id at once).
    :param deferrable: when waiting, wait in the triggerer rather than in the worker. Default:
        Airflow's ``[operators] default_deferrable`` (False unless the deployment sets it), as in
        Airflow's own providers.
    :param poll_interval: seconds between polls when waiting; default: the connection's extra
        ``poll_interval`` (60 unless it says, the hosted rate limit; 1 suits the local server).
    :param wait_timeout: seconds to wait at most (default 7 days); the job keeps running after.
    :param resubmit_failed_jobs: whether a retry of the task pays for a new job after its job
        failed: ``False`` never (the default: a new job on the same input usually fails the same
        way, and the hosted service does not say which failures may pass), ``True`` always, or a
        set of failure statuses, e.g. ``{2}`` (the local server's internal error; see
        :mod:`airflow_provider_videoinfer.operators.resubmit`).
    :param presigned_url_lifetime: for a storage URI input, how long the presigned URL stays valid,
        in seconds or as a ``timedelta``: from one minute to seven days (S3's limit); default one
        day. The service must fetch the video within it, queue included.
    :param resubmit_unknown_outcome: whether a try submits a new job when an earlier try's submission
        got no answer (the job may exist, and be paid for): ``False`` (the default) fails the task
        instead, naming the time of the lost submission; clearing the task submits anew either way.
    :param max_frames: the most frames the job may bill (sampled frames × models); above it the task
        fails before submitting. Default: the connection's extra ``max_frames``, else no cap.
    :param max_video_seconds: the longest video the job may run on, in seconds; default: the
        connection's extra ``max_video_seconds``, else no cap.
    :param dry_run: read the video's facts and return them with the estimate (a dict), submitting nothing.
    :param video: where to read the video's facts from when ``input_url`` cannot be read (an upload's
        signed URL): the local path or storage URI the video was uploaded from (templated); default
        ``input_url``. See :mod:`~airflow_provider_videoinfer.operators.cost`.
    """

    template_fields: Sequence[str] = (
        *VideoInferBaseOperator.template_fields,
        "input_url",
        "infer_fps",
        "models",
        "video",
    )
    template_fields_renderers = {"models": "json"}
    ui_color = "#d6e4ff"

    def __init__(
        self,
        *,
        input_url: Any,
        infer_fps: Any,
        models: Any,
        videoinfer_conn_id: str = VideoInferHook.default_conn_name,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        resubmit_failed_jobs: bool | Collection[int] = False,
        presigned_url_lifetime: float | datetime.timedelta = DEFAULT_PRESIGNED_URL_LIFETIME,
        resubmit_unknown_outcome: bool = False,
        max_frames: int | None = None,
        max_video_seconds: float | None = None,
        dry_run: bool = False,
        video: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(videoinfer_conn_id=videoinfer_conn_id, **kwargs)
        forget_on_success(self, JOB_STATE_KEY)
        self.max_frames = cost.validate_max_frames(max_frames)
        self.max_video_seconds = cost.validate_max_video_seconds(max_video_seconds)
        # Kept under another name: dry_run() is a method of Airflow's BaseOperator.
        self.estimate_only = contract.validate_flag("dry_run", dry_run)
        self.video = video
        self.resubmit_failed_jobs = ResubmitPolicy.from_value(resubmit_failed_jobs)
        self.resubmit_unknown_outcome = contract.validate_flag("resubmit_unknown_outcome", resubmit_unknown_outcome)
        self.input_url = input_url
        self.infer_fps = infer_fps
        # Kept as given (execute() builds the request from them); only a one-shot iterator (a generator)
        # is read into a list first, so that checking it now does not use it up.
        self.models = list(models) if isinstance(models, Iterator) else models
        self.wait_for_completion = contract.validate_flag("wait_for_completion", wait_for_completion)
        self.deferrable = contract.validate_flag("deferrable", deferrable)
        self.poll_interval, self.wait_timeout = check_task_wait(poll_interval, wait_timeout, "wait_timeout")
        self.presigned_url_lifetime = contract.validate_presigned_url_lifetime(presigned_url_lifetime)
        validate_if_known(input_url, validate_job_input, INPUT_URL_HINT)
        validate_if_known(infer_fps, contract.validate_infer_fps)
        validate_if_known(self.models, contract.validate_models)
        self._job_id: str | None = None

    def execute(self, context: Context) -> str | dict[str, Any]:
        """Submit (or reconnect to) the job; return its id, or its output URL when waiting (a dry run: the
        facts and the estimate)."""
        with_hint(validate_job_input, self.input_url, INPUT_URL_HINT)
        review = cost.review_cost(self, context)  # facts, checks, estimate, caps: raises before paying
        if self.estimate_only:
            return review.to_dict()
        make_request: Callable[[], contract.JobRequest]
        if storage.is_storage_uri(self.input_url):
            source = storage.describe_location(self.input_url)
            fingerprint = contract.job_fingerprint(source, self.infer_fps, self.models)
            make_request = functools.partial(self._presigned_request, source)  # signed only when submitting
        else:
            request = contract.build_job_request(self.input_url, self.infer_fps, self.models)
            fingerprint, make_request = request.fingerprint, lambda: request
        store = task_store(context)
        self._store, self._last_try = store, last_try(context)
        with kept_until_the_task_ends(store, JOB_STATE_KEY, context):
            job_id, poll = self._submit_or_reconnect(store, fingerprint, make_request)
            self._job_id = job_id
            context["ti"].xcom_push(key="job_id", value=job_id)
            if not self.wait_for_completion:
                if isinstance(poll, VideoInferError):
                    raise self._unreadable(job_id, poll)
                return job_id
            if isinstance(poll, contract.JobState) and poll.status is contract.JobStatus.SUCCEEDED:
                return poll.output_url  # type: ignore[return-value]
            poll_interval = effective_poll_interval(self.poll_interval, self.hook.settings, self.wait_timeout)
            if self.deferrable:
                running = isinstance(poll, contract.JobState)
                defer_until_done(self, job_id, poll_interval, self.wait_timeout, running=running)
            try:
                done = self.hook.wait_for_job(job_id, poll_interval, self.wait_timeout, last_poll=poll)
            except VideoInferJobFailedError as err:
                raise self._job_failure(err) from None
            return done.output_url  # type: ignore[return-value]

    def _presigned_request(self, source: str) -> contract.JobRequest:
        """The job request of a storage URI input: checks the object, signs its URL (just before submitting),
        warns when temporary credentials cut its lifetime, and checks its first bytes through it."""
        url = storage.presigned_url(self.input_url, self.presigned_url_lifetime)
        mask_in_logs(url)
        lifetime = datetime.timedelta(seconds=self.presigned_url_lifetime)
        self.log.info(
            "The service reads %s from the bucket through a presigned URL valid for %s: nothing is uploaded.",
            source,
            lifetime,
        )
        if warning := storage.presigned_url_warning(self.input_url, url, self.presigned_url_lifetime):
            self.log.warning(warning)
        self.hook.check_video_url(url, source)  # a text file named .mp4 fails here, not as a paid job
        return contract.build_job_request(url, self.infer_fps, self.models, source=source)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the output URL, or raise for a failure or timeout."""
        with kept_until_the_task_ends(task_store(context), JOB_STATE_KEY, context):
            try:
                return JobEvent.from_payload(event).output_url_or_raise()
            except VideoInferJobFailedError as err:
                raise self._job_failure(err) from None

    def _job_failure(self, err: VideoInferJobFailedError) -> VideoInferJobFailedError:
        """The error that ends this try for a failed job: fatal unless ``resubmit_failed_jobs`` lets a retry
        pay for a new job."""
        policy = self.resubmit_failed_jobs
        if policy.allows(err.code):
            advice = f"The task's next retry, if it has one left, submits a new job ({policy})."
            return VideoInferJobFailedError(err.job_id, err.code, err.reason, advice)
        return err.final(
            f"No retry of this task pays for a new job after it ({policy}), so the task fails without its "
            f"retries: fix the input and clear the task, or allow status {err.code} in resubmit_failed_jobs."
        )

    def on_kill(self) -> None:
        """Log that the job goes on running on the service (it cannot be cancelled), with its id; on the
        task's last try, forget the job (no retry will look for it)."""
        if getattr(self, "_last_try", False):
            forget(self._store, JOB_STATE_KEY)
        log_job_left_running(
            self,
            self._job_id,
            f"Wait for its results with VideoInferJobSensor(job_id={self._job_id!r}); a retry of this task "
            "reconnects to it.",
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the input video's URL (see :mod:`airflow_provider_videoinfer.lineage`)."""
        from airflow_provider_videoinfer.lineage import submit_lineage

        return submit_lineage(self.input_url)

    def _submit_or_reconnect(
        self, store: TaskStore, fingerprint: str, make_request: Callable[[], contract.JobRequest]
    ) -> tuple[str, contract.JobState | VideoInferError]:
        """Reuse the job a previous try of this task submitted, unless it failed; else submit.

        Returns the job id and what is known of it: its state read once on a reconnection (or the error
        that read got, the state being unknown), a just-submitted job's queued state otherwise.

        :param store: where the job id is kept for the next try.
        :param fingerprint: the inputs' digest (:func:`~videoinfer_contract.jobs.job_fingerprint`),
            compared with the saved job's.
        :param make_request: builds the request, only when a job is submitted (a storage URI input
            is presigned then, not on a reconnection).
        """
        saved = store.get(JOB_STATE_KEY)
        if isinstance(saved, dict) and saved.get("request") == fingerprint:
            if saved.get("job_id"):
                poll = self._previous_state(str(saved["job_id"]))
                if poll is not None:
                    return str(saved["job_id"]), poll
            elif saved.get("submitting"):
                if not self.resubmit_unknown_outcome:
                    raise self._unknown_outcome(saved["submitting"], saved.get("error") or "no answer")
                self.log.warning(
                    "A previous try's submission at %s got no answer, so a job may exist; submitting a new one "
                    "(resubmit_unknown_outcome=True).",
                    saved["submitting"],
                )
        elif isinstance(saved, dict) and saved.get("job_id"):
            self.log.info("The inputs changed since job %s was submitted: submitting a new job.", saved["job_id"])
        request = make_request()
        submitting = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self._keep(store, {"job_id": None, "request": fingerprint, "submitting": submitting})
        try:
            job_id = self.hook.submit(request)
        except VideoInferError as err:
            if created_nothing(err):
                self._keep(store, {"job_id": None, "request": fingerprint})  # nothing to find: a retry submits
                raise
            self._keep(store, {"job_id": None, "request": fingerprint, "submitting": submitting, "error": str(err)})
            raise self._unknown_outcome(submitting, str(err)) from None
        try:
            store.set(JOB_STATE_KEY, {"job_id": job_id, "request": fingerprint})
        except VideoInferStoreError as err:
            raise VideoInferStoreError(
                f"Job {job_id} was submitted, but its id could not be kept for the task's next try ({err}); the "
                f"job runs on: wait for it with VideoInferJobSensor(job_id={job_id!r}) rather than clearing this task."
            ) from None
        return job_id, contract.JobState(job_id, contract.JobStatus.RUNNING, 1)  # accepted: queued or running

    def _keep(self, store: TaskStore, entry: dict[str, Any]) -> None:
        """Write the submission's entry before (and after) paying for a job: a task whose retries could not
        find the job must not submit one. Without retries there is no next try to find it, so it goes on."""
        try:
            store.set(JOB_STATE_KEY, entry)
        except VideoInferStoreError as err:
            if self.retries:
                raise VideoInferStoreError(
                    f"Task {self.task_id} cannot keep the id of its job for its next try ({err}), so no job is "
                    f"submitted: with retries={self.retries}, a retry would pay for a second. Let the task write "
                    f"Airflow Variables, or set retries=0. {more_at('a-retry-must-find-its-job')}"
                ) from None
            self.log.warning("Could not keep the job id for a retry (%s); the task has no retries.", err)

    def _unknown_outcome(self, submitted_at: str, error: str) -> VideoInferSubmissionUnknownError:
        """The error of a submission whose answer was lost: the job may exist, so none is submitted again."""
        return VideoInferSubmissionUnknownError(
            f"The job submission of {submitted_at} got no answer ({error}): a job may be running and paid for, "
            "so none is submitted again. Look for it in the service's dashboard; to submit anew, clear this task "
            f"or set resubmit_unknown_outcome=True. {more_at('a-submission-got-no-answer')}"
        )

    def _unreadable(self, job_id: str, err: VideoInferError) -> VideoInferTransientError:
        """The error of a try that could not read the job a previous try submitted, and does not wait."""
        return VideoInferTransientError(
            f"Could not read job {job_id}, submitted by a previous try of this task ({err}). No new job is "
            "submitted while its state is unknown: the next retry of the task reconnects to it."
        )

    def _previous_state(self, job_id: str) -> contract.JobState | VideoInferError | None:
        """The saved job's state, read once, or the transient error that read got; None when a new job must
        be submitted (it is unknown, or it failed with a status that ``resubmit_failed_jobs`` allows).

        Raises when the job failed with a status that ``resubmit_failed_jobs`` does not allow, and for an
        error no retry can fix.
        """
        poll = self.hook.poll_job(job_id)
        if isinstance(poll, VideoInferNotFoundError):
            self.log.warning(
                "Job %s from a previous try is unknown to the service (%s): submitting a new job.", job_id, poll
            )
            return None
        if isinstance(poll, VideoInferError):
            if not is_transient(poll):
                raise poll
            self.log.warning(
                "Job %s from a previous try could not be read (%s): no new job is submitted while its state is "
                "unknown.",
                job_id,
                poll,
            )
            return poll
        if poll.status is contract.JobStatus.FAILED:
            policy = self.resubmit_failed_jobs
            if not policy.allows(poll.code):
                self.log.warning(
                    "Job %s from a previous try failed with status %s (%s): no new job is submitted (%s).",
                    job_id,
                    poll.code,
                    poll.error,
                    policy,
                )
                raise self._job_failure(responses.job_failed(poll))
            self.log.warning(
                "Job %s from a previous try failed with status %s (%s): submitting a new job (%s).",
                job_id,
                poll.code,
                poll.error,
                policy,
            )
            return None
        self.log.info("Reconnecting to job %s from a previous try (%s).", job_id, poll.status.value)
        return poll

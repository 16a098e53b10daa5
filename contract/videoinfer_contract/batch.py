"""Roboflow Batch Processing as the contract knows it: endpoints, ids, the video job body, the answers.

Pure Python, no I/O: the provider builds requests and reads answers with it, the local server
validates what it receives and writes what it answers with it, so both sides agree by construction.

- endpoints of the two path families, Data Staging and Batch Processing, as ``(METHOD, template)``
  (:func:`endpoint_path` fills a template);
- :func:`validate_staging_batch_id` and :func:`validate_batch_job_id`: the ids the client chooses;
- :class:`VideoJobDefinition`: the body of ``POST /jobs/{job_id}`` for a video job, each user value
  validated once (:meth:`VideoJobDefinition.build`) or read back from the wire
  (:meth:`VideoJobDefinition.from_payload`);
- typed answers (:class:`BatchJob`, :class:`JobStage`, :class:`JobTask`, :class:`JobLogEntry`,
  :class:`StagingBatch`, :class:`BatchPart`, :class:`StagedFile`, :class:`ShardStatus`, :class:`Page`)
  and their ``parse_*`` functions, which raise :class:`~videoinfer_contract.errors.InvalidAnswerError`;
- :class:`RestartOverride`: the body of ``POST /jobs/{job_id}/restart``;
- :class:`BatchJobState`, a job's state derived from ``isTerminal``, ``error`` and whether it was aborted.

Where the service's documentation is silent (see ``batch-processing-api.md`` section 8), the choice
made is kept here, once, and named in a comment beginning "Choice:".
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from videoinfer_contract.errors import InvalidAnswerError, InvalidInputError
from videoinfer_contract.validation import MAX_INFER_FPS, _control_character, _validate_http_url, validate_flag

# --------------------------------------------------------------------------------------------
# Endpoints: (method, path template); the templates' fields are filled by endpoint_path().
# --------------------------------------------------------------------------------------------
DATA_STAGING_PREFIX = "/data-staging/v1/external/{workspace}"
BATCH_PROCESSING_PREFIX = "/batch-processing/v1/external/{workspace}"

WORKSPACE_ENDPOINT = ("GET", "/")
LIST_BATCHES_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches")
BATCH_METADATA_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches/{batch_id}")
BATCH_COUNT_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches/{batch_id}/count")
BATCH_PARTS_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches/{batch_id}/parts")
BATCH_LIST_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches/{batch_id}/list")
BATCH_SHARDS_ENDPOINT = ("GET", DATA_STAGING_PREFIX + "/batches/{batch_id}/shards")
UPLOAD_VIDEO_ENDPOINT = ("POST", DATA_STAGING_PREFIX + "/batches/{batch_id}/upload/video")
VIDEO_REFERENCES_ENDPOINT = ("POST", DATA_STAGING_PREFIX + "/batches/{batch_id}/bulk-upload/video-references")

CREATE_JOB_ENDPOINT = ("POST", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}")
LIST_JOBS_ENDPOINT = ("GET", BATCH_PROCESSING_PREFIX + "/jobs")
JOB_METADATA_ENDPOINT = ("GET", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}")
JOB_STAGES_ENDPOINT = ("GET", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}/stages")
STAGE_TASKS_ENDPOINT = ("GET", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}/stages/{stage_id}/tasks")
JOB_LOGS_ENDPOINT = ("GET", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}/logs")
ABORT_JOB_ENDPOINT = ("POST", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}/abort")
RESTART_JOB_ENDPOINT = ("POST", BATCH_PROCESSING_PREFIX + "/jobs/{job_id}/restart")

DATA_STAGING_ENDPOINTS = (
    LIST_BATCHES_ENDPOINT,
    BATCH_METADATA_ENDPOINT,
    BATCH_COUNT_ENDPOINT,
    BATCH_PARTS_ENDPOINT,
    BATCH_LIST_ENDPOINT,
    BATCH_SHARDS_ENDPOINT,
    UPLOAD_VIDEO_ENDPOINT,
    VIDEO_REFERENCES_ENDPOINT,
)
BATCH_PROCESSING_ENDPOINTS = (
    CREATE_JOB_ENDPOINT,
    LIST_JOBS_ENDPOINT,
    JOB_METADATA_ENDPOINT,
    JOB_STAGES_ENDPOINT,
    STAGE_TASKS_ENDPOINT,
    JOB_LOGS_ENDPOINT,
    ABORT_JOB_ENDPOINT,
    RESTART_JOB_ENDPOINT,
)


def endpoint_path(endpoint: tuple[str, str], **fields: str) -> str:
    """Fill an endpoint's path template, each field percent-encoded as one path segment.

    :param endpoint: one of the ``*_ENDPOINT`` constants.
    :param fields: the template's fields (``workspace``, ``batch_id``, ``job_id``, ``stage_id``).
    """
    return endpoint[1].format(**{name: quote(str(value), safe="") for name, value in fields.items()})


# --------------------------------------------------------------------------------------------
# Constants of the service (and the local server's choices where the sources are silent).
# --------------------------------------------------------------------------------------------
VIDEO_JOB_TYPE = "simple-video-processing-v1"
COMPUTE_CONFIGURATION_TYPE = "compute-configuration-v2"
JOB_INPUT_TYPE = "staging-batch-input-v1"
PROCESSING_SPECIFICATION_TYPE = "workflows-processing-specification-v1"
RESTART_OVERRIDE_TYPE = "parameters-override-v1"
MACHINE_TYPES = ("cpu", "gpu")
AGGREGATION_FORMATS = ("csv", "jsonl")
LOG_SEVERITIES = ("info", "warning", "error")
#: The stages of a workflow job, in order [DOC-ABOUT: "typically processing and export"].
JOB_STAGES = ("processing", "export")
#: Everything in Data Staging, inputs and results, expires this long after its creation [DOC-ABOUT].
RETENTION = datetime.timedelta(days=7)
#: ``statusType`` of a running stage or task; anything else is terminal, and the CLI reads a value
#: holding "success" as succeeded and one holding "error" as failed [CLI].
STATUS_RUNNING = "info"
STATUS_SUCCEEDED = "success"
STATUS_FAILED = "error"
#: ``type`` of the webhook a job sends when it ends [DOC-INTEG].
JOB_NOTIFICATION_TYPE = "roboflow-batch-job-notification-v1"

#: The first columns of every row of a video job's results, one row per sampled frame: the video's
#: file name in its input batch, the frame's index in the video and its time in seconds. One column
#: per Workflow output follows, holding that output's value for the frame as JSON (CSV: JSON text).
#: Choice: the sources do not document the video layout (section 8, item 10); this is the local
#: server's, and the provider reads the columns by name.
ROW_COLUMNS = ("video", "frame_index", "time_offset")
#: Choice: part names of a job's output batches (undocumented): ``results`` of the processing
#: stage (one CSV or JSONL file per video) and ``archives`` of the export stage (one ``.tar.gz``).
PROCESSING_PART = "results"
EXPORT_PART = "archives"

MAX_STAGING_BATCH_ID_LENGTH = 64
MAX_BATCH_JOB_ID_LENGTH = 20
_ID_PATTERN = re.compile(r"^[a-z0-9_-]+$")
# Choice: the sources say nothing on workflow ids; Roboflow's are URL slugs, so letters, digits,
# '-' and '_' (either case), at most 128 characters, catch a pasted URL or a stray space early.
MAX_WORKFLOW_ID_LENGTH = 128
_WORKFLOW_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Choice: upper bounds the sources do not give, set far above any real need so that only a unit
# mistake (milliseconds for seconds, a job count for a task count) is refused.
MAX_PROCESSING_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_PARALLEL_TASKS = 1000
MAX_WORKERS_PER_MACHINE = 64
#: The highest ``maxVideoFPS``: the same ceiling as the Video Inference API's ``infer_fps``.
MAX_VIDEO_FPS = MAX_INFER_FPS
# Choice: how an abort shows in a job's ``lastNotification`` is undocumented; a job is taken for
# aborted when that notification (its text, or a dict's "type", "statusName" or "message") mentions
# "abort". The local server writes {"type": "job-aborted", ...}.
_ABORT_MARK = "abort"


def validate_staging_batch_id(batch_id: Any, name: str = "batch_id") -> str:
    """Check a Data Staging batch id: ``[a-z0-9_-]``, 1 to 64 characters.

    :param batch_id: the id the client chooses.
    :param name: the argument's name, for messages.
    """
    return _validate_id(batch_id, name, MAX_STAGING_BATCH_ID_LENGTH, "batch")


def validate_batch_job_id(job_id: Any, name: str = "job_id") -> str:
    """Check a Batch Processing job id: ``[a-z0-9_-]``, 1 to 20 characters.

    :param job_id: the id the client chooses.
    :param name: the argument's name, for messages.
    """
    return _validate_id(job_id, name, MAX_BATCH_JOB_ID_LENGTH, "job")


def _validate_id(value: Any, name: str, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{name} must be a non-empty string of lower-case letters, digits, '-' and '_', got {value!r}: "
            f"e.g. {name}='my-{what}-1'."
        )
    if not _ID_PATTERN.match(value):
        suggestion = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-")[:limit] or f"my-{what}-1"
        raise InvalidInputError(
            f"{name} {value!r} may hold only lower-case ASCII letters, digits, '-' and '_' "
            f"(the service's pattern ^[a-z0-9_-]+$): e.g. {suggestion!r}."
        )
    if len(value) > limit:
        raise InvalidInputError(
            f"{name} {value!r} is {len(value)} characters long; the service allows at most {limit} for a {what} "
            f"id: shorten it, e.g. {value[:limit]!r}."
        )
    return value


def output_batch_id(job_id: str, stage: str) -> str:
    """The id of the output batch a job's stage writes: ``<job_id>-<stage>``.

    Choice: [SKILL] names them so (``<job>-processing``, ``<job>-export``); the CLI reads them from
    ``outputBatches`` and hard-codes nothing, so the provider should too.

    :param job_id: the job's id.
    :param stage: a stage name of :data:`JOB_STAGES`.
    """
    return f"{job_id}-{stage}"


# --------------------------------------------------------------------------------------------
# The video job definition (the body of POST /jobs/{job_id}).
# --------------------------------------------------------------------------------------------
def _whole_number(value: Any, name: str, low: int, high: int, example: str) -> int:
    number: Any = value
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, numbers.Integral) and not isinstance(number, bool):
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}: e.g. {name}={example}.")
    if not low <= number <= high:
        raise InvalidInputError(f"{name} must be from {low} to {high}, got {number}: e.g. {name}={example}.")
    return number


def _name_like(value: Any, name: str, pattern: re.Pattern[str] | None, limit: int, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}: e.g. {name}={example!r}.")
    text = value.strip()
    control = _control_character(text)
    if control is not None or any(char.isspace() for char in text):
        raise InvalidInputError(f"{name} {value!r} holds a space or a control character: e.g. {name}={example!r}.")
    if len(text) > limit:
        raise InvalidInputError(f"{name} {value!r} is longer than {limit} characters: e.g. {name}={example!r}.")
    if pattern is not None and not pattern.match(text):
        raise InvalidInputError(
            f"{name} {value!r} may hold only letters, digits, '-' and '_' (the id, not the Workflow's URL or "
            f"title): e.g. {name}={example!r}."
        )
    return text


def validate_workflow_id(workflow_id: Any, name: str = "workflow_id") -> str:
    """Check a Workflow id: letters, digits, ``-`` and ``_``, at most :data:`MAX_WORKFLOW_ID_LENGTH`.

    :param workflow_id: the id of a Workflow of the workspace (the last segment of its URL).
    :param name: the argument's name, for messages.
    """
    return _name_like(workflow_id, name, _WORKFLOW_ID_PATTERN, MAX_WORKFLOW_ID_LENGTH, "detect-and-count")


def validate_workflow_parameters(parameters: Any, name: str = "workflow_parameters") -> dict[str, Any] | None:
    """Check the Workflow's parameters: a dict with string keys that JSON can carry, or None.

    :param parameters: the values of the Workflow's inputs other than the image, e.g. ``{"confidence": 0.4}``.
    :param name: the argument's name, for messages.
    """
    if parameters is None:
        return None
    if not isinstance(parameters, Mapping):
        raise InvalidInputError(
            f"{name} must be a dict of the Workflow's inputs, got {type(parameters).__name__} ({parameters!r:.60}): "
            f"e.g. {name}={{'confidence': 0.4}}; a Jinja template renders as text unless the DAG sets "
            "render_template_as_native_obj=True."
        )
    bad_keys = [key for key in parameters if not isinstance(key, str) or not key]
    if bad_keys:
        raise InvalidInputError(f"{name} has keys that are not non-empty strings: {bad_keys!r:.80}; name each input.")
    try:
        text = json.dumps(dict(parameters), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"{name} cannot be sent as JSON ({err}): use strings, finite numbers, bools, None, lists and dicts."
        ) from None
    plain: dict[str, Any] = json.loads(text)
    return plain


def validate_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Check a value among ``choices`` (case-insensitive) and return it in lower case.

    :param value: what the user passed.
    :param name: the argument's name, for messages.
    :param choices: the allowed values, lower case.
    """
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def validate_max_video_fps(value: Any, name: str = "max_video_fps") -> int | float:
    """Check ``maxVideoFPS``: a finite number of frames per second above 0, at most :data:`MAX_VIDEO_FPS`.

    :param value: an int or a float (the service accepts both).
    :param name: the argument's name, for messages.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a number of frames per second, got {value!r}: e.g. {name}=5.")
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= MAX_VIDEO_FPS:
        raise InvalidInputError(
            f"{name} must be above 0 and at most {MAX_VIDEO_FPS}, got {value!r}: e.g. {name}=5 samples five "
            "frames a second (fewer frames cost less)."
        )
    return int(number) if number.is_integer() else number


def _optional(value: Any, check: Callable[[Any], Any]) -> Any:
    return None if value is None else check(value)


@dataclass(frozen=True)
class VideoJobDefinition:
    """One validated video job: the body of ``POST /jobs/{job_id}`` for ``simple-video-processing-v1``.

    Build it with :meth:`build` (the user's values) or :meth:`from_payload` (a body read from the
    wire); both validate every field. Fields that are None are left out of the body, as the CLI does.

    :param workspace: the workspace (the ``workspace`` answered by ``GET /``).
    :param batch_id: the input staging batch.
    :param workflow_id: the Workflow to run.
    :param part_name: a part of a multipart input batch; None for the whole batch.
    :param workflow_parameters: the Workflow's other inputs.
    :param image_input_name: the name of the Workflow's image input; None for the service's default.
    :param machine_type: ``"cpu"`` or ``"gpu"``; None for the service's default (CPU).
    :param workers_per_machine: workers per machine; None for the service's default.
    :param processing_timeout_seconds: the cap on the job's cumulative machine runtime.
    :param max_parallel_tasks: how many tasks (videos) run at once at most.
    :param aggregation_format: ``"csv"`` or ``"jsonl"``; None for the service's default (CSV).
    :param max_video_fps: the most frames per second sampled for prediction; None for every frame.
    :param notifications_url: the webhook the job's end is posted to; left out of the ``repr``.
    :param persist_images_outputs: whether the Workflow's image outputs are kept (the CLI always sends it).
    """

    workspace: str
    batch_id: str
    workflow_id: str
    part_name: str | None = None
    workflow_parameters: dict[str, Any] | None = None
    image_input_name: str | None = None
    machine_type: str | None = None
    workers_per_machine: int | None = None
    processing_timeout_seconds: int | None = None
    max_parallel_tasks: int | None = None
    aggregation_format: str | None = None
    max_video_fps: int | float | None = None
    notifications_url: str | None = field(default=None, repr=False)
    persist_images_outputs: bool = False

    @classmethod
    def build(
        cls,
        workspace: Any,
        batch_id: Any,
        workflow_id: Any,
        *,
        part_name: Any = None,
        workflow_parameters: Any = None,
        image_input_name: Any = None,
        machine_type: Any = None,
        workers_per_machine: Any = None,
        processing_timeout_seconds: Any = None,
        max_parallel_tasks: Any = None,
        aggregation_format: Any = None,
        max_video_fps: Any = None,
        notifications_url: Any = None,
        persist_images_outputs: Any = False,
        names: Mapping[str, str] | None = None,
    ) -> VideoJobDefinition:
        """Validate the user's values and return the definition; see the class for each parameter.

        :param names: the name to give each parameter in messages when it differs (the wire's
            camelCase names when reading a body, an operator's own argument names).
        """
        called = dict(names or {})

        def name(key: str) -> str:
            return called.get(key, key)

        return cls(
            workspace=_name_like(workspace, name("workspace"), None, 128, "my-workspace"),
            batch_id=validate_staging_batch_id(batch_id, name("batch_id")),
            workflow_id=validate_workflow_id(workflow_id, name("workflow_id")),
            part_name=_optional(part_name, lambda v: _name_like(v, name("part_name"), None, 128, "videos")),
            workflow_parameters=validate_workflow_parameters(workflow_parameters, name("workflow_parameters")),
            image_input_name=_optional(
                image_input_name, lambda v: _name_like(v, name("image_input_name"), None, 128, "image")
            ),
            machine_type=_optional(machine_type, lambda v: validate_choice(v, name("machine_type"), MACHINE_TYPES)),
            workers_per_machine=_optional(
                workers_per_machine,
                lambda v: _whole_number(v, name("workers_per_machine"), 1, MAX_WORKERS_PER_MACHINE, "2"),
            ),
            processing_timeout_seconds=_optional(
                processing_timeout_seconds,
                lambda v: _whole_number(
                    v, name("processing_timeout_seconds"), 1, MAX_PROCESSING_TIMEOUT_SECONDS, "3600"
                ),
            ),
            max_parallel_tasks=_optional(
                max_parallel_tasks, lambda v: _whole_number(v, name("max_parallel_tasks"), 1, MAX_PARALLEL_TASKS, "4")
            ),
            aggregation_format=_optional(
                aggregation_format, lambda v: validate_choice(v, name("aggregation_format"), AGGREGATION_FORMATS)
            ),
            max_video_fps=_optional(max_video_fps, lambda v: validate_max_video_fps(v, name("max_video_fps"))),
            notifications_url=_optional(
                notifications_url,
                lambda v: _validate_http_url(v, name("notifications_url"), "the URL your webhook listens on"),
            ),
            persist_images_outputs=validate_flag(name("persist_images_outputs"), persist_images_outputs),
        )

    @classmethod
    def from_payload(cls, body: Any) -> VideoJobDefinition:
        """Read and validate a job body as it comes over the wire (what the local server does).

        :param body: the decoded JSON body of ``POST /jobs/{job_id}``.
        :raises InvalidInputError: naming the JSON field at fault.
        """
        top = _object(body, "the job definition", InvalidInputError)
        if top.get("type") != VIDEO_JOB_TYPE:
            raise InvalidInputError(
                f"type must be {VIDEO_JOB_TYPE!r}, got {top.get('type')!r}: this server runs Workflows on staged "
                "videos only (inference rf-cloud batch-processing process-videos-with-workflow)."
            )
        job_input = _object(top.get("jobInput"), "jobInput", InvalidInputError)
        compute = _object(top.get("computeConfiguration", {}), "computeConfiguration", InvalidInputError)
        spec = _object(top.get("processingSpecification"), "processingSpecification", InvalidInputError)
        for value, expected, where in (
            (job_input.get("type"), JOB_INPUT_TYPE, "jobInput.type"),
            (compute.get("type", COMPUTE_CONFIGURATION_TYPE), COMPUTE_CONFIGURATION_TYPE, "computeConfiguration.type"),
            (spec.get("type"), PROCESSING_SPECIFICATION_TYPE, "processingSpecification.type"),
        ):
            if value != expected:
                raise InvalidInputError(f"{where} must be {expected!r}, got {value!r}.")
        names = {
            "workspace": "processingSpecification.workspace",
            "batch_id": "jobInput.batchId",
            "workflow_id": "processingSpecification.workflowId",
            "part_name": "jobInput.partName",
            "workflow_parameters": "processingSpecification.workflowParameters",
            "image_input_name": "processingSpecification.imageInputName",
            "machine_type": "computeConfiguration.machineType",
            "workers_per_machine": "computeConfiguration.workersPerMachine",
            "processing_timeout_seconds": "processingTimeoutSeconds",
            "max_parallel_tasks": "maxParallelTasks",
            "aggregation_format": "processingSpecification.aggregationFormat",
            "max_video_fps": "processingSpecification.maxVideoFPS",
            "notifications_url": "notificationsURL",
            "persist_images_outputs": "processingSpecification.persistImagesOutputs",
        }
        return cls.build(
            spec.get("workspace"),
            job_input.get("batchId"),
            spec.get("workflowId"),
            part_name=job_input.get("partName"),
            workflow_parameters=spec.get("workflowParameters"),
            image_input_name=spec.get("imageInputName"),
            machine_type=compute.get("machineType"),
            workers_per_machine=compute.get("workersPerMachine"),
            processing_timeout_seconds=top.get("processingTimeoutSeconds"),
            max_parallel_tasks=top.get("maxParallelTasks"),
            aggregation_format=spec.get("aggregationFormat"),
            max_video_fps=spec.get("maxVideoFPS"),
            notifications_url=top.get("notificationsURL"),
            persist_images_outputs=spec.get("persistImagesOutputs", False),
            names=names,
        )

    def to_payload(self) -> dict[str, Any]:
        """The JSON body, None fields left out (as the CLI's ``exclude_none``)."""
        job_input = {"type": JOB_INPUT_TYPE, "batchId": self.batch_id, "partName": self.part_name}
        compute = {
            "type": COMPUTE_CONFIGURATION_TYPE,
            "machineType": self.machine_type,
            "workersPerMachine": self.workers_per_machine,
        }
        spec = {
            "type": PROCESSING_SPECIFICATION_TYPE,
            "workspace": self.workspace,
            "workflowId": self.workflow_id,
            "workflowParameters": self.workflow_parameters,
            "imageInputName": self.image_input_name,
            "persistImagesOutputs": self.persist_images_outputs,
            "aggregationFormat": self.aggregation_format,
            "maxVideoFPS": self.max_video_fps,
        }
        body = {
            "type": VIDEO_JOB_TYPE,
            "jobInput": _without_none(job_input),
            "computeConfiguration": _without_none(compute),
            "processingTimeoutSeconds": self.processing_timeout_seconds,
            "maxParallelTasks": self.max_parallel_tasks,
            "processingSpecification": _without_none(spec),
            "notificationsURL": self.notifications_url,
        }
        return _without_none(body)

    @property
    def fingerprint(self) -> str:
        """A digest of the body (see :func:`definition_fingerprint`)."""
        return definition_fingerprint(self.to_payload())


@dataclass(frozen=True)
class RestartOverride:
    """The body of ``POST /jobs/{job_id}/restart``: what a restart changes; None keeps the job's value.

    :param processing_timeout_seconds: a new runtime cap.
    :param max_parallel_tasks: a new task parallelism.
    :param machine_type: ``"cpu"`` or ``"gpu"``.
    :param workers_per_machine: workers per machine.
    """

    processing_timeout_seconds: int | None = None
    max_parallel_tasks: int | None = None
    machine_type: str | None = None
    workers_per_machine: int | None = None

    @classmethod
    def build(
        cls,
        processing_timeout_seconds: Any = None,
        max_parallel_tasks: Any = None,
        machine_type: Any = None,
        workers_per_machine: Any = None,
        names: Mapping[str, str] | None = None,
    ) -> RestartOverride:
        """Validate the overrides with the rules of :meth:`VideoJobDefinition.build`."""
        checked = VideoJobDefinition.build(
            "workspace",
            "batch",
            "workflow",
            processing_timeout_seconds=processing_timeout_seconds,
            max_parallel_tasks=max_parallel_tasks,
            machine_type=machine_type,
            workers_per_machine=workers_per_machine,
            names=names,
        )
        return cls(
            checked.processing_timeout_seconds,
            checked.max_parallel_tasks,
            checked.machine_type,
            checked.workers_per_machine,
        )

    @classmethod
    def from_payload(cls, body: Any) -> RestartOverride:
        """Read a restart body as it comes over the wire; an absent (None) body overrides nothing."""
        if body is None:
            return cls()
        top = _object(body, "the restart body", InvalidInputError)
        if top.get("type", RESTART_OVERRIDE_TYPE) != RESTART_OVERRIDE_TYPE:
            raise InvalidInputError(f"type must be {RESTART_OVERRIDE_TYPE!r}, got {top.get('type')!r}.")
        compute = _object(top.get("computeConfiguration") or {}, "computeConfiguration", InvalidInputError)
        return cls.build(
            top.get("processingTimeoutSeconds"),
            top.get("maxParallelTasks"),
            compute.get("machineType"),
            compute.get("workersPerMachine"),
            names={
                "processing_timeout_seconds": "processingTimeoutSeconds",
                "max_parallel_tasks": "maxParallelTasks",
                "machine_type": "computeConfiguration.machineType",
                "workers_per_machine": "computeConfiguration.workersPerMachine",
            },
        )

    def to_payload(self) -> dict[str, Any] | None:
        """The JSON body; None when nothing is overridden (the CLI then sends no body)."""
        compute = _without_none({"machineType": self.machine_type, "workersPerMachine": self.workers_per_machine})
        body = _without_none(
            {
                "processingTimeoutSeconds": self.processing_timeout_seconds,
                "maxParallelTasks": self.max_parallel_tasks,
                "computeConfiguration": {"type": COMPUTE_CONFIGURATION_TYPE, **compute} if compute else None,
            }
        )
        return {"type": RESTART_OVERRIDE_TYPE, **body} if body else None


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def definition_fingerprint(body: Any) -> str:
    """A digest of a job body, the same for the same JSON whatever its key order or spacing.

    The local server answers a second ``POST /jobs/{id}`` with 200 when the digests match and 409
    when they differ; a client can compare an existing job's ``jobDefinition`` with its own body.

    :param body: a decoded JSON job body.
    """
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def job_notification(job_id: str, succeeded: bool, event_id: str, delivery_attempt: int = 1) -> dict[str, Any]:
    """The webhook body posted to ``notificationsURL`` when a job ends [DOC-INTEG].

    :param job_id: the job's id.
    :param succeeded: whether it ended without error (``job_state`` ``success``, else ``fail``).
    :param event_id: a unique id of the event (a uuid4 text).
    :param delivery_attempt: 1 for the first delivery, one more for each redelivery.
    """
    return {
        "type": JOB_NOTIFICATION_TYPE,
        "event_id": event_id,
        "job_id": job_id,
        "job_state": "success" if succeeded else "fail",
        "delivery_attempt": delivery_attempt,
    }


# --------------------------------------------------------------------------------------------
# Datetimes on the wire.
# --------------------------------------------------------------------------------------------
def format_datetime(moment: datetime.datetime) -> str:
    """A datetime as the wire carries it: ISO 8601 in UTC with a ``Z`` (the CLI needs an aware one).

    :param moment: an aware datetime; a naive one is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any, where: str) -> datetime.datetime:
    """Read an ISO 8601 datetime of an answer; a naive one is taken as UTC (Choice: the service sends aware ones).

    :param value: the text.
    :param where: the field, for messages.
    """
    if not isinstance(value, str):
        raise InvalidAnswerError(f"{where} must be an ISO 8601 datetime, got {value!r}.")
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAnswerError(f"{where} must be an ISO 8601 datetime, got {value!r}.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


# --------------------------------------------------------------------------------------------
# Job states and typed answers.
# --------------------------------------------------------------------------------------------
class BatchJobState(StrEnum):
    """A job's state, derived from ``isTerminal``, ``error`` and whether it was aborted (see :meth:`derive`).

    The service has no state enum; ``QUEUED`` is a job with no current stage yet.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @classmethod
    def derive(
        cls, is_terminal: bool, error: bool, last_notification: Any = None, current_stage: str | None = ""
    ) -> BatchJobState:
        """The state a job's fields mean.

        :param is_terminal: ``isTerminal``.
        :param error: ``error``.
        :param last_notification: ``lastNotification``; tells an abort from another failure.
        :param current_stage: ``currentStage``; None while not terminal means queued.
        """
        if not is_terminal:
            return cls.QUEUED if current_stage is None else cls.RUNNING
        if not error:
            return cls.SUCCEEDED
        return cls.ABORTED if is_abort_notification(last_notification) else cls.FAILED

    def is_terminal(self) -> bool:
        """Whether the job has stopped (succeeded, failed or aborted); only a restart runs it again."""
        return self in (BatchJobState.SUCCEEDED, BatchJobState.FAILED, BatchJobState.ABORTED)

    def is_successful(self) -> bool:
        """Whether the job ended without error."""
        return self is BatchJobState.SUCCEEDED

    def can_restart(self) -> bool:
        """Whether ``POST /restart`` applies: an aborted or failed job [DOC-ABOUT]."""
        return self in (BatchJobState.FAILED, BatchJobState.ABORTED)


def is_abort_notification(notification: Any) -> bool:
    """Whether a job's ``lastNotification`` tells of an abort (see the Choice on :data:`_ABORT_MARK`)."""
    if isinstance(notification, str):
        return _ABORT_MARK in notification.lower()
    if isinstance(notification, Mapping):
        return any(
            isinstance(notification.get(key), str) and _ABORT_MARK in notification[key].lower()
            for key in ("type", "statusName", "message")
        )
    return False


def _object(body: Any, what: str, error: type[Exception] = InvalidAnswerError) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise error(f"{what} must be a JSON object, got {type(body).__name__}.")
    return body


def _field(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise InvalidAnswerError(f"{what}: {key!r} is missing or not a {_kind_names(kind)} (got {value!r:.80}).")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(item.__name__ for item in _kinds(kind))


def _optional_field(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    return None if body.get(key) is None else _field(body, key, kind, what)


@dataclass(frozen=True)
class BatchJob:
    """A job's metadata (``JobMetadata``), typed.

    :param job_id: ``jobId``.
    :param name: ``name``.
    :param definition: ``jobDefinition``, the body the job was created with.
    :param current_stage: ``currentStage``; None before the first stage.
    :param planned_stages: ``plannedStages``.
    :param error: ``error``.
    :param is_terminal: ``isTerminal``.
    :param last_notification: ``lastNotification``, free-form.
    :param created_at: ``createdAt``.
    :param last_update: ``lastUpdate``.
    :param restart_overrides: ``restartParametersOverride``, one entry per restart with overrides.
    """

    job_id: str
    name: str
    definition: dict[str, Any]
    current_stage: str | None
    planned_stages: tuple[str, ...]
    error: bool
    is_terminal: bool
    last_notification: dict[str, Any] | str | None
    created_at: datetime.datetime
    last_update: datetime.datetime
    restart_overrides: tuple[dict[str, Any], ...] = ()

    @property
    def state(self) -> BatchJobState:
        """The job's state (see :meth:`BatchJobState.derive`)."""
        return BatchJobState.derive(self.is_terminal, self.error, self.last_notification, self.current_stage)

    @property
    def message(self) -> str | None:
        """The last notification's text: its ``message`` when a dict, itself when text."""
        note = self.last_notification
        if isinstance(note, Mapping):
            text = note.get("message")
            return text if isinstance(text, str) else None
        return note


@dataclass(frozen=True)
class JobStage:
    """One stage of a job (``JobStageDetails``).

    :param stage_id: ``processingStageId``.
    :param name: ``processingStageName``.
    :param tasks_number: ``tasksNumber``.
    :param output_batches: ``outputBatches``, the staging batches the stage wrote.
    :param started_at: ``startTimestamp``.
    :param notification: ``notification``.
    :param status_type: ``statusType``.
    :param last_event_at: ``lastEventTimestamp``.
    """

    stage_id: str
    name: str
    tasks_number: int
    output_batches: tuple[str, ...]
    started_at: datetime.datetime
    notification: dict[str, Any] | str
    status_type: str
    last_event_at: datetime.datetime

    @property
    def is_running(self) -> bool:
        """Whether the stage still runs (``statusType`` is ``info``)."""
        return self.status_type == STATUS_RUNNING

    @property
    def failed(self) -> bool:
        """Whether the stage ended in error (``statusType`` holds ``error``, as the CLI reads it)."""
        return STATUS_FAILED in self.status_type.lower()


@dataclass(frozen=True)
class JobTask:
    """One task of a stage (``TaskStatus``); one task is one video.

    :param task_id: ``taskId``.
    :param notification: ``notification``.
    :param status_type: ``statusType``.
    :param progress: ``progress`` from 0 to 1; None while waiting.
    :param event_at: ``eventTimestamp``.
    """

    task_id: str
    notification: dict[str, Any] | str
    status_type: str
    progress: float | None
    event_at: datetime.datetime

    @property
    def is_running(self) -> bool:
        """Whether the task still runs (``statusType`` is ``info``)."""
        return self.status_type == STATUS_RUNNING


@dataclass(frozen=True)
class JobLogEntry:
    """One log line of a job (``JobLog``).

    :param created_at: ``createdAt``.
    :param severity: ``info``, ``warning`` or ``error``.
    :param reporting_module: ``reportingModule``.
    :param log_type: ``logType``.
    :param payload: ``payload``.
    :param stage_id: ``processingStageId``, if any.
    :param task_id: ``taskId``, if any.
    """

    created_at: datetime.datetime
    severity: str
    reporting_module: str
    log_type: str
    payload: dict[str, Any]
    stage_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class StagingBatch:
    """A Data Staging batch (``BatchMetadata``).

    :param batch_id: ``batchId``.
    :param display_name: ``displayName``.
    :param batch_type: ``simple-batch``, ``sharded-batch`` or ``multipart-batch``.
    :param content_type: ``batchContentType`` (``videos``, ``images``...).
    :param created_at: ``createdDate``.
    :param expires_at: ``expiryDate``.
    """

    batch_id: str
    display_name: str
    batch_type: str
    content_type: str
    created_at: datetime.datetime
    expires_at: datetime.datetime


@dataclass(frozen=True)
class BatchPart:
    """A part of a multipart batch (``MultipartBatchPartMetadata``).

    :param part_name: ``partName``.
    :param part_type: ``partType``.
    :param content_type: ``contentType``.
    :param description: ``partDescription``, if any.
    :param nested_content_type: ``nestedContentType``, if any.
    """

    part_name: str
    part_type: str
    content_type: str
    description: str | None = None
    nested_content_type: str | None = None


@dataclass(frozen=True)
class StagedFile:
    """A file of a batch (``FileMetadata``); its ``download_url`` is signed, so left out of the ``repr``.

    :param file_name: ``fileName``, the name to save it under.
    :param download_url: ``downloadURL``.
    :param content_type: ``contentType``.
    :param part_name: ``partName``, if any.
    :param shard_id: ``shardId``, if any.
    :param nested_content_type: ``nestedContentType``, if any.
    """

    file_name: str
    download_url: str = field(repr=False)
    content_type: str = ""
    part_name: str | None = None
    shard_id: str | None = None
    nested_content_type: str | None = None

    @property
    def is_archive(self) -> bool:
        """Whether the client unpacks it (``.tar`` or ``.tar.gz``, as the CLI does)."""
        return self.file_name.endswith((".tar", ".tar.gz"))


@dataclass(frozen=True)
class ShardStatus:
    """The status of one shard of a bulk ingest (``ShardDetails``).

    :param shard_id: ``shardId``.
    :param status_name: ``statusName``.
    :param status_type: ``statusType``; one holding ``error`` is a failure (as the CLI reads it).
    :param event_at: ``eventTimestamp``.
    :param objects: ``shardObjectsCount``.
    :param metadata: ``statusMetadata``, if any.
    """

    shard_id: str
    status_name: str
    status_type: str
    event_at: datetime.datetime
    objects: int
    metadata: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """Whether the shard's ingest failed."""
        return STATUS_FAILED in self.status_type.lower()


_Item = TypeVar("_Item")


@dataclass(frozen=True)
class Page(Generic[_Item]):
    """One page of a listing.

    :param items: the page's entries.
    :param next_page_token: the token of the next page; None on the last.
    """

    items: tuple[_Item, ...]
    next_page_token: str | None


def _page(body: Any, key: str, what: str, parse: Callable[[Any], _Item]) -> Page[_Item]:
    top = _object(body, what)
    entries = _field(top, key, list, what)
    token = _optional_field(top, "nextPageToken", str, what)
    return Page(tuple(parse(entry) for entry in entries), token or None)


def parse_workspace(body: Any) -> str:
    """Read ``workspace`` from the answer of ``GET /``."""
    return str(_field(_object(body, "workspace answer"), "workspace", str, "workspace answer"))


def parse_job_metadata(job: Any) -> BatchJob:
    """Read one ``JobMetadata`` object."""
    what = "job"
    entry = _object(job, what)
    note = entry.get("lastNotification")
    return BatchJob(
        job_id=_field(entry, "jobId", str, what),
        name=_field(entry, "name", str, what),
        definition=dict(_object(entry.get("jobDefinition"), "job's jobDefinition")),
        current_stage=_optional_field(entry, "currentStage", str, what),
        planned_stages=tuple(_optional_field(entry, "plannedStages", list, what) or ()),
        error=bool(_optional_field(entry, "error", bool, what)),
        is_terminal=bool(_optional_field(entry, "isTerminal", bool, what)),
        last_notification=dict(note) if isinstance(note, Mapping) else note if isinstance(note, str) else None,
        created_at=parse_datetime(entry.get("createdAt"), "job's createdAt"),
        last_update=parse_datetime(entry.get("lastUpdate"), "job's lastUpdate"),
        restart_overrides=tuple(
            dict(item) for item in _optional_field(entry, "restartParametersOverride", list, what) or ()
        ),
    )


def parse_job(body: Any) -> BatchJob:
    """Read the answer of ``GET /jobs/{job_id}``: ``{"job": JobMetadata}``."""
    return parse_job_metadata(_object(body, "job answer").get("job"))


def parse_jobs_page(body: Any) -> Page[BatchJob]:
    """Read the answer of ``GET /jobs``."""
    return _page(body, "jobs", "job list", parse_job_metadata)


def _parse_stage(entry: Any) -> JobStage:
    what = "stage"
    stage = _object(entry, what)
    return JobStage(
        stage_id=_field(stage, "processingStageId", str, what),
        name=_field(stage, "processingStageName", str, what),
        tasks_number=_field(stage, "tasksNumber", int, what),
        output_batches=tuple(_field(stage, "outputBatches", list, what)),
        started_at=parse_datetime(stage.get("startTimestamp"), "stage's startTimestamp"),
        notification=_field(stage, "notification", (dict, str), what),
        status_type=_field(stage, "statusType", str, what),
        last_event_at=parse_datetime(stage.get("lastEventTimestamp"), "stage's lastEventTimestamp"),
    )


def parse_stages(body: Any) -> tuple[JobStage, ...]:
    """Read the answer of ``GET /jobs/{job_id}/stages``, ordered by start as the CLI shows them."""
    entries = _field(_object(body, "stage list"), "stages", list, "stage list")
    return tuple(sorted((_parse_stage(entry) for entry in entries), key=lambda stage: stage.started_at))


def _parse_task(entry: Any) -> JobTask:
    what = "task"
    task = _object(entry, what)
    progress = _optional_field(task, "progress", (int, float), what)
    return JobTask(
        task_id=_field(task, "taskId", str, what),
        notification=_field(task, "notification", (dict, str), what),
        status_type=_field(task, "statusType", str, what),
        progress=None if progress is None else float(progress),
        event_at=parse_datetime(task.get("eventTimestamp"), "task's eventTimestamp"),
    )


def parse_tasks_page(body: Any) -> Page[JobTask]:
    """Read the answer of ``GET /jobs/{job_id}/stages/{stage_id}/tasks``."""
    return _page(body, "tasks", "task list", _parse_task)


def _parse_log(entry: Any) -> JobLogEntry:
    what = "log entry"
    log = _object(entry, what)
    severity = _field(log, "severity", str, what)
    if severity not in LOG_SEVERITIES:
        raise InvalidAnswerError(f"log entry: severity {severity!r} is not one of {', '.join(LOG_SEVERITIES)}.")
    return JobLogEntry(
        created_at=parse_datetime(log.get("createdAt"), "log entry's createdAt"),
        severity=severity,
        reporting_module=_field(log, "reportingModule", str, what),
        log_type=_field(log, "logType", str, what),
        payload=dict(_field(log, "payload", dict, what)),
        stage_id=_optional_field(log, "processingStageId", str, what),
        task_id=_optional_field(log, "taskId", str, what),
    )


def parse_logs_page(body: Any) -> Page[JobLogEntry]:
    """Read the answer of ``GET /jobs/{job_id}/logs``."""
    return _page(body, "logs", "log list", _parse_log)


def parse_batch_metadata(entry: Any) -> StagingBatch:
    """Read one ``BatchMetadata`` object."""
    what = "batch"
    batch = _object(entry, what)
    return StagingBatch(
        batch_id=_field(batch, "batchId", str, what),
        display_name=_field(batch, "displayName", str, what),
        batch_type=_field(batch, "batchType", str, what),
        content_type=_field(batch, "batchContentType", str, what),
        created_at=parse_datetime(batch.get("createdDate"), "batch's createdDate"),
        expires_at=parse_datetime(batch.get("expiryDate"), "batch's expiryDate"),
    )


def parse_batch(body: Any) -> StagingBatch:
    """Read the answer of ``GET /batches/{batch_id}``: ``{"batch": BatchMetadata}``."""
    return parse_batch_metadata(_object(body, "batch answer").get("batch"))


def parse_batches_page(body: Any) -> Page[StagingBatch]:
    """Read the answer of ``GET /batches``."""
    return _page(body, "batches", "batch list", parse_batch_metadata)


def parse_count(body: Any) -> int:
    """Read ``count`` from the answer of ``GET /batches/{batch_id}/count``."""
    count: int = _field(_object(body, "count answer"), "count", int, "count answer")
    return count


def _parse_part(entry: Any) -> BatchPart:
    what = "batch part"
    part = _object(entry, what)
    return BatchPart(
        part_name=_field(part, "partName", str, what),
        part_type=_field(part, "partType", str, what),
        content_type=_field(part, "contentType", str, what),
        description=_optional_field(part, "partDescription", str, what),
        nested_content_type=_optional_field(part, "nestedContentType", str, what),
    )


def parse_parts(body: Any) -> tuple[BatchPart, ...]:
    """Read the answer of ``GET /batches/{batch_id}/parts``."""
    entries = _field(_object(body, "part list"), "batchParts", list, "part list")
    return tuple(_parse_part(entry) for entry in entries)


def _parse_file(entry: Any) -> StagedFile:
    what = "file entry"
    item = _object(entry, what)
    return StagedFile(
        file_name=_field(item, "fileName", str, what),
        download_url=_field(item, "downloadURL", str, what),
        content_type=_field(item, "contentType", str, what),
        part_name=_optional_field(item, "partName", str, what),
        shard_id=_optional_field(item, "shardId", str, what),
        nested_content_type=_optional_field(item, "nestedContentType", str, what),
    )


def parse_files_page(body: Any) -> Page[StagedFile]:
    """Read the answer of ``GET /batches/{batch_id}/list``."""
    return _page(body, "filesMetadata", "file list", _parse_file)


def _parse_shard(entry: Any) -> ShardStatus:
    what = "shard"
    shard = _object(entry, what)
    metadata = _optional_field(shard, "statusMetadata", dict, what)
    return ShardStatus(
        shard_id=_field(shard, "shardId", str, what),
        status_name=_field(shard, "statusName", str, what),
        status_type=_field(shard, "statusType", str, what),
        event_at=parse_datetime(shard.get("eventTimestamp"), "shard's eventTimestamp"),
        objects=_field(shard, "shardObjectsCount", int, what),
        metadata=None if metadata is None else dict(metadata),
    )


def parse_shards_page(body: Any) -> Page[ShardStatus]:
    """Read the answer of ``GET /batches/{batch_id}/shards``."""
    return _page(body, "shards", "shard list", _parse_shard)


def parse_upload_details(body: Any) -> tuple[str, dict[str, str]]:
    """Read ``signedURLDetails`` from the answer of ``upload/video``: the PUT URL and the headers to send.

    :return: ``(upload_url, extension_headers)``.
    """
    details = _object(_object(body, "upload answer").get("signedURLDetails"), "signedURLDetails")
    url = _field(details, "uploadURL", str, "signedURLDetails")
    headers = _optional_field(details, "extensionHeaders", dict, "signedURLDetails") or {}
    return url, {str(key): str(value) for key, value in headers.items()}


def parse_ingest(body: Any) -> tuple[str, bool]:
    """Read the answer of ``bulk-upload/video-references``: ``(ingestId, duplicated)``."""
    top = _object(body, "ingest answer")
    return _field(top, "ingestId", str, "ingest answer"), bool(
        _optional_field(top, "duplicated", bool, "ingest answer")
    )

"""The Video Inference API contract: endpoints, job states, model specs, validation and parsing.

Pure and free of I/O, so that the sync hook, the async trigger client, the operators and the
sensor all validate input and read answers the same way. User input is validated here once,
before any network call.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_videoinfer.exceptions import (
    VideoInferAuthError,
    VideoInferError,
    VideoInferInvalidRequestError,
    VideoInferJobFailedError,
    VideoInferMalformedResponseError,
    VideoInferNotFoundError,
    VideoInferRateLimitError,
    VideoInferResponseError,
    VideoInferServerError,
    VideoInferValidationError,
)
from airflow_provider_videoinfer.redaction import redact as redact  # re-exported for the contract's users

DEFAULT_BASE_URL = "https://api.roboflow.com"

# (method, path) of each endpoint; the hosted service accepts each path with and without a
# trailing slash, and the official SDK calls them without one.
WORKSPACE_ENDPOINT = ("GET", "/")
UPLOAD_URL_ENDPOINT = ("POST", "/video_upload_signed_url")
SUBMIT_JOB_ENDPOINT = ("POST", "/videoinfer")
JOB_STATUS_ENDPOINT = ("GET", "/videoinfer")

VIDEO_EXTENSIONS = ("mp4", "avi", "mkv", "webm")
MAX_INFER_FPS = 120
INFERENCE_TYPES = (
    "object-detection",
    "classification",
    "instance-segmentation",
    "semantic-segmentation",
    "keypoint-detection",
    "gaze-detection",
    "clip-embed-image",
)

#: HTTP statuses that may pass if the same request is sent again (anything else 4xx/5xx will not).
RETRYABLE_STATUS_CODES = frozenset({429, 500, 502, 503, 504})


class JobStatus(str, Enum):
    """What a job's integer ``status`` code means: 0 succeeded, 1 running, above 1 failed."""

    SUCCEEDED = "succeeded"
    RUNNING = "running"
    FAILED = "failed"

    @classmethod
    def from_code(cls, code: int) -> JobStatus:
        """Map the service's integer status code to a state.

        :param code: the ``status`` value the service answered; must be a non-negative int.
        """
        if code == 0:
            return cls.SUCCEEDED
        if code == 1:
            return cls.RUNNING
        if code > 1:
            return cls.FAILED
        raise ValueError(f"status code must be 0 or more, got {code}")

    @property
    def is_terminal(self) -> bool:
        """Whether the job has stopped for good (succeeded or failed)."""
        return self is not JobStatus.RUNNING


@dataclass(frozen=True)
class JobState:
    """One answer of the job status endpoint, typed.

    :param job_id: the job's id.
    :param status: what the code means.
    :param code: the raw integer ``status`` the service answered.
    :param output_url: the signed URL of the result JSON; set only when succeeded.
    :param error: the service's ``error`` or ``message`` text; set only when failed.
    """

    job_id: str
    status: JobStatus
    code: int
    output_url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One model of a job.

    :param model_id: the model's id, e.g. ``"rock-paper-scissors-presentation"`` or ``"clip"``.
    :param model_version: its version; an int is accepted and sent as a string.
    :param inference_type: one of :data:`INFERENCE_TYPES`.
    :param inference_params: optional parameters such as ``{"confidence": 0.4}``; omitted when None.
    """

    model_id: str
    model_version: str
    inference_type: str
    inference_params: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        validate_model_fields(self.model_id, self.model_version, self.inference_type, self.inference_params)
        object.__setattr__(self, "model_version", str(self.model_version).strip())
        object.__setattr__(self, "model_id", self.model_id.strip())

    @classmethod
    def from_value(cls, value: ModelSpec | Mapping[str, Any], position: int = 0) -> ModelSpec:
        """Build a spec from a ``ModelSpec`` or a dict with the contract's keys.

        :param value: the model as the user gave it.
        :param position: its index in the user's list, named in error messages.
        """
        if isinstance(value, ModelSpec):
            return value
        if not isinstance(value, Mapping):
            raise VideoInferValidationError(
                f"models[{position}] must be a dict or ModelSpec, got {type(value).__name__}: "
                'use {"model_id": ..., "model_version": ..., "inference_type": ...}.'
            )
        unknown = set(value) - {"model_id", "model_version", "inference_type", "inference_params"}
        if unknown:
            raise VideoInferValidationError(
                f"models[{position}] has unknown keys {sorted(unknown)}: allowed are model_id, "
                "model_version, inference_type and inference_params."
            )
        try:
            return cls(
                model_id=value.get("model_id"),  # type: ignore[arg-type]
                model_version=value.get("model_version"),  # type: ignore[arg-type]
                inference_type=value.get("inference_type"),  # type: ignore[arg-type]
                inference_params=value.get("inference_params"),
            )
        except VideoInferValidationError as err:
            raise VideoInferValidationError(f"models[{position}]: {err}") from None

    def to_payload(self) -> dict[str, Any]:
        """Return the model entry of the ``/videoinfer`` request body."""
        payload: dict[str, Any] = {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "inference_type": self.inference_type,
        }
        if self.inference_params is not None:
            payload["inference_params"] = dict(self.inference_params)
        return payload


def validate_model_fields(model_id: Any, model_version: Any, inference_type: Any, inference_params: Any) -> None:
    """Check one model's fields; raise :class:`VideoInferValidationError` naming the bad one."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise VideoInferValidationError(
            f"model_id must be a non-empty string, got {model_id!r}: e.g. 'clip' or 'my-project'."
        )
    if isinstance(model_version, bool) or not isinstance(model_version, (str, int)):
        raise VideoInferValidationError(
            f"model_version of model {model_id!r} must be a string or an integer, got {model_version!r}."
        )
    if not str(model_version).strip():
        raise VideoInferValidationError(f"model_version of model {model_id!r} must not be empty.")
    if inference_type not in INFERENCE_TYPES:
        raise VideoInferValidationError(
            f"inference_type {inference_type!r} of model {model_id!r} is not supported: "
            f"use one of {', '.join(INFERENCE_TYPES)}."
        )
    if inference_params is not None and not isinstance(inference_params, Mapping):
        raise VideoInferValidationError(
            f"inference_params of model {model_id!r} must be a dict such as {{'confidence': 0.4}}, "
            f"got {type(inference_params).__name__}."
        )


def validate_models(models: Any) -> list[ModelSpec]:
    """Check a job's model list and return it as specs.

    :param models: a non-empty list of dicts or :class:`ModelSpec`; a single one is accepted too.
    """
    if isinstance(models, (ModelSpec, Mapping)):
        models = [models]
    if isinstance(models, (str, bytes)) or not isinstance(models, Iterable):
        raise VideoInferValidationError(
            f"models must be a list of model dicts or ModelSpec, got {type(models).__name__}."
        )
    specs = [ModelSpec.from_value(model, position) for position, model in enumerate(models)]
    if not specs:
        raise VideoInferValidationError("models is empty: a job needs at least one model.")
    ids = [spec.model_id for spec in specs]
    duplicates = sorted({model_id for model_id in ids if ids.count(model_id) > 1})
    if duplicates:
        raise VideoInferValidationError(
            f"model_id {', '.join(map(repr, duplicates))} appears twice or more in models: the result "
            "has one list per model_id, so list each model once."
        )
    return specs


def plain_models(models: Any) -> Any:
    """Return ``models`` with every :class:`ModelSpec` turned into its dict, other values unchanged.

    Operator fields must serialize with the DAG and render as JSON, so specs are kept as dicts.

    :param models: a spec, a dict, a list of them, or a template.
    """
    if isinstance(models, ModelSpec):
        return models.to_payload()
    if isinstance(models, (list, tuple)):
        return [model.to_payload() if isinstance(model, ModelSpec) else model for model in models]
    return models


def validate_infer_fps(infer_fps: Any) -> int:
    """Check the sampling rate: an integer from 1 to :data:`MAX_INFER_FPS`.

    :param infer_fps: an int, or an integral float or numeric string (as templates render them).
    """
    value = infer_fps
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise VideoInferValidationError(f"infer_fps must be a whole number of frames per second, got {infer_fps!r}.")
    if not 1 <= value <= MAX_INFER_FPS:
        raise VideoInferValidationError(
            f"infer_fps must be between 1 and {MAX_INFER_FPS}, got {value}: "
            "pick a rate at most the video's frame rate, ideally a divisor of it."
        )
    return value


def _validate_http_url(value: Any, name: str, what_it_is: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise VideoInferValidationError(f"{name} must be a non-empty http(s) URL, got {value!r}: pass {what_it_is}.")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise VideoInferValidationError(
            f"{name} must be an http:// or https:// URL, got {redact(value)!r}: pass {what_it_is}."
        )
    return value.strip()


def validate_input_url(input_url: Any) -> str:
    """Check that ``input_url`` is an absolute http(s) URL.

    :param input_url: the signed upload URL, or any public video URL.
    """
    return _validate_http_url(
        input_url, "input_url", "the signed URL of an uploaded video, or a public http(s) video URL"
    )


def validate_output_url(output_url: Any) -> str:
    """Check that ``output_url`` (a job's ``output_signed_url``) is an absolute http(s) URL."""
    return _validate_http_url(output_url, "output_url", "the output_signed_url of a job that succeeded")


def validate_job_id(job_id: Any) -> str:
    """Check that ``job_id`` is a non-empty string without spaces."""
    if not isinstance(job_id, str) or not job_id.strip() or any(ch.isspace() for ch in job_id.strip()):
        raise VideoInferValidationError(
            f"job_id must be a non-empty string without spaces, got {job_id!r}: pass the job_id that "
            "the job submission answered."
        )
    return job_id.strip()


def validate_video_file_name(file_name: Any) -> str:
    """Check an upload's file name: no folders, and a supported video extension.

    :param file_name: e.g. ``"traffic.mp4"``; the extension may be in any case.
    """
    if not isinstance(file_name, str) or not file_name.strip():
        raise VideoInferValidationError(f"file_name must be a non-empty string, got {file_name!r}.")
    name = file_name.strip()
    if "/" in name or "\\" in name or name in (".", ".."):
        raise VideoInferValidationError(
            f"file_name {name!r} must be a bare file name without folders, e.g. 'video.mp4'."
        )
    suffix = PurePosixPath(name).suffix.lstrip(".").lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise VideoInferValidationError(
            f"{name!r} has an unsupported extension {('.' + suffix) if suffix else '(none)'}: the "
            f"service accepts {', '.join('.' + ext for ext in VIDEO_EXTENSIONS)} (any case); "
            "convert the video or pass file_name with a supported extension."
        )
    return name


@dataclass(frozen=True)
class JobRequest:
    """One validated job: built once from the user's values, then passed down unchanged.

    Build it with :meth:`build`, which validates every field.

    :param input_url: the video's URL.
    :param infer_fps: frames per second to sample.
    :param models: the models to run, in the user's order.
    """

    input_url: str
    infer_fps: int
    models: tuple[ModelSpec, ...]

    @classmethod
    def build(cls, input_url: Any, infer_fps: Any, models: Any) -> JobRequest:
        """Validate a job's inputs (as the user or a template gave them) and return the request.

        :param input_url: see :func:`validate_input_url`.
        :param infer_fps: see :func:`validate_infer_fps`.
        :param models: see :func:`validate_models`.
        """
        return cls(validate_input_url(input_url), validate_infer_fps(infer_fps), tuple(validate_models(models)))

    def to_payload(self) -> dict[str, Any]:
        """The ``/videoinfer`` request body."""
        return {
            "input_url": self.input_url,
            "infer_fps": self.infer_fps,
            "models": [spec.to_payload() for spec in self.models],
        }

    @property
    def fingerprint(self) -> str:
        """A digest of the request: a retry reconnects to a saved job only when this still matches."""
        return hashlib.sha256(json.dumps(self.to_payload(), sort_keys=True).encode()).hexdigest()

    @property
    def model_names(self) -> str:
        """The model ids, comma-separated, for messages."""
        return ", ".join(spec.model_id for spec in self.models)


def build_submit_payload(input_url: Any, infer_fps: Any, models: Any) -> dict[str, Any]:
    """Validate a job's inputs and return the ``/videoinfer`` request body."""
    return JobRequest.build(input_url, infer_fps, models).to_payload()


def status_request(job_id: str) -> tuple[tuple[str, str], dict[str, str]]:
    """The status endpoint and query (without the key) for one job; both transports send this.

    :param job_id: a job id, validated here.
    """
    return JOB_STATUS_ENDPOINT, {"job_id": validate_job_id(job_id)}


def _require_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise VideoInferResponseError(f"{what}: expected a JSON object from the service, got {type(body).__name__}.")
    return body


def parse_upload_url(body: Any) -> str:
    """Read ``signed_url`` from the answer of the upload-URL endpoint."""
    url = _require_object(body, "upload URL request").get("signed_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise VideoInferResponseError("upload URL request: the answer has no valid 'signed_url'.")
    return url


def parse_job_id(body: Any) -> str:
    """Read ``job_id`` from the answer of the job submission endpoint."""
    job_id = _require_object(body, "job submission").get("job_id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise VideoInferResponseError("job submission: the answer has no 'job_id'; no job id to wait for.")
    return job_id


def parse_job_state(job_id: str, body: Any) -> JobState:
    """Read a job's state from the status endpoint's answer.

    A missing or non-integer ``status`` is an error, never a success; a succeeded job without
    ``output_signed_url`` is an error too.
    """
    data = _require_object(body, f"status of job {job_id}")
    code = data.get("status")
    if isinstance(code, bool) or not isinstance(code, int) or code < 0:
        raise VideoInferResponseError(
            f"status of job {job_id}: the answer has no valid integer 'status' (got {code!r}); "
            "treating it as an error, not a success."
        )
    status = JobStatus.from_code(code)
    output_url = data.get("output_signed_url")
    if status is JobStatus.SUCCEEDED and not (isinstance(output_url, str) and output_url):
        raise VideoInferResponseError(f"job {job_id} reports success but the answer has no 'output_signed_url'.")
    error = None
    if status is JobStatus.FAILED:
        raw = data.get("error") or data.get("message")
        error = str(raw) if raw else None
    return JobState(
        job_id=job_id,
        status=status,
        code=code,
        output_url=output_url if status is JobStatus.SUCCEEDED else None,
        error=error,
    )


def job_failed(state: JobState) -> VideoInferJobFailedError:
    """Return the exception for a job that ended with a failure status."""
    return VideoInferJobFailedError(state.job_id, state.code, state.error)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds, or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(
    status_code: int,
    body_text: str,
    what: str,
    retry_after: float | None = None,
    *,
    signed_url: bool = False,
) -> VideoInferError:
    """Return the provider exception for an HTTP error answer.

    :param status_code: the HTTP status, 400 or above.
    :param body_text: the answer's body; shortened and redacted into the message.
    :param what: what was being done, e.g. ``"status of job 123"``; named in the message.
    :param retry_after: seconds from the answer's ``Retry-After`` header, if any.
    :param signed_url: the request went to a signed upload or result URL, which carries no API
        key: a refusal then means the URL expired or was altered, not that the key is wrong.
    """
    detail = redact(body_text or "").strip()[:300] or "no details"
    if status_code in (401, 403) and signed_url:
        return VideoInferAuthError(
            f"{what}: the signed URL was refused (HTTP {status_code}: {detail}). Signed URLs expire and "
            "must be used unchanged: get a fresh one (upload the video again, or read the job's status "
            "again for a new output_signed_url)."
        )
    if status_code in (401, 403):
        return VideoInferAuthError(
            f"{what}: the service refused the API key (HTTP {status_code}: {detail}). Check the "
            "password of the videoinfer connection and that the key's workspace has access."
        )
    if status_code == 404:
        return VideoInferNotFoundError(f"{what}: not found (HTTP 404: {detail}).")
    if status_code == 429:
        return VideoInferRateLimitError(
            f"{what}: rate limited (HTTP 429: {detail}); poll a job at most once a minute.",
            http_status=status_code,
            retry_after=retry_after,
        )
    if status_code in RETRYABLE_STATUS_CODES:
        return VideoInferServerError(
            f"{what}: the service failed (HTTP {status_code}: {detail}).",
            http_status=status_code,
            retry_after=retry_after,
        )
    if status_code >= 500:
        return VideoInferInvalidRequestError(
            f"{what}: the service cannot serve this request (HTTP {status_code}: {detail}); sending it "
            "again will not help. Check the connection's Base URL."
        )
    return VideoInferInvalidRequestError(f"{what}: the service refused the request (HTTP {status_code}: {detail}).")


def decode_response(
    status_code: int,
    headers: Mapping[str, str],
    text: str,
    what: str,
    secret: str | None = None,
    *,
    signed_url: bool = False,
) -> Any:
    """Turn one HTTP answer into its JSON value, or raise the provider's exception for it.

    The one place where an answer becomes a value or an error, for both transports.

    :param status_code: the HTTP status.
    :param headers: the answer's headers (case-insensitive mapping; ``retry-after`` is read).
    :param text: the answer's body.
    :param what: what was being done, named in error messages.
    :param secret: the API key, masked in any message.
    :param signed_url: see :func:`error_for_status`.
    """
    if status_code >= 400:
        retry_after = parse_retry_after(headers.get("retry-after"))
        raise error_for_status(status_code, redact(text, secret), what, retry_after, signed_url=signed_url)
    try:
        return json.loads(text)
    except ValueError:
        raise VideoInferMalformedResponseError(
            f"{what}: the service answered HTTP {status_code} with a body that is not JSON: "
            f"{redact(text, secret)[:120]!r}.",
            http_status=status_code,
        ) from None

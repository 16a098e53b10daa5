"""A job as the contract knows it: the request that creates it and the status it reports.

:class:`JobRequest` is built once from the user's values (validated by
:mod:`videoinfer_contract.validation`), then carried unchanged to the wire; :class:`JobStatus`
is what a job's integer ``status`` means.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.validation import (
    validate_infer_fps,
    validate_inference_params,
    validate_input_url,
    validate_model_fields,
)

# (method, path) of each endpoint; the hosted service accepts each path with and without a
# trailing slash, and the official SDK calls them without one.
WORKSPACE_ENDPOINT = ("GET", "/")
UPLOAD_URL_ENDPOINT = ("POST", "/video_upload_signed_url")
SUBMIT_JOB_ENDPOINT = ("POST", "/videoinfer")
JOB_STATUS_ENDPOINT = ("GET", "/videoinfer")
# Longer text is not read as a Python literal to say what it holds (a model list is a few hundred characters).
_MAX_LITERAL_CHARS = 100_000


class JobStatus(StrEnum):
    """What a job's integer ``status`` code means: 0 succeeded, 1 running, above 1 failed.

    ``QUEUED`` is the local server's own word for a job accepted but not started; like the
    hosted service, it reports it as 1, which reads back as ``RUNNING``.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def from_code(cls, code: int) -> JobStatus:
        """Map the service's integer status code to a status.

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
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


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
        object.__setattr__(self, "inference_params", validate_inference_params(self.model_id, self.inference_params))
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
            raise InvalidInputError(
                f"models[{position}] must be a dict or ModelSpec, got {type(value).__name__}: "
                'use {"model_id": ..., "model_version": ..., "inference_type": ...}.'
            )
        unknown = set(value) - {"model_id", "model_version", "inference_type", "inference_params"}
        if unknown:
            raise InvalidInputError(
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
        except InvalidInputError as err:
            raise InvalidInputError(f"models[{position}]: {err}") from None

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


def validate_models(models: Any) -> list[ModelSpec]:
    """Check a job's model list and return it as specs.

    :param models: a non-empty list of dicts or :class:`ModelSpec`; a single one is accepted too.
    """
    if isinstance(models, (ModelSpec, Mapping)):
        models = [models]
    kind = _rendered_as_text(models) if isinstance(models, str) else None
    if kind is not None:
        raise InvalidInputError(
            f"models is a string holding {kind} ({models.strip()[:60]!r}...), not a list: a Jinja template "
            "renders as text. Set render_template_as_native_obj=True on the DAG, or pass the list itself."
        )
    if isinstance(models, (str, bytes)) or not isinstance(models, Iterable):
        raise InvalidInputError(f"models must be a list of model dicts or ModelSpec, got {type(models).__name__}.")
    specs = [ModelSpec.from_value(model, position) for position, model in enumerate(models)]
    if not specs:
        raise InvalidInputError("models is empty: a job needs at least one model.")
    ids = [spec.model_id for spec in specs]
    duplicates = sorted({model_id for model_id in ids if ids.count(model_id) > 1})
    if duplicates:
        raise InvalidInputError(
            f"model_id {', '.join(map(repr, duplicates))} appears twice or more in models: the result "
            "has one list per model_id, so list each model once."
        )
    return specs


def _rendered_as_text(text: str) -> str | None:
    """What a list or dict rendered as text is: "JSON" (a ``tojson`` filter), "a Python list" or "a Python
    dict" (Python's repr, as a template renders a list without native rendering); None for other text."""
    try:
        value = json.loads(text)
    except ValueError:
        pass
    else:
        return "JSON" if isinstance(value, (list, dict)) else None
    if len(text) > _MAX_LITERAL_CHARS or not text.lstrip().startswith(("[", "{")):
        return None
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return f"a Python {type(value).__name__}" if isinstance(value, (list, dict)) else None


def job_fingerprint(input_id: str, infer_fps: Any, models: Any) -> str:
    """A digest of a job's inputs: a retry of a task reconnects to its saved job only while this matches.

    :param input_id: what names the video for good: the ``input_url``, or the storage URI a
        presigned ``input_url`` was made from (a presigned URL changes on every try).
    :param infer_fps: see :func:`validate_infer_fps` (validated here).
    :param models: see :func:`validate_models` (validated here).
    """
    payload = {
        "input_url": input_id,
        "infer_fps": validate_infer_fps(infer_fps),
        "models": [spec.to_payload() for spec in validate_models(models)],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class JobRequest:
    """One validated job: built once from the user's values, then passed down unchanged.

    Build it with :meth:`build`, which validates every field.

    :param input_url: the video's URL; left out of the ``repr``, as a signed URL is a credential.
    :param infer_fps: frames per second to sample.
    :param models: the models to run, in the user's order.
    :param source: the storage URI (``s3://conn_id@bucket/key``) that ``input_url`` was presigned
        from; None when the user gave ``input_url`` itself. It names the job's video in
        :attr:`fingerprint`, and is never sent.
    """

    input_url: str = field(repr=False)
    infer_fps: int
    models: tuple[ModelSpec, ...]
    source: str | None = None

    @classmethod
    def build(cls, input_url: Any, infer_fps: Any, models: Any, source: str | None = None) -> JobRequest:
        """Validate a job's inputs (as the user or a template gave them) and return the request.

        :param input_url: see :func:`validate_input_url`.
        :param infer_fps: see :func:`validate_infer_fps`.
        :param models: see :func:`validate_models`.
        :param source: the storage URI ``input_url`` was presigned from, if it was.
        """
        return cls(validate_input_url(input_url), validate_infer_fps(infer_fps), tuple(validate_models(models)), source)

    def to_payload(self) -> dict[str, Any]:
        """The ``/videoinfer`` request body."""
        return {
            "input_url": self.input_url,
            "infer_fps": self.infer_fps,
            "models": [spec.to_payload() for spec in self.models],
        }

    @property
    def fingerprint(self) -> str:
        """A digest of the request (see :func:`job_fingerprint`): of its ``source`` when it has one, so
        that a new presigned URL of the same object is the same job."""
        return job_fingerprint(self.source or self.input_url, self.infer_fps, self.models)

    @property
    def model_names(self) -> str:
        """The model ids, comma-separated, for messages."""
        return ", ".join(spec.model_id for spec in self.models)

"""The shared contract (:mod:`videoinfer_contract`) as the provider uses it: raising Airflow's errors.

The provider reaches the contract through this module only. Its validators raise
:class:`~airflow_provider_videoinfer.exceptions.VideoInferValidationError`, an Airflow
``AirflowFailException`` (a retry cannot fix bad input), instead of the contract's plain
:class:`~videoinfer_contract.errors.InvalidInputError`; the values and types pass through unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import videoinfer_contract.batch as batch
from airflow_provider_videoinfer.exceptions import VideoInferValidationError
from videoinfer_contract import jobs, validation
from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.jobs import (
    JOB_STATUS_ENDPOINT,
    SUBMIT_JOB_ENDPOINT,
    UPLOAD_URL_ENDPOINT,
    WORKSPACE_ENDPOINT,
    JobRequest,
    JobState,
    JobStatus,
    ModelSpec,
)
from videoinfer_contract.redaction import redact
from videoinfer_contract.validation import (
    INFERENCE_TYPES,
    MAX_POLL_INTERVAL,
    MAX_WAIT_SECONDS,
    VIDEO_EXTENSIONS,
    VIDEO_HEADER_BYTES,
)

__all__ = [
    "INFERENCE_TYPES",
    "JOB_STATUS_ENDPOINT",
    "MAX_POLL_INTERVAL",
    "MAX_WAIT_SECONDS",
    "SUBMIT_JOB_ENDPOINT",
    "UPLOAD_URL_ENDPOINT",
    "VIDEO_EXTENSIONS",
    "VIDEO_HEADER_BYTES",
    "WORKSPACE_ENDPOINT",
    "JobRequest",
    "JobState",
    "JobStatus",
    "ModelSpec",
    "build_job_request",
    "job_fingerprint",
    "redact",
    "validate_flag",
    "validate_infer_fps",
    "validate_inference_types",
    "validate_input_url",
    "validate_job_id",
    "validate_models",
    "validate_output_url",
    "validate_presigned_url_lifetime",
    "validate_seconds",
    "validate_video_file_name",
    "validate_video_header",
    "validate_wait",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _raising_provider_errors(func: _F) -> _F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VideoInferValidationError:
            raise
        except InvalidInputError as err:
            raise VideoInferValidationError(str(err)) from None

    return wrapper  # type: ignore[return-value]


build_job_request = _raising_provider_errors(JobRequest.build)
validate_models = _raising_provider_errors(jobs.validate_models)
validate_infer_fps = _raising_provider_errors(validation.validate_infer_fps)
validate_input_url = _raising_provider_errors(validation.validate_input_url)
validate_output_url = _raising_provider_errors(validation.validate_output_url)
validate_presigned_url_lifetime = _raising_provider_errors(validation.validate_presigned_url_lifetime)
job_fingerprint = _raising_provider_errors(jobs.job_fingerprint)
validate_job_id = _raising_provider_errors(validation.validate_job_id)
validate_video_file_name = _raising_provider_errors(validation.validate_video_file_name)
validate_inference_types = _raising_provider_errors(validation.validate_inference_types)
validate_video_header = _raising_provider_errors(validation.validate_video_header)
validate_flag = _raising_provider_errors(validation.validate_flag)
validate_seconds = _raising_provider_errors(validation.validate_seconds)
validate_wait = _raising_provider_errors(validation.validate_wait)

# Batch Processing (the second backend): the same wrapping, for its ids and its job definition.
build_batch_job_definition = _raising_provider_errors(batch.VideoJobDefinition.build)
validate_batch_job_id = _raising_provider_errors(batch.validate_batch_job_id)
validate_staging_batch_id = _raising_provider_errors(batch.validate_staging_batch_id)
validate_workflow_id = _raising_provider_errors(batch.validate_workflow_id)
validate_workflow_parameters = _raising_provider_errors(batch.validate_workflow_parameters)
validate_max_video_fps = _raising_provider_errors(batch.validate_max_video_fps)

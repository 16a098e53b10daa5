"""Every check of user input, in one place: the provider runs them before any call, the local
server on every request it receives, so both refuse the same input with the same message.

Each function returns the value as the contract wants it, or raises
:class:`~videoinfer_contract.errors.InvalidInputError` naming the value, the problem and the fix.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from videoinfer_contract.errors import InvalidInputError
from videoinfer_contract.redaction import redact

VIDEO_EXTENSIONS = ("mp4", "avi", "mkv", "webm")
MAX_INFER_FPS = 120
#: The longest a presigned input URL may live, in seconds: S3 (SigV4) and Google Cloud Storage (V4)
#: refuse to sign for more than seven days.
MAX_PRESIGNED_URL_LIFETIME = 7 * 24 * 3600
#: The shortest: below a minute, a mistake (minutes or hours given as seconds) is more likely than a wish.
MIN_PRESIGNED_URL_LIFETIME = 60
INFERENCE_TYPES = (
    "object-detection",
    "classification",
    "instance-segmentation",
    "semantic-segmentation",
    "keypoint-detection",
    "gaze-detection",
    "clip-embed-image",
)



def validate_model_fields(model_id: Any, model_version: Any, inference_type: Any, inference_params: Any) -> None:
    """Check one model's fields; raise :class:`InvalidInputError` naming the bad one."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InvalidInputError(
            f"model_id must be a non-empty string, got {model_id!r}: e.g. 'clip' or 'my-project'."
        )
    if isinstance(model_version, bool) or not isinstance(model_version, (str, int)):
        raise InvalidInputError(
            f"model_version of model {model_id!r} must be a string or an integer, got {model_version!r}."
        )
    if not str(model_version).strip():
        raise InvalidInputError(f"model_version of model {model_id!r} must not be empty.")
    if inference_type not in INFERENCE_TYPES:
        raise InvalidInputError(
            f"inference_type {inference_type!r} of model {model_id!r} is not supported: "
            f"use one of {', '.join(INFERENCE_TYPES)}."
        )
    if inference_params is not None and not isinstance(inference_params, Mapping):
        raise InvalidInputError(
            f"inference_params of model {model_id!r} must be a dict such as {{'confidence': 0.4}}, "
            f"got {type(inference_params).__name__}."
        )


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
        raise InvalidInputError(f"infer_fps must be a whole number of frames per second, got {infer_fps!r}.")
    if not 1 <= value <= MAX_INFER_FPS:
        raise InvalidInputError(
            f"infer_fps must be between 1 and {MAX_INFER_FPS}, got {value}: "
            "pick a rate at most the video's frame rate, ideally a divisor of it."
        )
    return value


def _validate_http_url(value: Any, name: str, what_it_is: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty http(s) URL, got {value!r}: pass {what_it_is}.")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(
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


def validate_presigned_url_lifetime(lifetime: Any) -> int:
    """Check how long a presigned input URL stays valid: from one minute to seven days.

    :param lifetime: seconds (an int, or an integral float), or a ``datetime.timedelta``.
    :return: whole seconds.
    """
    value = lifetime.total_seconds() if isinstance(lifetime, datetime.timedelta) else lifetime
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"presigned_url_lifetime must be whole seconds or a timedelta, got {lifetime!r}: e.g. 86400 for a day."
        )
    if not MIN_PRESIGNED_URL_LIFETIME <= value <= MAX_PRESIGNED_URL_LIFETIME:
        raise InvalidInputError(
            f"presigned_url_lifetime must be from {MIN_PRESIGNED_URL_LIFETIME} s to {MAX_PRESIGNED_URL_LIFETIME} s "
            f"(7 days, the most S3 and Google Cloud Storage sign for), got {value} s: give the service time to "
            "fetch the video from its queue, and no more."
        )
    return value


def validate_output_url(output_url: Any) -> str:
    """Check that ``output_url`` (a job's ``output_signed_url``) is an absolute http(s) URL."""
    return _validate_http_url(output_url, "output_url", "the output_signed_url of a job that succeeded")


def validate_job_id(job_id: Any) -> str:
    """Check that ``job_id`` is a non-empty string without spaces."""
    if not isinstance(job_id, str) or not job_id.strip() or any(ch.isspace() for ch in job_id.strip()):
        raise InvalidInputError(
            f"job_id must be a non-empty string without spaces, got {job_id!r}: pass the job_id that "
            "the job submission answered."
        )
    return job_id.strip()


def validate_video_file_name(file_name: Any) -> str:
    """Check an upload's file name: no folders, and a supported video extension.

    :param file_name: e.g. ``"traffic.mp4"``; the extension may be in any case.
    """
    if not isinstance(file_name, str) or not file_name.strip():
        raise InvalidInputError(f"file_name must be a non-empty string, got {file_name!r}.")
    name = file_name.strip()
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidInputError(
            f"file_name {name!r} must be a bare file name without folders, e.g. 'video.mp4'."
        )
    suffix = PurePosixPath(name).suffix.lstrip(".").lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise InvalidInputError(
            f"{name!r} has an unsupported extension {('.' + suffix) if suffix else '(none)'}: the "
            f"service accepts {', '.join('.' + ext for ext in VIDEO_EXTENSIONS)} (any case); "
            "convert the video or pass file_name with a supported extension."
        )
    return name


def validate_inference_types(inference_types: Mapping[str, str] | None) -> dict[str, str]:
    """Check an optional ``{model_id: inference_type}`` hint; return it as a dict (empty for None)."""
    if inference_types is None:
        return {}
    if not isinstance(inference_types, Mapping):
        raise InvalidInputError(
            f"inference_types must be a dict {{model_id: inference_type}}, got {type(inference_types).__name__}."
        )
    for model_id, inference_type in inference_types.items():
        if inference_type not in INFERENCE_TYPES:
            raise InvalidInputError(
                f"inference_types[{model_id!r}] is {inference_type!r}: use one of {', '.join(INFERENCE_TYPES)}."
            )
    return dict(inference_types)

"""Every check of user input, in one place: the provider runs them before any call, the local
server on every request it receives, so both refuse the same input with the same message.

Each function returns the value as the contract wants it, or raises
:class:`~videoinfer_contract.errors.InvalidInputError` naming the value, the problem and the fix.
"""

from __future__ import annotations

import datetime
import math
import numbers
import unicodedata
from collections.abc import Mapping
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
#: The longest pause between two polls of a job, and the longest wait for one, in seconds: far
#: beyond any real need, and small enough that a deadline stays a date Python can print.
MAX_POLL_INTERVAL = 24 * 3600.0
MAX_WAIT_SECONDS = 366 * 24 * 3600.0
#: Nesting deeper than this in ``inference_params`` is refused (it is a handful of options).
MAX_PARAMS_DEPTH = 32

# The first bytes of each video container the service reads: (offset, bytes, container).
_VIDEO_SIGNATURES = (
    (4, b"ftyp", "MP4"),
    # QuickTime-style files may start with another top-level box than ftyp.
    (4, b"moov", "MP4"),
    (4, b"mdat", "MP4"),
    (4, b"free", "MP4"),
    (4, b"skip", "MP4"),
    (4, b"wide", "MP4"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
)
# What a file that is not a video usually is, to say so in the message.
_OTHER_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"ID3", "an MP3 audio file"),
    (b"<", "HTML or XML text"),
    (b"{", "JSON text"),
)
#: Bytes of a file's start that :func:`validate_video_header` needs.
VIDEO_HEADER_BYTES = 16


_CONTROL_NAMES = {"\0": "NUL", "\r": "a carriage return", "\n": "a line feed", "\t": "a tab"}


def _control_character(text: str) -> tuple[int, str] | None:
    """The position and name of the first control character of ``text`` (NUL, CR, LF, tab...), if any."""
    for position, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            named = _CONTROL_NAMES.get(char) or unicodedata.name(char, "")
            return position, named or f"U+{ord(char):04X}"
    return None


def _json_params(value: Any, path: str, model_id: str, depth: int = 0) -> Any:
    """``value`` as plain JSON (dicts, lists, str, int, float, bool, None), or a clear error naming ``path``."""
    if depth > MAX_PARAMS_DEPTH:
        raise InvalidInputError(
            f"inference_params of model {model_id!r} are nested deeper than {MAX_PARAMS_DEPTH} levels at {path}: "
            "pass a flat dict of options such as {'confidence': 0.4}."
        )
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInputError(
                f"inference_params of model {model_id!r}: {path} is {number!r}, which JSON cannot carry: "
                "pass a finite number."
            )
        return number
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"inference_params of model {model_id!r}: key {key!r} of {path} is a "
                    f"{type(key).__name__}; JSON keys are strings, e.g. {str(key)!r}."
                )
            plain[key] = _json_params(item, f"{path}[{key!r}]", model_id, depth + 1)
        return plain
    if isinstance(value, (list, tuple)):
        return [_json_params(item, f"{path}[{index}]", model_id, depth + 1) for index, item in enumerate(value)]
    hint = "a list" if isinstance(value, (set, frozenset)) else "a string, number, bool, None, list or dict"
    raise InvalidInputError(
        f"inference_params of model {model_id!r}: {path} is a {type(value).__name__} ({value!r:.60}), which "
        f"cannot be sent as JSON: use {hint} instead."
    )


def validate_model_fields(model_id: Any, model_version: Any, inference_type: Any, inference_params: Any) -> None:
    """Check one model's fields; raise :class:`InvalidInputError` naming the bad one."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InvalidInputError(f"model_id must be a non-empty string, got {model_id!r}: e.g. 'clip' or 'my-project'.")
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
    validate_inference_params(model_id, inference_params)


def validate_inference_params(model_id: str, inference_params: Any) -> dict[str, Any] | None:
    """Check one model's ``inference_params``: a dict of JSON values; return it as plain JSON.

    Numbers of other types (``numpy.int64``, ``Decimal``...) become ``int``/``float``; tuples
    become lists; sets, objects and non-finite numbers are refused, naming where they are.

    :param model_id: the model, named in messages.
    :param inference_params: None, or a dict such as ``{"confidence": 0.4}``.
    """
    if inference_params is None:
        return None
    if not isinstance(inference_params, Mapping):
        raise InvalidInputError(
            f"inference_params of model {model_id!r} must be a dict such as {{'confidence': 0.4}}, "
            f"got {type(inference_params).__name__}."
        )
    return _json_params(inference_params, "inference_params", model_id)  # type: ignore[no-any-return]


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
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy.int64 and the like
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        value = int(number) if math.isfinite(number) and number.is_integer() else value
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
    url = value.strip()
    control = _control_character(url)
    if control is not None:
        raise InvalidInputError(
            f"{name} {redact(url)!r} holds a control character ({control[1]}, at position {control[0]}), which "
            "no URL may hold: remove it (percent-encode it if it belongs to the path)."
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises for a port that is not a number
    except ValueError as err:
        raise InvalidInputError(f"{name} {redact(url)!r} is not a valid URL ({err}): pass {what_it_is}.") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"{name} must be an http:// or https:// URL, got {redact(value)!r}: pass {what_it_is}.")
    host = parts.netloc.rpartition("@")[2]
    if not parts.hostname or any(char.isspace() for char in host):
        raise InvalidInputError(
            f"{name} {redact(url)!r} has no valid host ({host!r}): a host holds no spaces; check the URL "
            f"for a stray space or a missing '/', and pass {what_it_is}."
        )
    return url


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
    control = _control_character(name)
    if control is not None:
        raise InvalidInputError(
            f"file_name {name!r} holds a control character ({control[1]}, at position {control[0]}): a file "
            "name is one line of printable text; pass e.g. 'video.mp4'."
        )
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidInputError(f"file_name {name!r} must be a bare file name without folders, e.g. 'video.mp4'.")
    stem, dot, suffix = name.rpartition(".")
    suffix = suffix.lower() if dot else ""
    if dot and not stem and suffix in VIDEO_EXTENSIONS:
        raise InvalidInputError(
            f"file_name {name!r} is only an extension: give the video a name before it, e.g. 'video{name}'."
        )
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


def video_container(head: bytes) -> str | None:
    """The video container that a file's first bytes announce (``"MP4"``, ``"AVI"``, ``"Matroska/WebM"``), or None.

    :param head: the file's first :data:`VIDEO_HEADER_BYTES` bytes (fewer for a shorter file).
    """
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    for offset, magic, container in _VIDEO_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return container
    return None


def validate_video_header(head: bytes, name: str) -> str:
    """Check that a file's first bytes are those of a video container the service reads; return it.

    The extension alone does not make a video: an image or a web page saved as ``.mp4`` would be
    uploaded, paid for as a job, and fail there.

    :param head: the file's first :data:`VIDEO_HEADER_BYTES` bytes.
    :param name: the file, named in the message.
    """
    container = video_container(head)
    if container is not None:
        return container
    stripped = head.lstrip()
    what = next((label for magic, label in _OTHER_SIGNATURES if stripped.startswith(magic)), None)
    if what is None and head and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        what = "text"
    looks = f"are those of {what}" if what else "match no video container"
    raise InvalidInputError(
        f"{name} is not a video: its first bytes ({head[:12]!r}) {looks}, not of an MP4, AVI, MKV or WebM "
        "file. Pass the video file itself; renaming a file to .mp4 does not convert it."
    )


def validate_flag(name: str, value: Any) -> bool:
    """Check a yes/no argument: ``True`` or ``False`` only, so that the text ``"false"`` is not taken for True.

    :param name: the argument, named in the message.
    :param value: what the user passed.
    """
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy's bool
        return bool(value)
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "0", "1", ""):
        hint = f" (a string, which Python takes for {bool(value)})"
    raise InvalidInputError(
        f"{name} must be True or False, got {value!r}{hint}: pass the Python value, e.g. {name}=False."
    )


def validate_seconds(name: str, value: Any, maximum: float) -> float:
    """Check a duration: a finite number of seconds above 0 and at most ``maximum``; return it as float.

    :param name: the argument, named in the message.
    :param value: a number of seconds (any real number type, not a bool) or a ``timedelta``.
    :param maximum: the largest value allowed.
    """
    number: float | None = None
    if isinstance(value, datetime.timedelta):
        number = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            number = math.inf
    if number is not None and math.isinf(number) and number > 0:
        raise InvalidInputError(
            f"{name} is {value!r}, and a wait needs an end: pass a finite number of seconds, at most "
            f"{_number(maximum)} ({_days(maximum)})."
        )
    if number is None or not math.isfinite(number) or number <= 0:
        raise InvalidInputError(f"{name} must be a positive number of seconds, got {value!r}: e.g. {name}=60.")
    if number > maximum:
        raise InvalidInputError(
            f"{name} is {_number(number)} s, above the most allowed, {_number(maximum)} s ({_days(maximum)}): "
            f"pass at most {_number(maximum)}."
        )
    return number


def validate_wait(poll_interval: Any, timeout: Any, timeout_name: str = "timeout") -> tuple[float, float]:
    """Check a wait's poll interval and its timeout, alone and together; return both as floats.

    :param poll_interval: seconds between polls, at most :data:`MAX_POLL_INTERVAL`.
    :param timeout: seconds to wait at most, at most :data:`MAX_WAIT_SECONDS`.
    :param timeout_name: the timeout argument's name (``timeout``, ``wait_timeout``), for messages.
    """
    interval = validate_seconds("poll_interval", poll_interval, MAX_POLL_INTERVAL)
    limit = validate_seconds(timeout_name, timeout, MAX_WAIT_SECONDS)
    if interval > limit:
        raise InvalidInputError(
            f"poll_interval ({_number(interval)} s) is longer than {timeout_name} ({_number(limit)} s): the job "
            "would be polled once, at the deadline. Poll more often, or wait longer."
        )
    return interval, limit


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} day{'' if days == 1 else 's'}"

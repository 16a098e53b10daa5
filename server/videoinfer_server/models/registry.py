"""The model registry: built-ins, ``videoinfer.models`` entry points and ``module:callable`` providers."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from videoinfer_server.job_failures import FailureCode, JobFailure
from videoinfer_server.models.base import VideoModel

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "videoinfer.models"
HOW_TO_ADD = (
    "add one with `videoinfer-server --model package.module:factory` or a "
    f"'{ENTRY_POINT_GROUP}' entry point (see `videoinfer-server models`)"
)


def _is_model(obj: Any) -> bool:
    return all(hasattr(obj, name) for name in ("model_id", "model_version", "inference_type", "open"))


def models_from(provider: Any, source: str) -> list[VideoModel]:
    """Turn what a provider gave into models.

    :param provider: a model, an iterable of models, or a callable returning either (called once
        with no arguments).
    :param source: where it came from, named in errors.
    """
    if not _is_model(provider) and callable(provider):
        provider = provider()
    if _is_model(provider):
        return [provider]
    if isinstance(provider, Iterable) and not isinstance(provider, (str, bytes)):
        items = list(provider)
        bad = [item for item in items if not _is_model(item)]
        if not bad:
            return items
    raise TypeError(
        f"{source} must give a model (with model_id, model_version, inference_type and open()), "
        f"a list of them, or a callable returning either; got {type(provider).__name__}"
    )


def load_provider(spec: str) -> list[VideoModel]:
    """Load ``"package.module:callable"`` and return its models."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model provider {spec!r} must look like 'package.module:callable'")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return models_from(target, spec)


class ModelRegistry:
    """Models keyed by ``(model_id, model_version)``."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], VideoModel] = {}
        self._sources: dict[tuple[str, str], str] = {}

    def add(self, model: VideoModel, source: str = "user") -> None:
        """Register a model; a later one with the same id and version replaces the earlier."""
        key = (str(model.model_id), str(model.model_version))
        if key in self._models:
            log.info("model %s version %s from %s replaces the one from %s", *key, source, self._sources[key])
        self._models[key] = model
        self._sources[key] = source

    def add_all(self, models: Iterable[VideoModel], source: str) -> None:
        """Register several models."""
        for model in models:
            self.add(model, source)

    def resolve(self, model_id: str, model_version: str, inference_type: str) -> VideoModel:
        """Return the model a job asks for, or raise a :class:`JobFailure` with code 4 that says why."""
        model = self._models.get((model_id, str(model_version)))
        if model is None:
            versions = sorted(v for (mid, v) in self._models if mid == model_id)
            known = ", ".join(f"{mid}/{v}" for mid, v in sorted(self._models))
            hint = f"it has versions {', '.join(versions)}" if versions else f"available: {known}"
            raise JobFailure(
                FailureCode.UNKNOWN_MODEL,
                f"model {model_id!r} version {model_version!r} is not available on this local server "
                f"({hint}); {HOW_TO_ADD}.",
            )
        if model.inference_type != inference_type:
            raise JobFailure(
                FailureCode.UNKNOWN_MODEL,
                f"model {model_id!r} version {model_version!r} is a {model.inference_type} model, "
                f"but the job asks for inference_type {inference_type!r}.",
            )
        return model

    def describe(self) -> list[dict[str, str]]:
        """The registered models, for ``GET /models`` and the CLI."""
        return [
            {
                "model_id": model.model_id,
                "model_version": str(model.model_version),
                "inference_type": model.inference_type,
                "description": getattr(model, "description", "") or "",
                "source": self._sources[key],
            }
            for key, model in sorted(self._models.items())
        ]


def build_registry(providers: Iterable[str] = (), *, load_entry_points: bool = True) -> ModelRegistry:
    """The built-in models, then entry point models, then ``providers`` (later ones win).

    :param providers: ``"module:callable"`` strings, e.g. from ``--model``.
    :param load_entry_points: whether to load the ``videoinfer.models`` entry point group; a broken
        entry point is logged and skipped.
    """
    from videoinfer_server.models.builtin import still_frame_models
    from videoinfer_server.models.clip import clip_model
    from videoinfer_server.models.gaze import gaze_model
    from videoinfer_server.models.motion import motion_models

    registry = ModelRegistry()
    registry.add_all([*still_frame_models(), *motion_models(), clip_model(), gaze_model()], "builtin")
    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                registry.add_all(models_from(ep.load(), f"entry point {ep.name}"), f"entry point {ep.name}")
            except Exception:
                log.exception("skipping broken %s entry point %s", ENTRY_POINT_GROUP, ep.name)
    for spec in providers:
        registry.add_all(load_provider(spec), spec)
    return registry

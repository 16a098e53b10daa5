"""Which built-in models a Workflow id runs on the local server.

The hosted service runs a Workflow of the workspace; the local server has no Workflow engine, so a
``workflowId`` names a set of the server's models instead, each one a Workflow output (a column
of the results, named by the model id):

- one of :data:`WORKFLOWS` (below);
- else the id of any registered model (built-in, entry point or ``--model``): that model alone,
  at version ``1`` (or its only version).

``workflowParameters`` go to every model as its parameters (e.g. ``{"confidence": 0.4}``); the
Workflow's one image input is called ``image``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from videoinfer_server.models.base import VideoModel
from videoinfer_server.models.registry import ModelRegistry

#: Workflow id → the model ids it runs, in column order.
WORKFLOWS: Mapping[str, tuple[str, ...]] = {
    "detect-motion": ("motion-detection", "motion-classification"),
    "detect-people": ("people-detection",),
    "detect-faces": ("face-detection",),
    "video-overview": ("motion-detection", "people-detection", "sharpness-classification"),
}
#: The name of the one image input of every local Workflow (``imageInputName``).
IMAGE_INPUT_NAME = "image"


@dataclass(frozen=True)
class WorkflowOutput:
    """One output of a Workflow: a model and the column it fills.

    :param name: the column (the model id).
    :param model: the model.
    """

    name: str
    model: VideoModel


def _model(registry: ModelRegistry, model_id: str) -> VideoModel | None:
    entries = [entry for entry in registry.describe() if entry["model_id"] == model_id]
    if not entries:
        return None
    chosen = next((entry for entry in entries if entry["model_version"] == "1"), entries[-1])
    return registry.resolve(chosen["model_id"], chosen["model_version"], chosen["inference_type"])


def resolve_workflow(workflow_id: str, registry: ModelRegistry) -> list[WorkflowOutput]:
    """The outputs a Workflow id runs; :class:`LookupError` naming the choices when it is unknown.

    :param workflow_id: the job's ``processingSpecification.workflowId``.
    :param registry: the server's models.
    """
    model_ids = WORKFLOWS.get(workflow_id, (workflow_id,))
    outputs = []
    for model_id in model_ids:
        model = _model(registry, model_id)
        if model is None:
            known = ", ".join(sorted(WORKFLOWS))
            models = ", ".join(sorted({entry["model_id"] for entry in registry.describe()}))
            raise LookupError(
                f"workflow {workflow_id!r} is not known to this local server: use one of its Workflows ({known}) "
                f"or the id of one of its models ({models}), which runs that model alone"
            )
        outputs.append(WorkflowOutput(model_id, model))
    return outputs

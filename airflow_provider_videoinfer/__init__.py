"""Apache Airflow provider for the Video Inference API."""

from __future__ import annotations

__version__ = "0.2.0"

# The connection form of Airflow 3.2+ is built from these declarations, without importing the hook.
# The defaults repeat the hook's and the retry policy's (a test keeps them equal): importing
# those here would load requests and tenacity whenever Airflow lists its providers.
_CONNECTION_FIELDS: dict[str, tuple[str, str, str, float]] = {
    # name: (label, description, JSON schema type, default)
    "connect_timeout": ("Connect timeout (s)", "Seconds to establish a connection.", "number", 10),
    "read_timeout": ("Read timeout (s)", "Seconds to wait for an API answer.", "number", 60),
    "transfer_timeout": (
        "Transfer timeout (s)",
        "Seconds of silence allowed during an upload or a download.",
        "number",
        300,
    ),
    "retry_max_attempts": ("Retry: attempts", "Attempts per call, the first included (1: no retry).", "integer", 5),
    "retry_max_elapsed": ("Retry: time budget (s)", "Seconds after which no new attempt starts.", "number", 300),
    "retry_initial_wait": ("Retry: first wait (s)", "First backoff; doubles each retry, with jitter.", "number", 1),
    "retry_max_wait": (
        "Retry: longest wait (s)",
        "Longest single backoff (a longer Retry-After is capped to it).",
        "number",
        60,
    ),
    "poll_interval": (
        "Poll interval (s)",
        "Seconds between polls of a job when the task sets no poll_interval (1 suits the local server).",
        "number",
        60,
    ),
}


INTEGRATION = "Video Inference"
#: The how-to guides of the documentation (docs/howto/<name>.rst).
HOW_TO_GUIDES = (
    "local-files",
    "s3",
    "bucket",
    "folder",
    "reading-results",
    "results-view",
    "local-server",
    "retries",
    "scaling",
    "choosing-a-backend",
    "deploying",
)


def _conn_fields() -> dict[str, dict]:
    return {
        name: {
            "label": label,
            "description": description,
            "schema": {"type": kind, "default": default, "minimum": 1 if kind == "integer" else 0},
        }
        for name, (label, description, kind, default) in _CONNECTION_FIELDS.items()
    }


def get_provider_info() -> dict:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

    Its hooks, operators, sensors and triggers sections list only the modules that define a public
    hook, operator, sensor or trigger class, as Airflow's Providers page and ``airflow providers``
    commands show them; helper modules (settings, transport, the wait step, the task store...) are
    not listed (``tests/test_provider_info.py`` keeps the lists exact).
    """
    return {
        "package-name": "airflow-provider-videoinfer",
        "name": INTEGRATION,
        "description": "Run asynchronous video inference jobs (Roboflow Video Inference API) from Airflow.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "videoinfer",
                "hook-class-name": "airflow_provider_videoinfer.hooks.videoinfer.VideoInferHook",
                "hook-name": INTEGRATION,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"password": "API Key", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://api.roboflow.com (or http://127.0.0.1:9050 for the local server)",
                        "password": "your workspace API key",
                        "port": "optional, when the Base URL has none",
                        "description": "e.g. production workspace",
                    },
                },
                "conn-fields": _conn_fields(),
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_videoinfer.hooks.videoinfer",
                    "airflow_provider_videoinfer.hooks.batch",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_videoinfer.operators.videoinfer",
                    "airflow_provider_videoinfer.operators.results",
                    "airflow_provider_videoinfer.operators.batch",
                    "airflow_provider_videoinfer.operators.batch_staging",
                    "airflow_provider_videoinfer.operators.batch_results",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_videoinfer.sensors.videoinfer",
                    "airflow_provider_videoinfer.sensors.batch",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_videoinfer.triggers.videoinfer",
                    "airflow_provider_videoinfer.triggers.batch",
                ],
            }
        ],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://inference.roboflow.com/",
                # Paths in this repository, as Airflow's own providers give theirs in Airflow's.
                "how-to-guide": [f"/docs/howto/{guide}.rst" for guide in HOW_TO_GUIDES],
                "logo": "/docs/integration-logos/videoinfer.svg",
                "tags": ["service"],
            }
        ],
    }

"""Apache Airflow provider for the Video Inference API."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-videoinfer",
        "name": "Video Inference",
        "description": "Run asynchronous video inference jobs (Roboflow Video Inference API) from Airflow.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "videoinfer",
                "hook-class-name": "airflow_provider_videoinfer.hooks.videoinfer.VideoInferHook",
            }
        ],
        "hooks": [
            {
                "integration-name": "Video Inference",
                "python-modules": ["airflow_provider_videoinfer.hooks.videoinfer"],
            }
        ],
        "operators": [
            {
                "integration-name": "Video Inference",
                "python-modules": [
                    "airflow_provider_videoinfer.operators.videoinfer",
                    "airflow_provider_videoinfer.operators.results",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Video Inference",
                "python-modules": ["airflow_provider_videoinfer.sensors.videoinfer"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Video Inference",
                "python-modules": ["airflow_provider_videoinfer.triggers.videoinfer"],
            }
        ],
        "integrations": [
            {
                "integration-name": "Video Inference",
                "external-doc-url": "https://inference.roboflow.com/",
                "tags": ["service"],
            }
        ],
    }

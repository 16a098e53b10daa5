"""The Airflow plugin of the results view, registered through the ``airflow.plugins`` entry point.

It mounts :mod:`.app` in the api-server and adds a "Video inference" tab to every task
instance's page; the tab shows the results of ``VideoInferResultsOperator`` and
``VideoInferBatchResultsOperator`` tasks and says so for any other task.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_videoinfer.ui.app import URL_PREFIX, app

#: The tab's route under the task instance page (``.../tasks/<task>/plugin/videoinfer-results``).
URL_ROUTE = "videoinfer-results"


class VideoInferResultsPlugin(AirflowPlugin):
    """Mounts the results view and adds its tab to task instance pages."""

    name = "videoinfer_results"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Video inference results"}]
    external_views = [
        {
            "name": "Video inference",
            "href": URL_PREFIX + "/results/{DAG_ID}/{RUN_ID}/{TASK_ID}?map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": URL_ROUTE,
        }
    ]

"""The results view: an Airflow plugin that draws a results summary in the task instance page."""

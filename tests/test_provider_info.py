"""The provider info that Airflow's UI builds the connection form from, and the package metadata."""

from __future__ import annotations

from importlib.metadata import metadata

from airflow_provider_videoinfer import _CONNECTION_FIELDS, get_provider_info
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.videoinfer import ClientSettings, VideoInferHook

RETRY_FIELDS = ("max_attempts", "max_elapsed", "initial_wait", "max_wait")


def test_form_defaults_are_the_hooks_defaults():
    """The form repeats the defaults (to keep provider discovery light); they must not drift apart."""
    settings = ClientSettings(base_url="https://x", api_key="k")
    policy = RetryPolicy()
    actual = {
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "transfer_timeout": settings.transfer_timeout,
        **{f"retry_{name}": getattr(policy, name) for name in RETRY_FIELDS},
    }
    assert {name: field[3] for name, field in _CONNECTION_FIELDS.items()} == actual


def test_every_form_field_is_read_by_the_hook():
    extra = {name: field[3] * 2 for name, field in _CONNECTION_FIELDS.items()}
    from airflow.models.connection import Connection

    settings = ClientSettings.from_connection(
        Connection(conn_id="c", conn_type="videoinfer", password="k", extra=extra)  # type: ignore[arg-type]
    )
    assert settings.read_timeout == 120 and settings.retry.max_attempts == 10 and settings.retry.max_wait == 120


def test_connection_type_entry():
    (entry,) = get_provider_info()["connection-types"]
    assert entry["connection-type"] == VideoInferHook.conn_type
    assert entry["hook-name"] == VideoInferHook.hook_name
    assert entry["ui-field-behaviour"]["relabeling"] == {"password": "API Key", "host": "Base URL"}


def test_documentation_url_is_the_readme():
    urls = dict(entry.split(", ", 1) for entry in metadata("airflow-provider-videoinfer").get_all("Project-URL"))
    assert urls["Documentation"].endswith("#readme")


def test_connection_form_as_this_airflow_builds_it():
    """The form the UI gets (``/ui/connections/hook_meta``): from ``conn-fields`` on Airflow 3.2+, from
    the hook's ``get_connection_form_widgets`` and ``get_ui_field_behaviour`` before (WTForms installed)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    form = next(meta for meta in HookMetaService.hook_meta_data() if meta.connection_type == "videoinfer")
    assert form.hook_name == "Video Inference"
    fields = form.standard_fields
    assert fields.login.hidden and fields.url_schema.hidden
    assert (fields.password.title, fields.host.title) == ("API Key", "Base URL")
    assert "https://api.roboflow.com" in fields.host.placeholder
    extra = form.extra_fields
    assert set(extra) == set(_CONNECTION_FIELDS)
    for name, (label, description, kind, _) in _CONNECTION_FIELDS.items():
        schema = extra[name]["schema"]
        assert schema["title"] == label and description in extra[name]["description"], name
        assert kind in schema["type"] or "string" in schema["type"], name  # seconds: text before 3.2
    assert "integer" in extra["retry_max_attempts"]["schema"]["type"]

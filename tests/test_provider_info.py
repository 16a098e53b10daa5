"""The provider info that Airflow's UI builds the connection form from, and the package metadata."""

from __future__ import annotations

import importlib
import json
import pkgutil
from importlib.metadata import metadata
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

import airflow_provider_videoinfer
from airflow_provider_videoinfer import _CONNECTION_FIELDS, get_provider_info
from airflow_provider_videoinfer.hooks.retry import RetryPolicy
from airflow_provider_videoinfer.hooks.videoinfer import ClientSettings, VideoInferHook

RETRY_FIELDS = ("max_attempts", "max_elapsed", "initial_wait", "max_wait")
ROOT = Path(__file__).resolve().parent.parent
#: The provider info's sections that list modules, and the package each lists.
MODULE_SECTIONS = ("hooks", "operators", "sensors", "triggers")


def airflow_schema(name: str) -> dict:
    """One of the JSON schemas that ship inside apache-airflow-core, as Airflow reads them."""
    return json.loads((files("airflow") / name).read_text())


def test_provider_info_follows_airflows_schema():
    """What Airflow's ProvidersManager validates each provider's info against at discovery."""
    schema = airflow_schema("provider_info.schema.json")
    jsonschema.validators.validator_for(schema)(schema).validate(get_provider_info())


def test_the_hooks_form_behaviour_follows_airflows_schema():
    """Airflow before 3.2 reads the form's labels from the hook and validates them against this schema."""
    schema = airflow_schema("customized_form_field_behaviours.schema.json")
    jsonschema.validate(VideoInferHook.get_ui_field_behaviour(), schema)


def test_a_schema_violation_is_caught():
    """The schema test can fail: a connection type without its hook class does not pass."""
    schema = airflow_schema("provider_info.schema.json")
    (entry,) = get_provider_info()["connection-types"]
    broken = {**get_provider_info(), "connection-types": [{**entry, "hook-class-name": None}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _role_base(section: str) -> type:
    """The Airflow class whose subclasses a section lists: hooks, operators, sensors, triggers."""
    from airflow.sdk import BaseOperator, BaseSensorOperator
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_videoinfer.compat import BaseHook

    return {"hooks": BaseHook, "operators": BaseOperator, "sensors": BaseSensorOperator, "triggers": BaseTrigger}[
        section
    ]


def _public_role_classes(module: object, base: type) -> list[str]:
    """The public classes a module defines that derive from ``base``; a base class to derive from
    (``VideoInferBaseOperator``) is not one a user puts in a DAG."""
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, base)
        and value.__module__ == module.__name__  # type: ignore[attr-defined]
        and not name.startswith("_")
        and "Base" not in name
    ]


@pytest.mark.parametrize("section", MODULE_SECTIONS)
def test_only_the_modules_of_public_classes_are_listed(section):
    """Each section lists exactly the modules of its package (hooks/, operators/, ...) that define a public
    hook, operator, sensor or trigger class: helper modules would show on Airflow's Providers page as such."""
    (entry,) = get_provider_info()[section]
    package = importlib.import_module(f"{airflow_provider_videoinfer.__name__}.{section}")
    base = _role_base(section)
    defining = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        defining[module.__name__] = _public_role_classes(module, base)
    assert sorted(entry["python-modules"]) == sorted(name for name, classes in defining.items() if classes)
    if section == "operators":  # helper modules, not listed
        assert defining[f"{package.__name__}.base"] == [] and defining[f"{package.__name__}.task_store"] == []


def test_the_integration_has_how_to_guides_and_a_logo():
    """The integration names its docs' how-to guides (every one of them) and its logo, as paths in this repository."""
    (integration,) = get_provider_info()["integrations"]
    info = get_provider_info()
    for section in (*MODULE_SECTIONS, "connection-types"):
        for entry in info[section]:
            assert entry.get("integration-name", integration["integration-name"]) == integration["integration-name"]
    guides = integration["how-to-guide"]
    assert guides and all(path.startswith("/docs/") for path in guides)
    pages = (ROOT / "docs" / "howto").glob("*.rst")
    on_disk = sorted(f"/docs/howto/{page.name}" for page in pages if page.stem != "index")
    assert sorted(guides) == on_disk
    assert (ROOT / integration["logo"].lstrip("/")).is_file()


def test_form_defaults_are_the_hooks_defaults():
    """The form repeats the defaults (to keep provider discovery light); they must not drift apart."""
    settings = ClientSettings(base_url="https://x", api_key="k")
    policy = RetryPolicy()
    actual = {
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "transfer_timeout": settings.transfer_timeout,
        **{f"retry_{name}": getattr(policy, name) for name in RETRY_FIELDS},
        "poll_interval": settings.poll_interval,
    }
    assert {name: field[3] for name, field in _CONNECTION_FIELDS.items()} == actual


def test_every_form_field_is_read_by_the_hook():
    extra = {name: field[3] * 2 for name, field in _CONNECTION_FIELDS.items()}
    from airflow.models.connection import Connection

    settings = ClientSettings.from_connection(
        Connection(conn_id="c", conn_type="videoinfer", password="k", extra=extra)  # type: ignore[arg-type]
    )
    assert settings.read_timeout == 120 and settings.retry.max_attempts == 10 and settings.retry.max_wait == 120
    assert settings.poll_interval == 120


def test_connection_type_entry():
    (entry,) = get_provider_info()["connection-types"]
    assert entry["connection-type"] == VideoInferHook.conn_type
    assert entry["hook-name"] == VideoInferHook.hook_name
    assert entry["ui-field-behaviour"]["relabeling"] == {"password": "API Key", "host": "Base URL"}


def test_the_version_has_one_source():
    """pyproject.toml reads the version from __version__ (make dist checks the built archives carry it)."""
    import tomllib  # Python 3.11+: the standard library's (ruff's target is older)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "airflow_provider_videoinfer.__version__"
    assert get_provider_info()["versions"] == [airflow_provider_videoinfer.__version__]


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

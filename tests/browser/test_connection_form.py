"""The connection form and the Providers page, as Airflow's UI gets them from a real api-server."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from airflow_provider_videoinfer import _CONNECTION_FIELDS


def _get(api_server, path: str) -> dict | list:
    headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
    answer = requests.get(api_server.base_url + path, headers=headers, timeout=30)
    answer.raise_for_status()
    return answer.json()


def test_hook_meta_has_the_form_of_the_videoinfer_connection(api_server):
    meta = {entry["connection_type"]: entry for entry in _get(api_server, "/ui/connections/hook_meta")}
    form = meta["videoinfer"]
    assert form["hook_name"] == "Video Inference"
    fields = form["standard_fields"]
    assert fields["login"]["hidden"] and fields["url_schema"]["hidden"]
    assert fields["password"]["title"] == "API Key" and fields["password"]["placeholder"]
    assert fields["host"]["title"] == "Base URL" and "https://api.roboflow.com" in fields["host"]["placeholder"]
    assert fields["port"]["hidden"] is False and fields["port"]["placeholder"]
    extra = form["extra_fields"]
    assert set(extra) == set(_CONNECTION_FIELDS)
    assert extra["read_timeout"]["schema"]["title"] == "Read timeout (s)"
    assert extra["read_timeout"]["value"] == 60 and extra["retry_max_attempts"]["schema"]["type"] == "integer"


def test_providers_page_links_to_the_documentation(api_server):
    providers = _get(api_server, "/api/v2/providers")["providers"]
    ours = next(p for p in providers if p["package_name"] == "airflow-provider-videoinfer")
    assert ours["documentation_url"].startswith("https://github.com/") and ours["documentation_url"].endswith(
        "#readme"
    )
    assert "video inference" in ours["description"].lower()


def test_connection_form_in_the_browser(page, api_server):
    page.goto(f"{api_server.base_url}/connections")
    page.get_by_role("button", name=re.compile("Add Connection", re.I)).click()
    # The type list shows the provider's name rather than the raw type.
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.get_by_role("combobox").fill("Video")
    dialog.get_by_text("Video Inference", exact=True).last.click()
    dialog.get_by_text("Standard Fields").wait_for()
    for label in ("Base URL", "API Key", "Port"):
        expect(dialog.get_by_text(label, exact=True).first).to_be_visible()
    text = dialog.inner_text()
    assert "Login" not in text and "Schema" not in text and "videoinfer" not in text
    assert dialog.get_by_placeholder(re.compile("api.roboflow.com")).is_visible()
    assert dialog.get_by_placeholder("your workspace API key").is_visible()
    dialog.get_by_text("Extra Fields", exact=True).click()
    for label, description, _, _ in _CONNECTION_FIELDS.values():
        expect(dialog.get_by_text(label).first).to_be_visible()
        expect(dialog.get_by_text(description).first).to_be_visible()

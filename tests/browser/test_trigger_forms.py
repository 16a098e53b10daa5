"""Each example's trigger form in Airflow's UI: titled params, a JSON editor for the models, and a
run triggered with the defaults carries them with their types (lists of objects stay objects)."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

EXAMPLES = {
    "videoinfer_quickstart": ["Video", "Frames per second", "Models", "Results folder"],
    "videoinfer_folder": ["Source folder", "Results folder", "Frames per second"],
    "videoinfer_submit_and_wait": ["Video URL", "Results folder"],
}


@pytest.mark.parametrize("dag_id", sorted(EXAMPLES))
def test_trigger_form_renders_every_param_and_triggers_with_the_defaults(page, api_server, dag_id):
    page.goto(f"{api_server.base_url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.get_by_text("Run Parameters").wait_for()
    text = dialog.inner_text()
    assert "[object Object]" not in text
    for title in EXAMPLES[dag_id]:
        expect(dialog.get_by_text(re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$")).first).to_be_visible()
    if dag_id == "videoinfer_quickstart":
        # The models are an array of objects: a JSON editor showing the default models.
        editor = dialog.locator(".view-lines").first  # Monaco, bundled with Airflow's UI
        expect(editor).to_contain_text('"model_id"')
        assert '"motion-detection"' in editor.inner_text()
    with page.expect_response(lambda r: re.search(rf"/api/v2/dags/{dag_id}/dagRuns$", r.url) is not None) as answer:
        dialog.get_by_role("button", name="Trigger").click()
    assert answer.value.status == 200, answer.value.text()
    run = answer.value.json()
    headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
    conf = requests.get(
        f"{api_server.base_url}/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}", headers=headers, timeout=30
    ).json()["conf"]
    if dag_id == "videoinfer_quickstart":
        assert conf["models"][0] == {
            "model_id": "motion-detection",
            "model_version": "1",
            "inference_type": "object-detection",
        }
        assert conf["infer_fps"] == 5


def test_every_example_documents_itself(api_server):
    headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
    for dag_id in EXAMPLES:
        details = requests.get(f"{api_server.base_url}/api/v2/dags/{dag_id}/details", headers=headers, timeout=30)
        details.raise_for_status()
        body = details.json()
        assert body["description"] and body["doc_md"], dag_id
        for name, param in body["params"].items():
            schema = param["schema"]
            assert schema.get("title") and param.get("description"), (dag_id, name)

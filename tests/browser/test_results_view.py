"""The results view of a finished run, in the real api-server: authorization, content, and in the browser."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import requests
from helpers import API_KEY, signature_leaks, xcom

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _view_path(run, task_id: str = "results", kind: str = "results") -> str:
    return f"/videoinfer/{kind}/{run.dag_id}/{quote(run.run_id, safe='')}/{task_id}?map_index=-1"


def _get(api_server, path: str, user: str | None = "admin", token: str | None = None) -> requests.Response:
    token = token or (api_server.token(user) if user else None)
    cookies = {"_token": token} if token else {}
    return requests.get(api_server.base_url + path, cookies=cookies, timeout=30)


def test_view_needs_a_user_who_may_read_the_dag(api_server, finished_run):
    path = _view_path(finished_run)
    assert _get(api_server, path, user=None).status_code == 401
    assert _get(api_server, path, token="not-a-jwt").status_code == 403
    # "outsider" may read other DAGs, not this one: the view asks Airflow's auth manager per DAG.
    assert _get(api_server, path, user="outsider").status_code == 403
    assert _get(api_server, _view_path(finished_run, kind="contact-sheet"), user="outsider").status_code == 403
    other = f"/videoinfer/results/videoinfer_folder/{quote(finished_run.run_id, safe='')}/results"
    assert _get(api_server, other, user="outsider").status_code == 404  # allowed, and no such task instance
    assert _get(api_server, path).status_code == 200


def test_view_shows_the_summary_and_no_secret(api_server, finished_run):
    summary = xcom(finished_run, "results")
    answer = _get(api_server, _view_path(finished_run))
    page = answer.text
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    for model_id, model in summary["models"].items():
        assert model_id in page
        for name, count in model.get("class_counts", {}).items():
            assert f">{count}</text>" in page, (model_id, name)
    assert summary["source"] in page and summary["contact_sheet"]["location"] in page
    assert 'class="timeline"' in page and "Busiest moments" in page
    # The submit task's estimate, beside what the result file holds: equal on the local server.
    estimate = xcom(finished_run, "submit", "estimate")
    billed = f"{estimate['sampled_frames']} sampled frames × 2 models = {estimate['frames']} frames billed"
    assert f"<th>estimated before the job</th><td>{billed}</td>" in page
    assert f"<th>in the result file</th><td>{billed}</td>" in page
    assert "<script" not in page and "http://" not in page.replace(api_server.base_url, "")
    assert API_KEY not in page
    upload_url = xcom(finished_run, "upload")
    assert upload_url.split("?")[0] not in page  # not even the signed URL's path


def test_batch_results_task_shows_its_summary_and_no_secret(api_server, batch_run):
    summary = xcom(batch_run, "results")
    assert summary["detections"], "the example's Workflow detects nothing: this test would show no class"
    page = _get(api_server, _view_path(batch_run)).text
    assert "<h1>Batch Processing results</h1>" in page
    assert f"<th>job</th><td><code>{summary['job_id']}</code></td>" in page and summary["destination"] in page
    for figure in ("videos", "rows", "files"):
        assert f"<th>{figure}</th><td>{summary[figure]:,}</td>" in page, figure
    for name, count in summary["detections"].items():
        assert f"<th>{name}</th><td>{count:,}</td>" in page and f">{count:,}</text>" in page, name
    assert "<script" not in page and "<img" not in page and "http://" not in page.replace(api_server.base_url, "")
    assert API_KEY not in page and not signature_leaks(page)
    # The other tasks of the batch example are not results tasks.
    assert "VideoInferBatchResultsOperator" in _get(api_server, _view_path(batch_run, task_id="run")).text


def test_unmapped_task_instances_whatever_the_map_index_placeholder_became(api_server, finished_run):
    for index in ("-1", "{MAP_INDEX}", ""):
        path = _view_path(finished_run).replace("map_index=-1", f"map_index={quote(index)}")
        assert "Busiest moments" in _get(api_server, path).text, index


def test_mapped_results_by_map_index(api_server, folder_run):
    run_id = quote(folder_run.run_id, safe="")
    pages = [
        _get(api_server, f"/videoinfer/results/videoinfer_folder/{run_id}/video.results?map_index={index}").text
        for index in range(3)
    ]
    assert "video.results [a.mp4]" in pages[0] and "Busiest moments" in pages[0]
    assert "its state is upstream_failed" in pages[1]
    assert "video.results [c.mp4]" in pages[2] and "/c.mp4/result.contact-sheet.png" in pages[2]
    sheet = f"/videoinfer/contact-sheet/videoinfer_folder/{run_id}/video.results?map_index=2"
    assert _get(api_server, sheet).headers["content-type"] == "image/png"


def test_contact_sheet_is_the_kept_png(api_server, finished_run):
    summary = xcom(finished_run, "results")
    answer = _get(api_server, _view_path(finished_run, kind="contact-sheet"))
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content == Path(summary["contact_sheet"]["location"]).read_bytes()


def test_other_tasks_say_what_the_view_is_for(api_server, finished_run):
    answer = _get(api_server, _view_path(finished_run, task_id="submit"))
    assert answer.status_code == 200
    assert "VideoInferResultsOperator" in answer.text and "VideoInferSubmitJobOperator" in answer.text


def test_results_tab_in_the_task_instance_page(page, api_server, finished_run):
    run_id = quote(finished_run.run_id, safe="")
    page.set_viewport_size({"width": 1440, "height": 2400})
    page.goto(f"{api_server.base_url}/dags/{finished_run.dag_id}/runs/{run_id}/tasks/results")
    page.get_by_role("tab", name="Video inference").or_(page.get_by_text("Video inference", exact=True)).first.click()
    frame = page.frame_locator("iframe").first
    frame.get_by_role("heading", name="Video inference results").wait_for()
    chart = frame.locator("svg.timeline").first
    chart.wait_for()
    assert chart.locator("polyline").count() >= 1
    sheet = frame.locator("img.sheet")
    sheet.wait_for()
    width = sheet.evaluate(
        """img => img.complete ? img.naturalWidth : new Promise(done => {
            img.addEventListener("load", () => done(img.naturalWidth));
            img.addEventListener("error", () => done(0));
        })"""
    )
    assert width > 0  # the PNG arrived and decoded
    assert "[object Object]" not in frame.locator("body").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "results-view.png"), full_page=True)  # docs/results-view.png is one

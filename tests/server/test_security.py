"""Keys, signed URLs, file names, sizes, retention: what the server must refuse."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from videoinfer_server.launch import run_server
from videoinfer_server.signing import Signer, load_or_create_secret


def _upload_url(api, file_name="v.mp4"):
    answer = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": file_name})
    assert answer.status_code == 200, answer.text
    return answer.json()["signed_url"]


def _with_query(url, **changes):
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def test_api_key_is_checked_exactly(api):
    assert api.http.get("/", params={"api_key": api.server.api_key + "x"}).status_code == 401
    assert api.http.get("/", params={"api_key": api.server.api_key.upper()}).status_code == 401
    assert api.http.get("/", headers={"Authorization": f"Bearer {api.server.api_key}"}).status_code == 401


def test_forged_and_altered_upload_urls_are_refused(api, videos):
    url = _upload_url(api)
    signature = dict(parse_qsl(urlsplit(url).query))["X-Goog-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    other = _upload_url(api)
    body = videos["short"].path.read_bytes()
    forged = [
        _with_query(url, **{"X-Goog-Signature": flipped}),
        _with_query(url, **{"X-Goog-Expires": "604800"}),
        _with_query(url, **{"X-Goog-Date": "20990101T000000Z"}),
        url.split("?")[0],
        # The signature of one upload on the path of another.
        other.split("?")[0] + "?" + urlsplit(url).query,
        url.replace("/v.mp4?", "/w.mp4?"),
    ]
    for bad in forged:
        assert httpx.put(bad, content=body).status_code == 403, bad
    # A forged URL is refused as input_url as well.
    answer = api.http.post(
        "/videoinfer",
        params=api.key,
        json={
            "input_url": forged[0],
            "infer_fps": 4,
            "models": [{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}],
        },
    )
    assert answer.status_code == 400
    assert "signature" in answer.json()["message"]
    assert httpx.put(url, content=body).status_code == 200


def test_expired_signed_urls_are_refused(api, videos):
    signer = Signer(load_or_create_secret(api.server.data_dir))
    url = _upload_url(api)
    path = urlsplit(url).path
    expired = api.server.base_url + signer.sign(path, 60, now=time.time() - 3600)
    answer = httpx.put(expired, content=b"data")
    assert answer.status_code == 403
    assert "expired" in answer.json()["message"]
    fresh = api.server.base_url + signer.sign(path, 60)
    assert httpx.put(fresh, content=videos["short"].path.read_bytes()).status_code == 200
    state = api.wait(api.submit(url, 4))
    result_path = urlsplit(state["output_signed_url"]).path
    assert httpx.get(api.server.base_url + signer.sign(result_path, 60, now=time.time() - 3600)).status_code == 403


def test_uploaded_videos_are_never_served_back(api, videos):
    url = api.upload(videos["short"].path)
    for method in ("GET", "HEAD", "POST", "DELETE"):
        assert httpx.request(method, url).status_code in (404, 405)
    assert httpx.get(url.split("?")[0], params=api.key).status_code in (404, 405)


@pytest.mark.parametrize("name", ["../../../../tmp/evil.mp4", "..\\..\\evil.mp4", "a/../../b.MP4", "/etc/passwd.mp4"])
def test_file_names_with_folders_are_refused_as_the_provider_refuses_them(api, name):
    """One check, the contract's, for the server and the provider: the same message on both sides."""
    answer = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": name})
    assert answer.status_code == 400
    assert "bare file name without folders" in answer.json()["message"]


@pytest.mark.parametrize(
    "name",
    [
        "%2e%2e%2fx.mp4",
        "....mp4",
        "vidéo ünïcode.webm",
    ],
)
def test_file_names_cannot_escape_the_data_dir(api, videos, name, tmp_path):
    outside_before = {p for p in Path(api.server.data_dir).parent.rglob("*")}
    url = _upload_url(api, name)
    parts = urlsplit(url)
    assert parts.path.startswith("/uploads/") and parts.path.count("/") == 3
    assert ".." not in parts.path.split("/")[3].replace("....", "")
    assert httpx.put(url, content=videos["short"].path.read_bytes()).status_code == 200
    uploads = Path(api.server.data_dir) / "uploads"
    upload_id = parts.path.split("/")[2]
    assert [p.name for p in uploads.glob(f"{upload_id}*")] == [f"{upload_id}.{name.rsplit('.', 1)[1].lower()}"]
    outside_after = {p for p in Path(api.server.data_dir).parent.rglob("*")}
    assert {p for p in outside_after - outside_before if not p.is_relative_to(api.server.data_dir)} == set()
    assert api.wait(api.submit(url, 4))["status"] == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x\x00y.mp4", r"holds a control character \(NUL, at position 1\)"),
        ("clip.mp4\r\nX-Header: 1", r"holds a control character \(a carriage return, at position 8\)"),
        (".mp4", r"is only an extension: give the video a name before it, e.g. 'video.mp4'"),
    ],
)
def test_names_no_file_should_have_are_refused_with_the_contracts_message(api, name, message):
    """The provider refuses these before its call with the same message (one check, the contract's)."""
    answer = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": name})
    assert answer.status_code == 400 and re.search(message, answer.json()["message"]), answer.text


@pytest.mark.parametrize("name", ["video.mov", "video", "video.mp4.exe", "video.txt", "mp4", "", "video."])
def test_unsupported_extensions_are_refused(api, name):
    answer = api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": name})
    assert answer.status_code == 400
    assert "mp4" in answer.json()["message"] or "file_name" in answer.json()["message"]


@pytest.mark.parametrize("name", ["A.MP4", "b.Avi", "c.mkv", "d.WEBM"])
def test_supported_extensions_in_any_case(api, name):
    assert api.http.post("/video_upload_signed_url", params=api.key, json={"file_name": name}).status_code == 200


def test_oversize_uploads_get_413_and_leave_nothing(tmp_path, videos, make_api):
    with run_server(tmp_path / "data", max_upload_bytes=10_000) as server:
        api = make_api(server)
        uploads = tmp_path / "data" / "uploads"
        url = _upload_url(api)
        # Declared too big up front.
        answer = httpx.put(url, content=b"x" * 20_000)
        assert answer.status_code == 413
        # Not declared (chunked): counted while streaming.
        answer = httpx.put(url, content=iter([b"x" * 4_000] * 5))
        assert answer.status_code == 413
        assert list(uploads.iterdir()) == []
        assert httpx.put(url, content=b"y" * 10_000).status_code == 200
        assert [p.stat().st_size for p in uploads.iterdir()] == [10_000]


def test_remote_urls_are_fetched_only_when_allowed(tmp_path, videos, make_api, wait):
    import http.server
    import threading
    from functools import partial

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(videos["short"].path.parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    remote = f"http://127.0.0.1:{httpd.server_address[1]}/{videos['short'].path.name}"
    try:
        with run_server(tmp_path / "off") as server:
            api = make_api(server)
            answer = api.http.post(
                "/videoinfer",
                params=api.key,
                json={
                    "input_url": remote,
                    "infer_fps": 4,
                    "models": [
                        {
                            "model_id": "motion-detection",
                            "model_version": "1",
                            "inference_type": "object-detection",
                        }
                    ],
                },
            )
            assert answer.status_code == 400
            assert "allow-remote-urls" in answer.json()["message"]
        size = videos["short"].path.stat().st_size
        with run_server(tmp_path / "on", allow_remote_urls=True, max_upload_bytes=size) as server:
            api = make_api(server)
            state = api.wait(api.submit(remote, 4))
            assert state["status"] == 0
            assert httpx.get(state["output_signed_url"]).json()["frame_offset"] == [0, 6, 12, 18]
            missing = api.wait(api.submit(remote.replace("short", "missing") + "?api_key=" + server.api_key, 4))
            assert missing["status"] == 6
            assert server.api_key not in missing["error"]
            assert server.api_key not in api.http.get("/_jobs", params=api.key).text
        with run_server(tmp_path / "small", allow_remote_urls=True, max_upload_bytes=size - 1) as server:
            api = make_api(server)
            too_big = api.wait(api.submit(remote, 4))
            assert too_big["status"] == 6 and "limit" in too_big["error"]
    finally:
        httpd.shutdown()


def test_faults_endpoints_are_absent_by_default(tmp_path, make_api):
    with run_server(tmp_path / "data") as server:
        api = make_api(server)
        assert api.http.post("/_faults", params=api.key, json={"endpoint": "status"}).status_code == 404
        assert api.http.delete("/_faults", params=api.key).status_code == 404
        assert api.http.post("/_faults/jobs/x", params=api.key, json={"status": 3}).status_code == 404


def test_retention_deletes_uploads_results_and_jobs(tmp_path, videos, make_api, wait):
    with run_server(tmp_path / "data", retention_days=2 / 86400, sweep_interval_seconds=0.2) as server:
        api = make_api(server)
        url = api.upload(videos["short"].path)
        state = api.wait(api.submit(url, 4))
        assert state["status"] == 0
        job_id = state["job_id"]
        data = tmp_path / "data"
        wait(
            lambda: not any((data / "uploads").iterdir()) and not any((data / "results").iterdir()),
            what="the retention sweep",
        )
        wait(
            lambda: api.http.get("/videoinfer", params={**api.key, "job_id": job_id}).status_code == 404,
            what="the job to be forgotten",
        )
        assert httpx.get(state["output_signed_url"]).status_code == 404


def test_retention_sweep_runs_at_startup(tmp_path, videos, make_api):
    data = tmp_path / "data"
    with run_server(data) as server:
        api = make_api(server)
        state = api.wait(api.submit(api.upload(videos["short"].path), 4))
        assert state["status"] == 0
    assert any((data / "uploads").iterdir()) and any((data / "results").iterdir())
    time.sleep(1.1)  # older than the retention below
    with run_server(data, retention_days=1 / 86400, sweep_interval_seconds=3600) as server:
        assert not any((data / "uploads").iterdir()) and not any((data / "results").iterdir())
        api = make_api(server)
        assert api.http.get("/videoinfer", params={**api.key, "job_id": state["job_id"]}).status_code == 404

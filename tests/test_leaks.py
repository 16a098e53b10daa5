"""The API key and presigned URLs' signatures never leak: not in logs, XCom, rendered fields,
triggers or exception texts."""

from __future__ import annotations

import pytest
from helpers import API_KEY, CAPTURED, console, holds_key, key_leaks_in_airflow, run_dag, signature_leaks

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_full_dag_runs_leak_no_key(videoinfer_conn, sample_video, caplog, capfd):
    ok = run_dag("vi_test_pipeline", video=str(sample_video))
    failed = run_dag("vi_test_pipeline", video=str(sample_video), model_id="no-such-model")
    assert (ok.state, failed.state) == ("success", "failed")
    out, err = capfd.readouterr()
    assert "Video inference job" in console(caplog.text, out, err)  # the failure was logged...
    assert not holds_key(caplog.text + out + err)  # ...without the key
    assert key_leaks_in_airflow(API_KEY) == []


@pytest.mark.suite_leak_check
def test_nothing_the_suite_captured_holds_the_key_or_a_signature():
    """Runs last (see conftest): scans every captured log, output and failure text of the session
    for the key and for any unmasked presigned-URL credential (``X-Amz-Signature=``, ``sig=``...)."""
    assert CAPTURED, "no captured output was collected"
    assert [where for where, text in CAPTURED if holds_key(text)] == []
    assert {where: signature_leaks(text)[:3] for where, text in CAPTURED if signature_leaks(text)} == {}
    assert key_leaks_in_airflow(API_KEY) == []


def test_presigned_urls_keep_their_bucket_and_key_but_lose_their_credentials():
    """Presigned URLs as S3 (SigV4 and SigV2, with a session token), Google Cloud Storage and Azure make them."""
    import boto3
    from botocore.config import Config

    from videoinfer_contract.redaction import redact

    secrets = ["AKIAEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"]
    urls = []
    for version in ("s3", "s3v4"):
        client = boto3.client(
            "s3",
            region_name="eu-west-1",
            aws_access_key_id=secrets[0],
            aws_secret_access_key="example-secret",
            aws_session_token=secrets[1],
            config=Config(signature_version=version),
        )
        url = client.generate_presigned_url("get_object", Params={"Bucket": "videos", "Key": "in/clip.mp4"})
        signature = url.split("Signature=")[1].split("&")[0]
        urls.append(url)
        secrets.append(signature)
    urls.append(
        "https://storage.googleapis.com/videos/in/clip.mp4?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential="
        "sa%40project.iam.gserviceaccount.com%2F20240101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20240101T000000Z"
        "&X-Goog-Expires=86400&X-Goog-SignedHeaders=host&X-Goog-Signature=0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    )
    urls.append(
        "https://storage.googleapis.com/videos/in/clip.mp4?GoogleAccessId=sa%40p&Expires=9&Signature=c2lnMg%3D%3D"
    )
    urls.append(
        "https://account.blob.core.windows.net/videos/in/clip.mp4?sp=r&st=2024-01-01T00:00:00Z&se=2024-01-02T00:00:00Z"
        "&spr=https&sv=2022-11-02&sr=b&sig=c2FzU2lnbmF0dXJlRXhhbXBsZQ%3D%3D"
    )
    secrets += ["sa%40project", "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "c2lnMg", "c2FzU2lnbmF0dXJlRXhhbXBsZQ"]
    for url in urls:
        shown = redact(f"fetching input_url {url} answered HTTP 403")
        assert "in/clip.mp4?" in shown and "=***" in shown
        assert [secret for secret in secrets if secret in shown] == [], shown
        assert signature_leaks(shown) == [], shown
        assert signature_leaks(url), f"the leak scan misses {url}"
    assert redact("config=1&design=2&esig=3") == "config=1&design=2&esig=3"


def test_local_server_access_log_masks_the_key(tmp_path):
    """The CLI server logs every request line; the api_key query parameter must be masked there."""
    import requests

    from videoinfer_server.launch import run_server_process

    log = tmp_path / "server.log"
    with log.open("w") as output, run_server_process(tmp_path / "data", API_KEY, output=output) as base_url:
        assert requests.get(f"{base_url}/", params={"api_key": API_KEY}, timeout=5).status_code == 200
    text = log.read_text()
    assert '"GET /?api_key=*** HTTP/1.1" 200' in text
    assert API_KEY not in text


def test_one_log_filter_masks_the_key_in_messages_and_arguments():
    """The filter the HTTP clients' loggers get (and that the local server's access log can use)."""
    import logging

    import httpx

    from videoinfer_contract.redaction import RedactApiKeyFilter

    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/videoinfer?job_id=j&api_key={API_KEY}", "1.1", 200),
        None,
    )
    client = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s %d %s"',
        ("GET", httpx.URL(f"http://h/videoinfer?api_key={API_KEY}"), "HTTP/1.1", 200, "OK"),
        None,
    )
    inline = logging.LogRecord("x", logging.INFO, __file__, 1, f"GET /?api_key={API_KEY}", None, None)
    for record in (access, client, inline):
        assert RedactApiKeyFilter().filter(record)
        assert API_KEY not in record.getMessage() and "api_key=***" in record.getMessage()
    assert access.args[4] == 200 and access.getMessage().endswith('HTTP/1.1" 200')


def test_log_redaction_is_installed_once_by_the_transports(videoinfer_conn):
    import logging

    from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
    from videoinfer_contract.redaction import RedactApiKeyFilter, install_log_redaction

    VideoInferHook().get_conn()
    install_log_redaction()
    for name in ("urllib3.connectionpool", "httpx"):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactApiKeyFilter)]
        assert len(filters) == 1, name

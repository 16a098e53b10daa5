"""Data Staging on the local server, over real HTTP: signed upload and download URLs, reference ingests,
batch types, fault injection on the batch endpoints, and no key or signature in the server's logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from batch_client import BatchClient, wait_for
from helpers import API_KEY, signature_leaks

from videoinfer_contract import batch
from videoinfer_server.launch import RunningServer, run_server
from videoinfer_server.sample import make_sample_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    return [
        make_sample_video(folder / name, seconds=1, fps=10, size=(160, 120), seed=seed).path
        for name, seed in (("first.mp4", 7), ("second.mp4", 11))
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("data"), API_KEY, enable_faults=True, allow_remote_urls=True) as running:
        yield running


@pytest.fixture()
def client(server: RunningServer) -> Iterator[BatchClient]:
    api = BatchClient(server.base_url, API_KEY)
    api.http.delete("/_faults", params=api.key)
    yield api
    api.close()


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {key: value for key, value in parse_qsl(parts.query)}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_upload_urls_need_their_extension_header_and_downloads_their_signature(
    client: BatchClient, videos: list[Path]
) -> None:
    answer = client.ok(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": "first.mp4"}, batch_id="signed")
    url, headers = batch.parse_upload_details(answer)
    assert url.startswith(client.base_url + "/staging-uploads/") and "X-Goog-Signature=" in url
    bare = httpx.put(url, content=videos[0].read_bytes())
    assert bare.status_code == 400 and "extensionHeaders" in bare.json()["error"]
    assert client.count("signed") == 0
    assert httpx.put(url, headers=headers, content=videos[0].read_bytes()).status_code == 200
    assert client.count("signed") == 1

    (staged,) = client.files("signed")
    assert staged.file_name == "first.mp4" and staged.content_type == "videos"
    assert httpx.get(staged.download_url).content == videos[0].read_bytes()
    altered = _with_query(staged.download_url, **{"X-Goog-Signature": "0" * 64})
    assert httpx.get(altered).status_code == 403
    assert httpx.get(_with_query(staged.download_url, **{"X-Goog-Signature": None})).status_code == 403
    # A download URL's signature does not make it an upload URL.
    assert httpx.put(staged.download_url, headers=headers, content=b"x").status_code in (403, 404, 405)
    forged_put = _with_query(url, **{"X-Goog-Signature": "1" * 64})
    assert httpx.put(forged_put, headers=headers, content=b"x").status_code == 403


def test_a_batch_of_uploads_refuses_references_and_a_file_name_that_is_not_a_video(client: BatchClient) -> None:
    client.ok(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": "clip.mp4"}, batch_id="mixed")
    refused = client.call(
        batch.VIDEO_REFERENCES_ENDPOINT,
        json={"videoReferences": [{"name": "x.mp4", "url": "http://h/x.mp4"}]},
        batch_id="mixed",
    )
    assert refused.status_code == 409 and "do not mix" in refused.json()["error"]
    not_video = client.call(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": "notes.txt"}, batch_id="mixed")
    assert not_video.status_code == 400 and ".txt" in not_video.json()["error"]
    bad_id = client.call(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": "clip.mp4"}, batch_id="Bad Batch")
    assert bad_id.status_code == 400 and "lower-case" in bad_id.json()["error"]
    metadata = client.ok(batch.BATCH_METADATA_ENDPOINT, batch_id="mixed")["batch"]
    assert metadata["batchType"] == "simple-batch"


def test_video_references_are_fetched_in_the_background_once_and_no_secret_reaches_the_logs(
    client: BatchClient, videos: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # its request lines hold URLs
    client.stage("sources", *videos)
    references = [{"name": item.file_name, "url": item.download_url} for item in client.files("sources")]
    body = {"videoReferences": references, "ingestId": "ingest-1"}
    first = client.ok(batch.VIDEO_REFERENCES_ENDPOINT, {"displayName": "By reference"}, json=body, batch_id="by-ref")
    assert first == {"ingestId": "ingest-1", "duplicated": False}
    assert wait_for(lambda: client.count("by-ref") == 2, what="the references to be fetched")
    again = client.ok(batch.VIDEO_REFERENCES_ENDPOINT, json=body, batch_id="by-ref")
    assert again == {"ingestId": "ingest-1", "duplicated": True}
    assert client.count("by-ref") == 2
    (shard,) = batch.parse_shards_page(client.ok(batch.BATCH_SHARDS_ENDPOINT, batch_id="by-ref")).items
    assert (shard.status_name, shard.status_type, shard.objects, shard.failed) == ("ingested", "success", 2, False)
    metadata = batch.parse_batch(client.ok(batch.BATCH_METADATA_ENDPOINT, batch_id="by-ref"))
    assert (metadata.batch_type, metadata.display_name) == ("sharded-batch", "By reference")
    fetched = {item.file_name: httpx.get(item.download_url).content for item in client.files("by-ref")}
    assert fetched == {path.name: path.read_bytes() for path in videos}

    assert client.create("from-refs", client.definition("by-ref", max_video_fps=2)).status_code == 200
    assert client.wait_ended("from-refs").state is batch.BatchJobState.SUCCEEDED
    logged = "\n".join(record.getMessage() for record in caplog.records)
    names = {record.name for record in caplog.records}
    assert {"videoinfer_server.batch.ingest", "videoinfer_server.batch.runner", "httpx"} <= names  # logs were seen
    assert "/staging-downloads/" in logged  # the fetches of the signed URLs were logged, redacted
    assert API_KEY not in logged
    assert signature_leaks(logged) == []


def test_references_need_the_remote_url_allowance(tmp_path: Path) -> None:
    with run_server(tmp_path, API_KEY) as closed:
        client = BatchClient(closed.base_url, API_KEY)
        refused = client.call(
            batch.VIDEO_REFERENCES_ENDPOINT,
            json={"videoReferences": [{"name": "a.mp4", "url": "https://example.com/a.mp4"}]},
            batch_id="refs",
        )
        client.close()
    assert refused.status_code == 400 and "--allow-remote-urls" in refused.json()["error"]


def test_faults_hit_the_batch_endpoints_by_name_and_every_request_is_counted(client: BatchClient) -> None:
    before = client.requests().get("staging_batches", 0)
    client.http.post(
        "/_faults",
        params=client.key,
        json={"endpoint": "staging_batches", "status_code": 503, "retry_after": 1, "count": 2},
    )
    assert [client.call(batch.LIST_BATCHES_ENDPOINT).status_code for _ in range(3)] == [503, 503, 200]
    assert client.requests()["staging_batches"] == before + 3
    client.ok(batch.UPLOAD_VIDEO_ENDPOINT, {"fileName": "x.mp4"}, batch_id="faulted")
    client.http.post("/_faults", params=client.key, json={"endpoint": "staging_count", "action": "malformed"})
    malformed = client.call(batch.BATCH_COUNT_ENDPOINT, batch_id="faulted")
    assert malformed.status_code == 200 and not malformed.text.startswith("{")
    assert client.count("faulted") == 0  # the fault hit once; the upload URL was handed out, nothing PUT yet
    unknown = client.http.post("/_faults", params=client.key, json={"endpoint": "batch_nothing"})
    assert unknown.status_code == 400 and "batch_create_job" in unknown.text

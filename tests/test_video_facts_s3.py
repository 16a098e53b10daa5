"""The facts of a 1 GiB MP4 whose ``moov`` box sits at its end, read from moto's S3 server in two ranged
GETs: through the storage URI (s3fs, the worker's connection) and through a presigned URL (plain http).

moto records every request it receives (method, URL, headers): the tests count the GETs of the object
and the bytes their ``Range`` headers ask for, never a time. The object is a real small MP4 grown to
1 GiB by a larger ``mdat`` (ffprobe reads it as it reads the small one), sent once in one PUT.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from helpers import aws_connection_json, moto_client, run_moto_server, task_context
from video_files import VIDEOS, GiB, ffprobe_facts, have_ffmpeg, make, padded_mp4_parts, write_padded_mp4

from airflow_provider_videoinfer.operators.cost import read_video_facts
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from videoinfer_contract.facts import BLOCK_SIZE, http_source, read_facts

pytestmark = [
    pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed (make test installs them)"),
]
pytest.importorskip("s3fs", reason="the s3 extra (apache-airflow-providers-amazon[s3fs]) is not installed")

KEY = "big/moov-last.mp4"
URI = f"s3://moto_facts@videos/{KEY}"
SMALL = next(spec for spec in VIDEOS if spec.name == "moov_last_2997.mp4")


class Bucket:
    """moto's S3 server holding the 1 GiB MP4, its recording of requests, and the same file on disk."""

    def __init__(self, url: str, record: Path, local: Path, moov_at: int) -> None:
        self.url, self.record, self.local, self.moov_at = url, record, local, moov_at

    def reset(self) -> None:
        """Forget the requests recorded so far."""
        requests.post(f"{self.url}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()

    def reads(self) -> list[tuple[str, str | None, str]]:
        """(method, Range header, user agent) of each request moto received for the object since :meth:`reset`."""
        found = []
        for line in self.record.read_text().splitlines() if self.record.exists() else []:
            entry = json.loads(line)
            if urlsplit(entry["url"]).path == f"/videos/{KEY}":
                headers = {key.lower(): value for key, value in entry["headers"].items()}
                found.append((entry["method"], headers.get("range"), headers.get("user-agent", "")))
        return found


def uploader(url: str):
    """A boto3 client of moto's server that computes no checksum of what it sends (a quarter of the
    1 GiB PUT's time)."""
    import boto3
    from botocore.config import Config

    config = Config(request_checksum_calculation="when_required")
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    return boto3.client("s3", endpoint_url=url, config=config, **keys)


@pytest.fixture(scope="module")
def bucket(tmp_path_factory) -> Bucket:
    folder = tmp_path_factory.mktemp("facts-s3")
    small = make(SMALL, folder)
    local = write_padded_mp4(small, folder / "moov-last.mp4", GiB)  # sparse: no disk, no time
    head, padding, moov = padded_mp4_parts(small, GiB)
    record = folder / "requests.jsonl"
    with run_moto_server(record_to=record) as url:
        requests.post(f"{url}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()  # not the 1 GiB body
        client = moto_client(url)
        client.create_bucket(Bucket="videos")
        with open(local, "rb") as body:
            uploader(url).put_object(Bucket="videos", Key=KEY, Body=body)
        assert client.head_object(Bucket="videos", Key=KEY)["ContentLength"] == GiB
        requests.post(f"{url}/moto-api/recorder/start-recording", timeout=10).raise_for_status()
        yield Bucket(url, record, local, len(head) + padding)


@pytest.fixture
def s3_connection(bucket, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_FACTS", aws_connection_json(bucket.url))
    bucket.reset()
    return bucket


def expected_reads(bucket: Bucket, size_known: bool) -> list[tuple[str, str]]:
    """The two reads: the first block (ftyp and the mdat's header), then a block from the moov box on, up
    to the file's end when the first answer told its size (an http ``Content-Range``; s3fs does not say)."""
    end = GiB if size_known else bucket.moov_at + BLOCK_SIZE
    return [("GET", f"bytes=0-{BLOCK_SIZE - 1}"), ("GET", f"bytes={bucket.moov_at}-{end - 1}")]


def assert_facts_of_the_big_file(facts, bucket: Bucket) -> None:
    probe = ffprobe_facts(bucket.local)
    assert facts.problem is None, facts.problem
    assert (facts.container, facts.codec, facts.width, facts.height) == ("MP4", probe["codec"], 160, 120)
    assert (facts.frame_rate, facts.frame_count) == (probe["frame_rate"], probe["frame_count"])
    assert facts.duration == pytest.approx(probe["duration"], abs=1e-3)
    # Two reads, a block each; the second stops at the end of the file.
    assert facts.requests == 2
    assert facts.bytes_read == BLOCK_SIZE + (GiB - bucket.moov_at) < 2 * BLOCK_SIZE


def test_the_storage_uri_is_read_in_two_ranged_gets(s3_connection):
    facts = read_video_facts(URI)

    assert_facts_of_the_big_file(facts, s3_connection)
    reads = s3_connection.reads()
    assert [(method, ranged) for method, ranged, _ in reads] == expected_reads(s3_connection, size_known=False)
    assert all("Botocore" in agent for _, _, agent in reads)


def test_a_presigned_url_is_read_in_two_ranged_gets(s3_connection):
    client = moto_client(s3_connection.url)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "videos", "Key": KEY}, ExpiresIn=600)

    facts = read_facts(http_source(url, "the presigned URL"))

    assert_facts_of_the_big_file(facts, s3_connection)
    reads = s3_connection.reads()
    assert [(method, ranged) for method, ranged, _ in reads] == expected_reads(s3_connection, size_known=True)
    assert all("urllib" in agent for _, _, agent in reads)


def test_a_dry_run_on_a_storage_uri_reads_two_blocks_and_signs_nothing(s3_connection, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_DEFAULT", json.dumps({"conn_type": "videoinfer", "password": "k"}))
    operator = VideoInferSubmitJobOperator(
        task_id="submit",
        input_url=URI,
        infer_fps=5,
        models=[{"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}],
        dry_run=True,
    )
    context = task_context()

    answer = operator.execute(context=context)

    assert answer["sampled_frames"] == 10 and answer["frames"] == 10 and answer["video_seconds"] == 2.002
    assert context["ti"].pushed["estimate"] == answer
    assert [method for method, _, _ in s3_connection.reads()] == ["GET", "GET"]

"""moto's standalone S3 server as a process: the deployment's object storage (videos, results, task logs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
import requests
from processes import Process, wait_until

from videoinfer_server.launch import free_port

#: The Airflow connection (type ``aws``) of the moto server, as in ``s3://moto_s3@bucket/key``.
CONN_ID = "moto_s3"
BUCKETS = ("videos", "results", "airflow-logs")


class S3Server:
    """moto's S3 server on 127.0.0.1 and a free port, with the buckets of :data:`BUCKETS`.

    :param logs: the folder of its log file.
    :param env: its environment.
    """

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = Process("moto-s3", command, env, logs / "moto-s3.log")

    def start(self) -> Process:
        """Start it, wait until it answers, create the buckets; return its process."""
        self.process.start()

        def answers() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"moto's S3 server exited; see {self.process.log_path}")
            return requests.get(f"{self.url}/moto-api/", timeout=2).ok

        wait_until("moto's S3 server", answers, 60, 0.2)
        for bucket in BUCKETS:
            self.client().create_bucket(Bucket=bucket)
        return self.process

    def client(self) -> Any:
        """A boto3 S3 client of the server."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def connection(self) -> str:
        """The ``AIRFLOW_CONN_MOTO_S3`` value: an ``aws`` connection whose ``endpoint_url`` is the server."""
        extra = {"endpoint_url": self.url, "region_name": "us-east-1"}
        return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys under ``prefix`` in ``bucket``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        """The bytes of one object."""
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

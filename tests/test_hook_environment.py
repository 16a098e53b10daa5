"""Both transports trust what the environment says, as requests does: a CA known only through
``SSL_CERT_FILE``, and proxies from ``HTTP_PROXY`` / ``NO_PROXY``.

A real HTTPS server on loopback, whose certificate is signed by a CA generated here (with
``cryptography``), answers the status endpoint; a real forwarding proxy records what passes.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import API_KEY, connection_json

from airflow_provider_videoinfer import contract
from airflow_provider_videoinfer.exceptions import VideoInferConnectionError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferAsyncClient, VideoInferHook

DONE = {"status": 0, "output_signed_url": "https://results.example/r.json"}
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca_and_leaf(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA, and a certificate for 127.0.0.1 signed by it: (ca.pem, leaf.pem, leaf.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("videoinfer test CA"))
        .issuer_name(_name("videoinfer test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a succeeded job, and records the request line (for the proxy test)."""

    seen: list[str]

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self.seen.append(self.path)
        body = json.dumps(DONE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # request lines hold the key: never print them
        pass


@contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP(S) server on a free loopback port, in a thread; yields (base URL, request paths seen)."""
    seen: list[str] = []
    handler = type("Handler", (_StatusHandler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in CA_VARIABLES + PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def private_ca_server(tmp_path, clean_environment):
    ca, leaf, key = _make_ca_and_leaf(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(leaf, key)
    with _serve(tls) as (base_url, _):
        clean_environment.setenv("AIRFLOW_CONN_PRIVATE_CA", connection_json(base_url, retry_max_attempts=1))
        yield base_url, ca


async def _async_state(conn_id: str) -> contract.JobState:
    client = await VideoInferAsyncClient.from_conn_id(conn_id)
    try:
        return await client.get_job("job-1")
    finally:
        await client.aclose()


async def test_a_ca_known_only_through_ssl_cert_file_is_trusted_by_both_transports(private_ca_server, monkeypatch):
    base_url, ca = private_ca_server
    with pytest.raises(requests.exceptions.SSLError):  # the CA is in no default bundle
        requests.get(base_url, timeout=5)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    assert (await _async_state("private_ca")).output_url == DONE["output_signed_url"]
    assert VideoInferHook("private_ca").get_job("job-1").output_url == DONE["output_signed_url"]


async def test_without_the_ca_both_transports_say_the_certificate_is_not_trusted(private_ca_server):
    expected = "is not trusted: if your network uses its own CA, point SSL_CERT_FILE or REQUESTS_CA_BUNDLE"
    with pytest.raises(VideoInferConnectionError, match=expected):
        await _async_state("private_ca")
    with pytest.raises(VideoInferConnectionError, match=expected):
        VideoInferHook("private_ca").get_job("job-1")


async def test_requests_ca_bundle_is_honoured_by_the_async_client_too(private_ca_server, monkeypatch):
    base_url, ca = private_ca_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    assert (await _async_state("private_ca")).status is contract.JobStatus.SUCCEEDED


async def test_both_transports_go_through_the_environment_proxy_unless_no_proxy(clean_environment):
    # The service's host does not resolve: only a proxy can reach it.
    clean_environment.setenv(
        "AIRFLOW_CONN_BEHIND_PROXY", connection_json("http://service.invalid:9050", retry_max_attempts=1)
    )
    with _serve() as (proxy_url, seen):
        clean_environment.setenv("HTTP_PROXY", proxy_url)
        assert (await _async_state("behind_proxy")).status is contract.JobStatus.SUCCEEDED
        assert VideoInferHook("behind_proxy").get_job("job-1").status is contract.JobStatus.SUCCEEDED
        assert [path.split("?")[0] for path in seen] == ["http://service.invalid:9050/videoinfer"] * 2
        assert all(f"api_key={API_KEY}" in path for path in seen)  # the proxy saw the request, as it must
        clean_environment.setenv("NO_PROXY", "service.invalid")
        with pytest.raises(VideoInferConnectionError, match="cannot be resolved"):
            await _async_state("behind_proxy")
        with pytest.raises(VideoInferConnectionError, match="cannot be resolved"):
            VideoInferHook("behind_proxy").get_job("job-1")
        assert len(seen) == 2

"""A real S3 endpoint on 127.0.0.1 for tests: moto's standalone server, one per test session, with one bucket.

pyarrow (its AWS SDK) honours ``AWS_ENDPOINT_URL_S3``, so once the environment below is set, plain ``s3://bucket/..``
URIs resolve to this server through ``pyarrow.fs.FileSystem.from_uri`` with no code of ours in between.  Ray workers
inherit the environment of the process that calls ``ray.init``, so the server is started (and the environment set)
right after collection whenever a collected test uses the ``s3`` fixture, before any test can start Ray.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

BUCKET = "dataengine-test"
KEY, SECRET, REGION = "testing", "testing", "us-east-1"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """What a process (a Ray worker, a CLI run) needs to reach this server by ``s3://`` URIs."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups (each waits for a timeout)
        }

    def filesystem(self) -> pafs.S3FileSystem:
        host = self.endpoint.removeprefix("http://")
        return pafs.S3FileSystem(
            endpoint_override=host, scheme="http", access_key=KEY, secret_key=SECRET, region=REGION
        )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def upload(self, local: Path, key: str) -> str:
        """Copy a local file or directory tree under ``key``; return its ``s3://`` URI."""
        fs = self.filesystem()
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            rel = key if local.is_file() else f"{key.rstrip('/')}/{path.relative_to(local).as_posix()}"
            with fs.open_output_stream(f"{self.bucket}/{rel}", compression=None) as f:
                f.write(path.read_bytes())
        return self.uri(key)


_server: S3Server | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the server's process: end it when pytest ends, even if pytest is killed and never tears down."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_server() -> S3Server:
    """Start moto's server (once), make the bucket and export the environment; the same server on a second call."""
    global _server
    if _server is not None:
        return _server
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    server = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket=BUCKET, process=process)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto server did not start on port {port}") from None
            time.sleep(0.2)
    host = server.endpoint.removeprefix("http://")
    pafs.S3FileSystem(
        endpoint_override=host, scheme="http", access_key=KEY, secret_key=SECRET, region=REGION,
        allow_bucket_creation=True,
    ).create_dir(BUCKET)  # fmt: skip
    os.environ.update(server.env())
    _server = server
    return server


def stop_server() -> None:
    global _server
    if _server is not None:
        _server.process.terminate()
        _server.process.wait(timeout=30)
        for name in _server.env():
            os.environ.pop(name, None)
        _server = None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the server before any test runs (so before any ``ray.init``) when a collected test needs it."""
    if any("s3" in getattr(item, "fixturenames", ()) for item in items):
        start_server()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_server()


@pytest.fixture(scope="session")
def s3() -> S3Server:
    """The session's S3 server; ``s3://`` URIs in its bucket work here and in Ray workers."""
    return start_server()

"""Object storage: readers, ``dataengine.storage`` and ``inspect`` against a real S3 server on 127.0.0.1."""

from __future__ import annotations

import pyarrow.fs as pafs

from tests.s3 import S3Server


def test_s3_fixture_resolves_plain_uris(s3: S3Server) -> None:
    fs = s3.filesystem()
    with fs.open_output_stream(f"{s3.bucket}/probe/x.txt") as f:
        f.write(b"hello")
    resolved, path = pafs.FileSystem.from_uri(s3.uri("probe/x.txt"))
    assert resolved.open_input_stream(path).read() == b"hello"

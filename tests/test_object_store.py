"""Object storage: readers, ``dataengine.storage`` and ``inspect`` against a real S3 server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from dataengine import storage
from tests.s3 import S3Server


def test_s3_fixture_resolves_plain_uris(s3: S3Server) -> None:
    fs = s3.filesystem()
    with fs.open_output_stream(f"{s3.bucket}/probe/x.txt") as f:
        f.write(b"hello")
    resolved, path = pafs.FileSystem.from_uri(s3.uri("probe/x.txt"))
    assert resolved.open_input_stream(path).read() == b"hello"


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh output root: a local directory, or a prefix in the test bucket."""
    if request.param == "local":
        return str(tmp_path / "out")
    s3: S3Server = request.getfixturevalue("s3")
    return s3.uri(f"storage/{request.node.name}")


def test_storage_write_read_list_remove(root: str) -> None:
    assert not storage.exists(root) and storage.list_files(root) == []
    storage.write_text(storage.join(root, "manifest.json"), "{}\n")
    storage.write_bytes(storage.join(root, "held_out", "a.arrow"), b"\x00\x01")
    storage.write_text(storage.join(root, "文档.txt"), "中文")
    assert storage.list_files(root) == ["held_out/a.arrow", "manifest.json", "文档.txt"]
    assert storage.read_bytes(storage.join(root, "held_out/a.arrow")) == b"\x00\x01"
    assert storage.read_text(storage.join(root, "文档.txt")) == "中文"
    with storage.open_input(storage.join(root, "held_out/a.arrow")) as f:
        f.seek(1)
        assert f.read() == b"\x01"
    assert storage.sha256(storage.join(root, "manifest.json")) == hashlib.sha256(b"{}\n").hexdigest()
    storage.remove(storage.join(root, "held_out"))
    assert storage.list_files(root) == ["manifest.json", "文档.txt"]
    storage.remove(storage.join(root, "manifest.json"))
    storage.remove(storage.join(root, "nothing-here"))
    assert storage.list_files(root) == ["文档.txt"]


def test_storage_failed_write_leaves_nothing_and_keeps_the_old_bytes(root: str) -> None:
    target = storage.join(root, "shard-00000.arrow")
    with pytest.raises(RuntimeError), storage.open_output(target) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert not storage.exists(target) and storage.list_files(root) == []
    storage.write_bytes(target, b"whole")
    with pytest.raises(RuntimeError), storage.open_output(target) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert storage.read_bytes(target) == b"whole" and storage.list_files(root) == ["shard-00000.arrow"]


def test_storage_local_paths_and_bad_schemes(tmp_path: Path) -> None:
    fs, path = storage.resolve(f"file://{tmp_path}/x")
    assert isinstance(fs, pafs.LocalFileSystem) and path == f"{tmp_path}/x"
    assert storage.join(Path("out"), "shards/", "/a") == "out/shards/a"
    assert storage.join("s3://b/out/", "manifest.json") == "s3://b/out/manifest.json"
    with pytest.raises(ValueError, match="nosuch://b/x: not a storage URI"):
        storage.resolve("nosuch://b/x")

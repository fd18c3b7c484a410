"""Outputs by path or URI: one set of calls for a local directory and an object store (``s3://``, ``gs://``).

A local path behaves as it always has (a file appears by an atomic rename, see ``dataengine.atomic``); a URI goes
through ``pyarrow.fs``, where an object is uploaded only once its writer has finished, so a write that fails midway
leaves no object at all and readers never see half of one.  Endpoints and credentials come from the
environment as the AWS SDK reads them (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, an instance role...).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs

from dataengine.atomic import atomic_open, json_document

Target = str | Path
BUCKET_SCHEMES = ("s3", "gs", "gcs")
SPOOL_BYTES = 64 << 20  # an object being written is held in memory up to this, then in a temporary file


def is_uri(target: Target) -> bool:
    """True for an object-store (or any non-local) URI; a ``file://`` URI is a local path."""
    text = str(target)
    return "://" in text and not text.startswith("file://")


def resolve(target: Target) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)``; ``ValueError`` for a scheme ``pyarrow.fs`` does not know.

    A bucket URI's key is taken as it is written (spaces, brackets, any Unicode), not parsed as a URI path.
    """
    text = str(target)
    if not is_uri(text):
        return pafs.LocalFileSystem(), os.path.abspath(text.removeprefix("file://"))
    scheme, _, rest = text.partition("://")
    try:
        if scheme in BUCKET_SCHEMES:
            bucket, _, key = rest.partition("/")
            return _bucket_filesystem(f"{scheme}://{bucket}"), f"{bucket}/{key}".rstrip("/")
        return pafs.FileSystem.from_uri(text)
    except pa.ArrowInvalid as e:
        raise ValueError(f"{text}: not a storage URI pyarrow can open ({e})") from None


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(root: str) -> pafs.FileSystem:
    """One filesystem per bucket and process: making one can cost a request (the bucket's region)."""
    return pafs.FileSystem.from_uri(root)[0]


def join(base: Target, *parts: str) -> str:
    """``base/part/...`` with ``/`` whatever the base (a URI keeps its scheme)."""
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts if p)])


def exists(target: Target) -> bool:
    fs, path = resolve(target)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def size(target: Target) -> int:
    fs, path = resolve(target)
    return fs.get_file_info(path).size


def is_dir(target: Target) -> bool:
    """A directory, or an object-store prefix that has objects below it."""
    fs, path = resolve(target)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def list_files(prefix: Target, recursive: bool = True) -> list[str]:
    """The files below ``prefix`` as sorted ``/``-separated paths relative to it; none if it is absent."""
    fs, path = resolve(prefix)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    root = path.rstrip("/") + "/"
    return sorted(i.path.removeprefix(root) for i in infos if i.type == pafs.FileType.File)


def read_bytes(target: Target) -> bytes:
    fs, path = resolve(target)
    with fs.open_input_stream(path, compression=None) as f:
        return f.read()


def read_text(target: Target) -> str:
    return read_bytes(target).decode("utf-8")


def open_input(target: Target) -> pa.NativeFile:
    """A random-access file: memory-mapped when local (no copy), ranged reads from an object store."""
    fs, path = resolve(target)
    if isinstance(fs, pafs.LocalFileSystem):
        return pa.memory_map(path)
    return fs.open_input_file(path)


def sha256(target: Target) -> str:
    h = hashlib.sha256()
    with open_input(target) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def open_output(target: Target) -> Iterator[IO[bytes]]:
    """A binary file to write ``target`` whole: it appears when the block ends normally, and not at all if it raises.

    Local: a temporary beside it, renamed into place (parent directories made).  Object store: the bytes are held
    (in memory up to ``SPOOL_BYTES``, then in a temporary file) and sent in one upload at the end, since an upload
    stream closed by an exception would still publish its partial object.
    """
    fs, path = resolve(target)
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path, "wb") as f:
            yield f
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        yield buffer
        buffer.seek(0)
        with fs.open_output_stream(path, compression=None) as f:
            shutil.copyfileobj(buffer, f, SPOOL_BYTES)


def write_bytes(target: Target, data: bytes) -> None:
    with open_output(target) as f:
        f.write(data)


def write_text(target: Target, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Target, data: Any) -> None:
    write_text(target, json_document(data))


def remove(target: Target) -> None:
    """Delete a file, or everything below a directory or prefix; nothing there is not an error."""
    fs, path = resolve(target)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.File:
        fs.delete_file(path)
    elif kind == pafs.FileType.Directory:
        fs.delete_dir(path)

"""File listing and opening for local paths and any ``pyarrow.fs`` URL (``s3://``, ``gs://``, ``hdfs://``)."""

from __future__ import annotations

import glob
import io
import os
import re
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from dataengine.storage import is_uri, resolve


def expand(pattern: str) -> list[str]:
    """Files matching a path, a glob or a directory (recursively), sorted so the order is stable."""
    if is_uri(pattern):
        return _expand_remote(pattern)
    pattern = pattern.removeprefix("file://")
    if any(ch in pattern for ch in "*?["):
        return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    if os.path.isdir(pattern):
        return walk(pattern)
    if os.path.exists(pattern):
        return [pattern]
    raise ValueError(f"input path does not exist: {pattern}")


def walk(root: str) -> list[str]:
    """Every file and symlink below ``root``, sorted, without following directory symlinks.

    A symlink to a directory is listed as a file (never entered), so a reader counts it instead of it vanishing.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and d not in links)
        found.extend(os.path.join(dirpath, f) for f in filenames + links)
    return sorted(found)


def _expand_remote(pattern: str) -> list[str]:
    """As ``expand`` for a URI; a store that cannot be listed (no such bucket, no access) is a one-line error."""
    try:
        return _list_remote(pattern)
    except OSError as e:
        raise ValueError(f"cannot list {pattern}: {str(e).splitlines()[0]}") from None


def _list_remote(pattern: str) -> list[str]:
    fs, path = resolve(pattern.split("*")[0].rsplit("/", 1)[0] if "*" in pattern else pattern)
    scheme = pattern.split("://", 1)[0]
    if "*" in pattern:
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        except FileNotFoundError:  # no such prefix: no match, as a local glob under a missing directory
            return []
        matcher = _glob_regex(pattern.split("://", 1)[1])
        return sorted(f"{scheme}://{i.path}" for i in infos if i.is_file and matcher.match(i.path))
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        return sorted(f"{scheme}://{i.path}" for i in infos if i.is_file)
    if info.type == pafs.FileType.NotFound:
        raise ValueError(f"input path does not exist: {pattern}")
    return [pattern]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A key pattern as local globs read it: ``*`` stays within one path segment, ``**`` spans any number."""
    parts = re.split(r"(\*\*/|\*\*|\*)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*"}
    return re.compile("".join(table.get(part) or re.escape(part) for part in parts) + r"\Z")


REMOTE_BUFFER = 1 << 20  # an object store answers each read of a remote file with a request: read in MiB pieces


def open_input(path: str) -> BinaryIO:
    """Open a local or remote file for binary reading (remote: buffered, so a decompressor's 8 KiB reads are not
    8 KiB requests)."""
    if is_uri(path):
        fs, inner = resolve(path)
        return fs.open_input_stream(inner, compression=None, buffer_size=REMOTE_BUFFER)
    return open(path.removeprefix("file://"), "rb")


def open_seekable(path: str) -> BinaryIO:
    """Open a local or remote file for random access (a reader that skips damage needs to seek); buffered."""
    if is_uri(path):
        fs, inner = resolve(path)
        return io.BufferedReader(fs.open_input_file(inner), REMOTE_BUFFER)
    return open(path.removeprefix("file://"), "rb")


def file_size(path: str) -> int:
    if is_uri(path):
        fs, inner = resolve(path)
        return fs.get_file_info(inner).size
    return os.lstat(path.removeprefix("file://")).st_size


def relative(path: str, root: str) -> str:
    return Path(path).relative_to(root).as_posix() if not is_uri(path) else path.removeprefix(root).lstrip("/")

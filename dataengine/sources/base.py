"""What a reader is: it lists the units of work of a source on the driver, then reads one unit in a worker.

A unit is small (a file, or one file of a git tree) so Ray Data can spread units across workers.  A reader
yields one document row per input document; an input it cannot read still yields a row, with ``reject``
set to ``read:<reason>``, so it is counted and never silently lost.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.files import expand, file_size, open_input
from dataengine.storage import is_uri


@dataclass(frozen=True)
class Unit:
    source: str
    spec: int  # index into ``SourceConfig.path_specs()``
    path: str  # the file (or repository) to read
    member: str = ""  # git: the file inside the tree
    blob: str = ""  # git: the blob id
    size: int = -1
    error: str = ""  # "reason: detail" when listing already failed (an unreachable repository, say)
    url: str = ""  # with ``error``: where the failed document came from
    offset: int = 0  # a byte range of ``path`` (a crawl's WARC file is read in pieces, in parallel)
    end: int = -1  # -1: to the end of the file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reader(Protocol):
    kind: str  # what the extract stage does with ``raw``: html | code | text

    def units(self, source: SourceConfig) -> Iterator[Unit]: ...

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]: ...


def read_error(
    source: SourceConfig, meta: dict[str, Any], url: str, kind: str, reason: str, detail: str
) -> dict[str, Any]:
    """The row for an input that could not be read: counted as ``read:<reason>`` with the error in detail."""
    return doc_row(
        source=source.name,
        kind=kind,
        url=url,
        lang=source.lang,
        meta=meta,
        reject=f"read:{reason}",
        reject_detail=detail[:500],
    )


def file_units(source: SourceConfig, keep: Callable[[str], bool] = lambda path: True) -> Iterator[Unit]:
    """One unit per file matched by the source's paths (globs, directories, URLs), in a stable order.

    A named pipe, socket or device is a ``not_regular_file`` unit here, so that no reader ever opens it (opening
    a pipe blocks until a writer comes).
    """
    for i, spec in enumerate(source.path_specs()):
        for path in expand(spec.path):
            if not keep(path):
                continue
            mode = 0 if is_uri(path) else os.lstat(path.removeprefix("file://")).st_mode
            if mode and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                detail = f"not_regular_file: file mode {stat.filemode(mode)}"
                yield Unit(source=source.name, spec=i, path=path, error=detail, url=path)
            else:
                yield Unit(source=source.name, spec=i, path=path)


class UnreadableFile(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def read_capped(path: str, max_bytes: int) -> bytes:
    """A whole file, or ``UnreadableFile``: ``too_large`` unread, ``symlink``, ``not_regular_file``, ``unreadable``.

    A local file is opened with ``O_NOFOLLOW``: a symlink may point outside the source (``/etc/passwd``) or loop,
    so it is refused as ``source_dir`` and ``git`` refuse theirs, with no window between a check and the open.
    ``O_NONBLOCK`` and the regular-file check keep a named pipe or a device from blocking a worker forever.
    """
    if is_uri(path):
        try:
            size = file_size(path)
            if size > max_bytes:
                raise UnreadableFile("too_large", f"{size} bytes > {max_bytes}")
            with open_input(path) as f:
                return f.read()
        except OSError as e:
            raise UnreadableFile("unreadable", str(e)) from None
    local = path.removeprefix("file://")
    try:
        fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP and os.path.islink(local):
            raise UnreadableFile("symlink", os.readlink(local)) from None
        raise UnreadableFile("unreadable", str(e)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile("not_regular_file", f"file mode {stat.filemode(st.st_mode)}")
        if st.st_size > max_bytes:
            raise UnreadableFile("too_large", f"{st.st_size} bytes > {max_bytes}")
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise UnreadableFile("unreadable", str(e)) from None
    if len(data) > max_bytes:  # it grew after the size check
        raise UnreadableFile("too_large", f"more than {max_bytes} bytes")
    return data


def empty_file(source: SourceConfig, meta: dict[str, Any], path: str, kind: str) -> dict[str, Any]:
    """The row for a container file (JSONL, WARC, Parquet) holding no document at all: counted, not vanished."""
    return read_error(source, meta, path, kind, "empty_file", "no document in the file")


_SURROGATE = re.compile("[\ud800-\udfff]")


def arrow_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Replace lone surrogates in a row's strings by U+FFFD, since Arrow cannot store them.

    They come from file names that are not UTF-8 (decoded with ``surrogateescape``) and from ``\\ud83d`` escapes
    in JSON.  The id was already computed from the exact name and content, so it stays distinct.
    """
    for key in ("url", "text", "meta", "reject_detail"):
        value = row[key]
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                row[key] = _SURROGATE.sub("\ufffd", value)
    return row

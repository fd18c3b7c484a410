"""What a reader is: it lists the units of work of a source on the driver, then reads one unit in a worker.

A unit is small (a file, or one file of a git tree) so Ray Data can spread units across workers.  A reader
yields one document row per input document; an input it cannot read still yields a row, with ``reject``
set to ``read:<reason>``, so it is counted and never silently lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.files import expand, file_size, open_input


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
    """One unit per file matched by the source's paths (globs, directories, URLs), in a stable order."""
    for i, spec in enumerate(source.path_specs()):
        for path in expand(spec.path):
            if keep(path):
                yield Unit(source=source.name, spec=i, path=path)


class UnreadableFile(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def read_capped(path: str, max_bytes: int) -> bytes:
    """A whole file, or ``UnreadableFile`` (``too_large`` without reading it, ``unreadable`` on an OS error)."""
    try:
        size = file_size(path)
        if size > max_bytes:
            raise UnreadableFile("too_large", f"{size} bytes > {max_bytes}")
        with open_input(path) as f:
            return f.read()
    except OSError as e:
        raise UnreadableFile("unreadable", str(e)) from None

"""Write a file so that readers never see half of it: write beside it under a temporary name, then rename.

A rename within one directory is atomic on POSIX, so a reader (another build, a resumed run, a trainer reading
the manifest) sees the old file or the new one, never a torn one; a failed write leaves no temporary behind.
The temporary name carries the process id, so concurrent writers of the same file do not clobber each other's
half-written bytes (the last rename wins, whole).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (for writers that take a file name); renamed to ``path``
    when the block ends normally, removed when it raises."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing ("w" text as UTF-8, or "wb"), renamed into place once closed."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f


def write_atomic(path: str | Path, data: str | bytes) -> None:
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def json_document(data: Any) -> str:
    """The project's JSON files: indented, non-ASCII kept as is, keys in the order given."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_atomic(path, json_document(data))

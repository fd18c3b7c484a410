"""Exports of a build output to the formats other trainers read: ``python -m dataengine.export OUT --format F``.

One module per format, each a function ``export(out, dest, split) -> summary`` that writes ``dest`` from the
shards alone.  ``out`` is a directory or an object-store URI; ``dest`` is a local directory, written under a
temporary name and renamed, so it is complete or absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataengine import storage
from dataengine.export import hf, mds, megatron, nanogpt
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import Split

FORMATS: dict[str, Callable[[str, Path, Split], dict[str, Any]]] = {
    "hf": hf.export,
    "megatron": megatron.export,
    "nanogpt": nanogpt.export,
    "mds": mds.export,
}


def export(out: storage.Target, fmt: str, dest: Path | None = None, split: Split = "train") -> dict[str, Any]:
    """Write ``out``'s ``split`` as ``fmt`` into ``dest`` (default ``OUT/exports/FMT`` for a local ``out``);
    refuse to overwrite."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    load_manifest(out)  # a clear error for a directory that is not a finished build
    if dest is None and storage.is_uri(out):
        raise ValueError(f"{out} is not a local directory: give --dest, the local directory to write the export to")
    dest = Path(dest or Path(out) / "exports" / (fmt if split == "train" else f"{fmt}-{split}"))
    if dest.exists():
        raise ValueError(f"{dest} exists; remove it or pass another --dest")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summary = FORMATS[fmt](str(out), tmp, split)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"format": fmt, "dest": str(dest), **summary}

"""Exports of a build output to the formats other trainers read: ``python -m dataengine.export OUT --format F``.

One module per format, each a function ``export(out, dest, split) -> summary`` that writes ``dest`` from the
shards alone.  Every export is written under a temporary name and renamed, so ``dest`` is complete or absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataengine.export import hf, mds, megatron, nanogpt
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import Split

FORMATS: dict[str, Callable[[Path, Path, Split], dict[str, Any]]] = {
    "hf": hf.export,
    "megatron": megatron.export,
    "nanogpt": nanogpt.export,
    "mds": mds.export,
}


def export(out: Path, fmt: str, dest: Path | None = None, split: Split = "train") -> dict[str, Any]:
    """Write ``out``'s ``split`` as ``fmt`` into ``dest`` (default ``OUT/exports/FMT``); refuse to overwrite."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    load_manifest(out)  # a clear error for a directory that is not a finished build
    dest = dest or Path(out) / "exports" / (fmt if split == "train" else f"{fmt}-{split}")
    if dest.exists():
        raise ValueError(f"{dest} exists; remove it or pass another --dest")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summary = FORMATS[fmt](Path(out), tmp, split)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"format": fmt, "dest": str(dest), **summary}

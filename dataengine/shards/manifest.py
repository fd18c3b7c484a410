"""``manifest.json``: what a build produced, enough to verify every byte and to reproduce it.

It holds no timestamps and no absolute paths, so the same inputs, config and seed give the same bytes.
It is written last (atomically): a directory without a manifest is an incomplete build.
"""

from __future__ import annotations

import json
from typing import Any

from dataengine import storage

FORMAT = "dataengine-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def write_manifest(out: storage.Target, manifest: dict[str, Any]) -> str:
    """Write ``OUT/manifest.json`` whole (a rename on disk, one PUT to an object store); return where."""
    path = storage.join(out, MANIFEST)
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    storage.write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


def load_manifest(out: storage.Target) -> dict[str, Any]:
    """The manifest of a finished build (a directory or a URI); a clear error for a missing or foreign one."""
    path = storage.join(out, MANIFEST)
    if not storage.exists(path):
        raise ValueError(f"{out}: no {MANIFEST}; not a finished build output (interrupted, or the wrong directory)")
    manifest = json.loads(storage.read_text(path))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {manifest['format_version']} is newer than this reader's")
    return manifest

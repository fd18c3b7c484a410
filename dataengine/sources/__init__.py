"""Source readers, looked up by name (``kind`` in a sources file)."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from dataengine.config import SourceConfig
from dataengine.runtime import paths_missing_on_nodes
from dataengine.schema import rows_to_table
from dataengine.sources.base import Reader, Unit, arrow_safe, read_error
from dataengine.sources.crawl import CrawlReader
from dataengine.sources.git import GitReader
from dataengine.sources.html_dir import HtmlDirReader
from dataengine.sources.jsonl import JsonlReader
from dataengine.sources.parquet import ParquetReader
from dataengine.sources.source_dir import SourceDirReader
from dataengine.sources.warc import WarcReader

READERS: dict[str, Reader] = {
    "html_dir": HtmlDirReader(),
    "warc": WarcReader(),
    "jsonl": JsonlReader(),
    "parquet": ParquetReader(),
    "source_dir": SourceDirReader(),
    "git": GitReader(),
    "crawl": CrawlReader(),
}


def get_reader(kind: str) -> Reader:
    try:
        return READERS[kind]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r}; known kinds: {', '.join(sorted(READERS))}") from None


def list_units(sources: list[SourceConfig]) -> list[dict[str, Any]]:
    """All units of work of all sources, in a stable order (enumerated on the driver)."""
    return [unit.to_dict() for src in sources for unit in get_reader(src.kind).units(src)]


def check_inputs_on_every_node(units: list[dict[str, Any]]) -> None:
    """A local input path means "every node has this path" (as with datatrove): on a multi-node cluster, check it
    before reading, since a worker that cannot see a file would count it as unreadable."""
    dirs = sorted({os.path.dirname(u["path"]) for u in units if os.path.isabs(u.get("path") or "")})
    missing = paths_missing_on_nodes(dirs)
    if missing:
        node, paths = next(iter(missing.items()))
        raise ValueError(
            f"{len(paths)} input director{'y is' if len(paths) == 1 else 'ies are'} not on every node, e.g. "
            f"{paths[0]} on node {node}: give the inputs as s3:// or gs:// URIs, or paths every node mounts"
        )


def read_units(batch: pa.Table, sources: dict[str, SourceConfig], max_bytes: int) -> pa.Table:
    """Ray Data ``map_batches`` function: a batch of units in, their document rows out."""
    rows: list[dict[str, Any]] = []
    units = [Unit(**u) for u in batch.to_pylist()]
    by_source: dict[str, list[Unit]] = {}
    for unit in units:
        by_source.setdefault(unit.source, []).append(unit)
    for name, group in by_source.items():
        source = sources[name]
        reader = get_reader(source.kind)
        specs = source.path_specs()
        for unit in group:
            if unit.error:
                reason, _, detail = unit.error.partition(": ")
                meta = {**specs[unit.spec].meta, **({"path": unit.member} if unit.member else {})}
                rows.append(read_error(source, meta, unit.url or unit.path, reader.kind, reason, detail))
        rows.extend(reader.read([u for u in group if not u.error], source, max_bytes))
    return rows_to_table([arrow_safe(row) for row in rows])

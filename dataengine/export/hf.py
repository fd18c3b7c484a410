"""Hugging Face ``datasets``: ``save_to_disk``, read back with ``datasets.load_from_disk``.

The shards already open with ``Dataset.from_file`` (memory-mapped; a shard in an object store is read into memory
instead); this gives one dataset over all of a split's shards, with the same columns (``tokens``, ``source``, ``id``,
``lang``; ``text`` for held-out files), in shard order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataengine import storage
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import Split, read_shard, split_entries


def export(out: str, dest: Path, split: Split) -> dict[str, Any]:
    try:
        from datasets import concatenate_datasets
        from datasets.arrow_dataset import Dataset
        from datasets.table import InMemoryTable
    except ImportError:
        raise ValueError("the hf export needs the datasets package: pip install 'dataengine[hf]'") from None
    entries = split_entries(load_manifest(out), split)
    paths = [storage.join(out, e["path"]) for e in entries]
    if storage.is_uri(out):
        parts = [Dataset(InMemoryTable(read_shard(path))) for path in paths]
    else:
        parts = [Dataset.from_file(path) for path in paths]
    dataset = concatenate_datasets(parts)
    dataset.save_to_disk(str(dest))
    return {"documents": len(dataset), "tokens": sum(int(e["tokens"]) for e in entries)}

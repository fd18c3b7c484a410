"""Hugging Face ``datasets``: ``save_to_disk``, read back with ``datasets.load_from_disk``.

The shards already open with ``Dataset.from_file``; this gives one dataset over all of a split's shards, with the
same columns (``tokens``, ``source``, ``id``, ``lang``; ``text`` for held-out files), in shard order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import Split, split_entries


def export(out: Path, dest: Path, split: Split) -> dict[str, Any]:
    try:
        from datasets import concatenate_datasets
        from datasets.arrow_dataset import Dataset
    except ImportError:
        raise ValueError("the hf export needs the datasets package: pip install 'dataengine[hf]'") from None
    entries = split_entries(load_manifest(out), split)
    dataset = concatenate_datasets([Dataset.from_file(str(out / e["path"])) for e in entries])
    dataset.save_to_disk(str(dest))
    return {"documents": len(dataset), "tokens": sum(int(e["tokens"]) for e in entries)}

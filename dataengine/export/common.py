"""What every exporter reads: the documents of a split as flat token arrays, and the tokenizer's facts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow.compute as pc

from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import Split, iter_batches


def token_batches(out: str, split: Split) -> Iterator[tuple[np.ndarray, np.ndarray, list[str], list[str]]]:
    """``(flat tokens, document lengths, sources, ids)`` per record batch of a split, in shard order."""
    for _, _, batch in iter_batches(out, split):
        tokens = batch.column("tokens")
        yield (
            pc.list_flatten(tokens).to_numpy(),
            pc.list_value_length(tokens).fill_null(0).to_numpy().astype(np.int64),
            batch.column("source").to_pylist(),
            batch.column("id").to_pylist(),
        )


def tokenizer_info(out: str) -> tuple[int, int, np.dtype]:
    """``(eos id, vocabulary size, stored token dtype)`` from the manifest."""
    tok = load_manifest(out)["tokenizer"]
    return int(tok["eos_id"]), int(tok["vocab_size"]), np.dtype(tok.get("token_dtype", "uint16"))

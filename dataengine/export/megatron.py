"""Megatron-LM indexed dataset: ``PREFIX.bin`` + ``PREFIX.idx``, read by
``megatron.core.datasets.indexed_dataset.IndexedDataset(PREFIX)``.

Written with numpy from Megatron's format (``_IndexWriter`` in ``indexed_dataset.py``), so exporting does not need
megatron-core: one sequence per document, the EOS id appended (``preprocess_data.py --append-eod``), tokens as
uint16 below 65,500 ids and int32 above (``DType.optimal_dtype``); the ``.idx`` holds a header, sequence lengths
(int32), byte pointers (int64) and document boundaries (int64).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.export.common import token_batches, tokenizer_info
from dataengine.shards.reader import Split

INDEX_HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def prefix(split: Split) -> str:
    """The file prefix, as Megatron's ``preprocess_data.py`` names it (``{prefix}_{key}_{level}``)."""
    return f"{split}_text_document"


def export(out: str, dest: Path, split: Split) -> dict[str, Any]:
    eos, vocab, _ = tokenizer_info(out)
    dtype = np.dtype(np.uint16 if vocab < 65500 else np.int32)
    lengths = []
    with (dest / f"{prefix(split)}.bin").open("wb") as f:
        for flat, length, _, _ in token_batches(out, split):
            ends = np.cumsum(length)
            with_eos = np.insert(flat.astype(dtype), ends, eos)  # EOS after each document
            f.write(with_eos.tobytes())
            lengths.append(length + 1)
    sizes = np.concatenate(lengths).astype(np.int32) if lengths else np.zeros(0, np.int32)
    pointers = np.concatenate([[0], np.cumsum(sizes.astype(np.int64) * dtype.itemsize)[:-1]]).astype(np.int64)
    with (dest / f"{prefix(split)}.idx").open("wb") as f:
        f.write(INDEX_HEADER)
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", DTYPE_CODES[dtype]))
        f.write(struct.pack("<Q", len(sizes)))  # sequences
        f.write(struct.pack("<Q", len(sizes) + 1))  # document boundaries: one document per sequence
        f.write(sizes.tobytes())
        f.write(pointers[: len(sizes)].tobytes())
        f.write(np.arange(len(sizes) + 1, dtype=np.int64).tobytes())
    return {"documents": len(sizes), "tokens": int(sizes.sum(dtype=np.int64)), "prefix": prefix(split)}

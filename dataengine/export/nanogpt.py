"""nanoGPT / llm.c / modded-nanogpt token shards: ``train_000000.bin`` ... (``val_*`` for the held-out split).

The llm.c format (``dev/data/data_common.py``): a header of 256 int32 (magic, version, token count), then the
tokens: uint16 with magic 20240520 / version 1 (GPT-2 style), uint32 with 20240801 / version 7 when the vocabulary
needs it (llama-3 style).  Documents follow each other with the EOS id *before* each, as llm.c's ``fineweb.py``
writes them, so modded-nanogpt's loaders can align sequences on it; a document is never split across files.
Read back as those trainers do: ``np.memmap(path, dtype=np.uint16, mode="r", offset=1024)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from dataengine.export.common import token_batches, tokenizer_info
from dataengine.shards.reader import Split

HEADER_INTS = 256
FORMATS = {np.dtype(np.uint16): (20240520, 1), np.dtype(np.uint32): (20240801, 7)}
SHARD_TOKENS = 100_000_000  # llm.c's FineWeb shards hold 10**8 tokens


def header(dtype: np.dtype, n_tokens: int) -> bytes:
    magic, version = FORMATS[dtype]
    head = np.zeros(HEADER_INTS, dtype=np.int32)
    head[:3] = magic, version, n_tokens
    return head.tobytes()


class _ShardFiles:
    """Files of at most ``limit`` tokens (or one document, if longer); the header's count is set on close."""

    def __init__(self, dest: Path, name: str, dtype: np.dtype, limit: int) -> None:
        self.dest, self.name, self.dtype, self.limit = dest, name, dtype, limit
        self.files: list[Path] = []
        self._f: BinaryIO | None = None
        self._count = 0

    def write(self, tokens: np.ndarray, ends: np.ndarray) -> None:
        """Append whole documents: ``tokens`` holds documents ending at offsets ``ends``."""
        done = 0
        while done < len(tokens):
            if self._f is None:
                self._open()
            fits = int(np.searchsorted(ends, done + self.limit - self._count, side="right"))
            if fits == 0 or ends[fits - 1] <= done:  # not one more document fits
                if self._count:
                    self.close()
                    continue
                fits = int(np.searchsorted(ends, done, side="right")) + 1  # a document longer than a file
            stop = int(ends[fits - 1])
            assert self._f is not None
            self._f.write(tokens[done:stop].astype(self.dtype).tobytes())
            self._count += stop - done
            done = stop

    def _open(self) -> None:
        self.files.append(self.dest / f"{self.name}_{len(self.files):06d}.bin")
        self._f = self.files[-1].open("wb")
        self._f.write(header(self.dtype, 0))
        self._count = 0

    def close(self) -> None:
        if self._f is not None:
            self._f.seek(0)
            self._f.write(header(self.dtype, self._count))
            self._f.close()
            self._f = None


def export(out: str, dest: Path, split: Split, shard_tokens: int = SHARD_TOKENS) -> dict[str, Any]:
    eos, vocab, _ = tokenizer_info(out)
    dtype = np.dtype(np.uint16 if vocab <= 2**16 else np.uint32)
    files = _ShardFiles(dest, "train" if split == "train" else "val", dtype, shard_tokens)
    documents = tokens = 0
    for flat, length, _, _ in token_batches(out, split):
        starts = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
        with_eos = np.insert(flat, starts, eos)  # EOS before each document
        files.write(with_eos, np.cumsum(length + 1))
        documents += len(length)
        tokens += len(with_eos)
    files.close()
    return {"documents": documents, "tokens": tokens, "files": len(files.files)}

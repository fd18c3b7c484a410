"""The tokenize stage: a Ray Data actor that loads the tokenizer once and encodes whole batches.

Every document that still has text gets ``n_tokens`` (rejected ones too, so the report can say how many
tokens each rule dropped); kept documents also get their ``tokens``.  Encoding uses the Rust-side
``encode_batch_fast``; the ids of kept documents go into one flat numpy buffer that becomes an Arrow ``ListArray``
through its offsets, so no Python list per document reaches Arrow.

Each actor encodes on one Rust thread (``RAYON_NUM_THREADS=1``, set before the first encode starts the pool):
Ray already runs one actor per CPU, and a pool of every core in every actor would oversubscribe the machine.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from dataengine.schema import set_column
from dataengine.shards.writer import token_type


class TokenizeStage:
    def __init__(self, tokenizer_json: str, threads: int = 1) -> None:
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.dtype = token_type(self.tokenizer.get_vocab_size())

    def __call__(self, table: pa.Table) -> pa.Table:
        column = table["text"]
        has_text = pc.fill_null(pc.greater(pc.binary_length(column), 0), False).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(has_text)
        encoded = self.tokenizer.encode_batch_fast(column.filter(has_text).to_pylist(), add_special_tokens=False)
        counts = np.zeros(table.num_rows, dtype=np.int64)
        counts[rows] = np.fromiter(map(len, encoded), np.int64, len(rows))
        with_tokens = has_text & pc.is_null(table["reject"]).to_numpy(zero_copy_only=False)
        ids = (enc.ids for enc, keep in zip(encoded, with_tokens[rows].tolist(), strict=True) if keep)
        lengths = np.where(with_tokens, counts, 0)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = np.fromiter(itertools.chain.from_iterable(ids), self.dtype.to_pandas_dtype(), int(offsets[-1]))
        tokens = pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(values, self.dtype), mask=pa.array(~with_tokens, pa.bool_())
        )
        table = set_column(table, "n_tokens", pa.array(counts))
        return set_column(table, "tokens", tokens)

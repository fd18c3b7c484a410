"""The tokenize stage: a Ray Data actor that loads the tokenizer once and encodes whole batches.

Every document that still has text gets ``n_tokens`` (rejected ones too, so the report can say how many
tokens each rule dropped); kept documents also get their ``tokens``.  Encoding uses the Rust-side
``encode_batch`` (no Python loop per document).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from dataengine.schema import set_column
from dataengine.shards.writer import token_type


class TokenizeStage:
    def __init__(self, tokenizer_json: str) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.dtype = token_type(self.tokenizer.get_vocab_size())

    def __call__(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        has_text = [i for i, t in enumerate(texts) if t]
        encoded = self.tokenizer.encode_batch_fast([texts[i] for i in has_text], add_special_tokens=False)
        counts = np.zeros(table.num_rows, dtype=np.int64)
        ids: list[list[int] | None] = [None] * table.num_rows
        kept = pc.is_null(table["reject"]).to_numpy(zero_copy_only=False)
        for i, enc in zip(has_text, encoded, strict=True):
            counts[i] = len(enc.ids)
            if kept[i]:
                ids[i] = enc.ids
        table = set_column(table, "n_tokens", pa.array(counts))
        return set_column(table, "tokens", pa.array(ids, pa.list_(self.dtype)))

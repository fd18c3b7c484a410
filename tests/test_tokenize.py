"""The tokenize stage's contract: ``n_tokens`` for every row with text, ``tokens`` for kept rows only."""

from __future__ import annotations

import pyarrow as pa
from tokenizers import Tokenizer

from dataengine.tokenize import TokenizeStage
from tokenizer.train import train

TEXTS = ["def f(x):\n    return x + 1\n", "Hello world, again and again.", "你好，世界", "", None, "kept " * 50]
REJECT = [None, "quality:short", None, None, None, None]


def test_counts_every_text_and_tokens_only_kept_rows() -> None:
    tok_json = train([t for t in TEXTS if t] * 20, vocab_size=300).to_str()
    reference = Tokenizer.from_str(tok_json)
    table = pa.table({"text": pa.array(TEXTS, pa.string()), "reject": pa.array(REJECT, pa.string())})
    out = TokenizeStage(tok_json)(table)
    expected = [reference.encode(t, add_special_tokens=False).ids if t else [] for t in TEXTS]
    assert out["n_tokens"].to_pylist() == [len(ids) for ids in expected]
    kept = [t is not None and t != "" and r is None for t, r in zip(TEXTS, REJECT, strict=True)]
    assert out["tokens"].to_pylist() == [ids if k else None for ids, k in zip(expected, kept, strict=True)]
    assert out["tokens"].type == pa.list_(pa.uint16())

"""Tokenization throughput: our Ray Data tokenize stage vs raw ``tokenizers`` ``encode_batch_fast``.

Same documents (code, English and Chinese text from the sample corpus), same trained tokenizer, same machine.
The peer runs in one process with the Rust thread pool on every core; ours adds Ray's scheduling and Arrow
conversion, so the ratio shows what the distributed stage costs (or gains) on one node.
"""

from __future__ import annotations

import pyarrow as pa
import ray
import ray.data
from tokenizers import Tokenizer

from bench.corpus import plain_texts
from bench.harness import Row, timed
from dataengine.runtime import ray_session
from dataengine.tokenize import TokenizeStage
from tokenizer.train import train

INPUT_BYTES = 40_000_000


def run() -> list[Row]:
    texts = plain_texts(INPUT_BYTES)
    tok_json = train(texts[::10], vocab_size=32_000).to_str()
    mb = sum(len(t.encode()) for t in texts) / 1e6

    peer_tok = Tokenizer.from_str(tok_json)
    peer_s, encoded = timed(lambda: peer_tok.encode_batch_fast(texts, add_special_tokens=False))
    n_tokens = sum(len(e.ids) for e in encoded)

    table = pa.table({"text": pa.array(texts, pa.string()), "reject": pa.nulls(len(texts), pa.string())})
    with ray_session() as cpus:
        ds = ray.data.from_arrow(table).repartition(cpus * 8).materialize()

        def ours_run() -> int:
            out = ds.map_batches(
                TokenizeStage,
                fn_constructor_kwargs={"tokenizer_json": tok_json},
                batch_format="pyarrow",
                batch_size=256,
                compute=ray.data.ActorPoolStrategy(size=cpus),
            ).materialize()
            return out.sum("n_tokens")

        ours_s, ours_tokens = timed(ours_run)
    assert ours_tokens == n_tokens, (ours_tokens, n_tokens)
    return [
        Row(f"tokenize {mb:.0f} MB ({len(texts):,} docs)", n_tokens / ours_s / 1e6, "tokenizers encode_batch_fast",
            n_tokens / peer_s / 1e6, "M tokens/s"),
    ]  # fmt: skip

"""The tokenizer's training sample of a build: per source, training documents in a seeded hash order until the
source's share of ``sample_bytes`` is reached.

The cut is found by ``mix.cut.find_cuts`` (histograms of the hash range, no document gathered), so only the
chosen texts (bounded by ``sample_bytes``) reach one worker task, which trains the tokenizer on them in hash
order; the driver receives the tokenizer.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
from tokenizers import Tokenizer

from dataengine import storage
from dataengine.mix.cut import Cut, find_cuts
from dataengine.mix.plan import HeldOut
from dataengine.pipeline import Context
from dataengine.schema import stable_hash
from dataengine.shards.write import TOKENIZER_JSON, training
from tokenizer.train import train


def _hashes(table: pa.Table, seed: int) -> pa.Array:
    return pa.array([stable_hash(seed, "tok", i) for i in table["id"].to_pylist()], pa.uint64())


def _candidates(table: pa.Table, seed: int, held_out: HeldOut, sources: list[str]) -> pa.Table:
    table = training(table, held_out)
    table = table.filter(pc.is_in(table["source"], pa.array(sources, pa.string())))
    nbytes = pc.binary_length(pc.fill_null(table["text"], "").cast(pa.binary())).cast(pa.int64())
    return pa.table({"group": table["source"], "hash": _hashes(table, seed), "weight": nbytes})


def _chosen(table: pa.Table, seed: int, held_out: HeldOut, cuts: dict[str, Cut]) -> pa.Table:
    table = training(table, held_out)
    table = table.filter(pc.is_in(table["source"], pa.array(list(cuts), pa.string())))
    hashes = _hashes(table, seed).to_pylist()
    keep = [cuts[s].below(h) or cuts[s].crossing(h) for h, s in zip(hashes, table["source"].to_pylist(), strict=True)]
    return pa.table({"hash": pa.array(hashes, pa.uint64()), "text": table["text"]}).filter(pa.array(keep))


def sample_table(
    docs: ray.data.Dataset, shares: dict[str, float], sample_bytes: int, seed: int, held_out: HeldOut
) -> ray.data.Dataset:
    """The documents to train the tokenizer on (``hash``, ``text``), chosen in the workers."""
    budgets = {s: math.ceil(share * sample_bytes) for s, share in shares.items() if share > 0}
    candidates = docs.map_batches(
        _candidates, fn_kwargs={"seed": seed, "held_out": held_out, "sources": list(budgets)}, batch_format="pyarrow"
    ).materialize()
    cuts = find_cuts(candidates, budgets)
    return docs.map_batches(_chosen, fn_kwargs={"seed": seed, "held_out": held_out, "cuts": cuts},
                            batch_format="pyarrow")  # fmt: skip


@ray.remote(num_cpus=1)
def _train(vocab_size: int, *tables: pa.Table) -> tuple[str, int, int]:
    """The tokenizer trained on the sample in hash order (in a worker: the sample never reaches the driver)."""
    sample = pa.concat_tables(tables).sort_by("hash")
    texts = sample["text"].to_pylist()
    return train(texts, vocab_size).to_str(), len(texts), sum(map(len, texts))


def tokenizer_stage(docs: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    """The build's tokenizer, as a JSON string in ``ctx.objects``: the user's (``--tokenizer``), or one trained
    on the hash-ordered sample of the mix; written to ``OUT/tokenizer.json``."""
    dest, user = storage.join(ctx.out, TOKENIZER_JSON), ctx.objects.get("user_tokenizer")
    if user is not None:
        if not storage.exists(user):
            raise ValueError(f"--tokenizer: file not found: {user}")
        ctx.objects["tokenizer_json"] = storage.read_text(user)
        storage.write_text(dest, ctx.objects["tokenizer_json"])
        return docs
    mix = ctx.mix
    # the fraction's slice: a token budget's is chosen once the documents have tokens, after the tokenizer
    chosen = sample_table(docs, mix.shares, ctx.pipe.tokenizer_sample_bytes, mix.seed, HeldOut(mix.held_out))
    tokenizer_json, n, chars = ray.get(_train.remote(ctx.pipe.vocab_size, *chosen.to_arrow_refs()))
    ctx.console.print(f"trained the tokenizer on {n:,} documents ({chars / 1e6:.1f}M chars)")
    ctx.objects["tokenizer_json"] = Tokenizer.from_str(tokenizer_json).to_str(pretty=True)
    storage.write_text(dest, ctx.objects["tokenizer_json"])
    return docs

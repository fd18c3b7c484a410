"""Shards written by the workers: the training shards by shard group, the held-out slice by source.

Every copy the mix takes of a document gets a position key (``mix.plan.order_key``); the key also names its
shard group (key mod the number of groups), so the groups are fixed by the data and the config, never by the
number of workers.  ``shuffle.partition_apply`` hands each group to one write task, which sorts it by key and writes
``shard-GGGGG-NNNNN.arrow`` files of about ``shard_tokens`` tokens under their final names; the driver receives
one small metadata row per shard and assembles the manifest from them.  The held-out slice is one group per
source, sorted by id.
"""

from __future__ import annotations

import hashlib
import json
import math
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data
from tokenizers import Tokenizer

from dataengine import storage
from dataengine.mix.plan import HeldOut, MixPlan, order_key, plan_held_out, plan_mix
from dataengine.pipeline import Context
from dataengine.report.build_report import mix_section
from dataengine.runtime import writer_options
from dataengine.shards.manifest import MANIFEST
from dataengine.shards.writer import ShardWriter, sha256_file, shard_schema
from dataengine.shuffle import partition_apply
from tokenizer.train import eos_id

HELD_OUT = "held_out"
TOKENIZER_JSON = "tokenizer.json"
SHARDS_PER_GROUP = 4  # a group is sorted in one task's memory: about this many shards of tokens
_META = pa.schema(
    [("path", pa.string()), ("sha256", pa.string()), ("rows", pa.int64()), ("tokens", pa.int64()),
     ("tokens_by_source", pa.string()), ("tokens_by_lang", pa.string())]
)  # fmt: skip


def kept(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_null(table["reject"]))


def held_out_mask(table: pa.Table, held_out: HeldOut) -> pa.Array:
    pairs = zip(table["source"].to_pylist(), table["id"].to_pylist(), strict=True)
    return pa.array([held_out.contains(source, i) for source, i in pairs], pa.bool_())


def training(table: pa.Table, held_out: HeldOut) -> pa.Table:
    """The kept documents outside the held-out slice."""
    table = kept(table)
    return table.filter(pc.invert(held_out_mask(table, held_out)))


def shard_groups(plan: MixPlan, shard_tokens: int) -> int:
    return max(1, math.ceil(plan.total_tokens / (shard_tokens * SHARDS_PER_GROUP)))


def expand_copies(table: pa.Table, plan: MixPlan, held_out: HeldOut, groups: int) -> pa.Table:
    """Ray Data ``map_batches`` function: one row per copy the mix takes of a training document, with its
    position key and shard group; a cut copy keeps a prefix.  Vectorised over the token buffer (numpy gathers),
    since this touches every training token."""
    table = training(table, held_out)
    rows, takes, orders = [], [], []
    columns = (table["source"].to_pylist(), table["id"].to_pylist(), table["n_tokens"].to_pylist())
    for i, (source, doc_id, n) in enumerate(zip(*columns, strict=True)):
        for copy, take in enumerate(plan.copies(source, doc_id, n)):
            rows.append(i)
            takes.append(take)
            orders.append(order_key(plan.seed, doc_id, copy))
    tokens = table["tokens"].combine_chunks()
    starts = tokens.offsets.to_numpy()[rows] if rows else np.zeros(0, np.int64)
    lengths = np.asarray(takes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    values = tokens.values.to_numpy()[gather]
    picked = pa.array(rows, pa.int64())
    order = np.asarray(orders, dtype=np.int64)
    return pa.table(
        {
            "tokens": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, tokens.type.value_type)),
            "source": table["source"].take(picked),
            "id": table["id"].take(picked),
            "lang": table["lang"].take(picked),
            "order": order,
            "group": (order % groups).astype(np.int32),
        }
    )


def _write(table: pa.Table, out: str, prefix: str, schema: pa.Schema, shard_tokens: int, sub: str) -> pa.Table:
    writer = ShardWriter(storage.join(out, sub), schema, shard_tokens, prefix=prefix)
    writer.write(table)
    entries = writer.close()
    return pa.Table.from_pylist(
        [
            {**e, "path": f"{sub}/{e['path']}" if sub else e["path"],
             "tokens_by_source": json.dumps(e["tokens_by_source"]), "tokens_by_lang": json.dumps(e["tokens_by_lang"])}
            for e in entries
        ],
        schema=_META,
    )  # fmt: skip


def _write_group(group: pa.Table, out: str, schema: pa.Schema, shard_tokens: int) -> pa.Table:
    group = group.sort_by([("order", "ascending"), ("id", "ascending")])
    return _write(group, out, f"shard-{group['group'][0].as_py():05d}", schema, shard_tokens, "")


def _write_source(rows: pa.Table, out: str, schema: pa.Schema) -> pa.Table:
    rows = rows.drop_columns(["part"]).sort_by("id")
    return _write(rows, out, rows["source"][0].as_py(), schema, 2**62, HELD_OUT)


def _held_out_rows(table: pa.Table, held_out: HeldOut, sources: list[str]) -> pa.Table:
    table = kept(table)
    table = table.filter(held_out_mask(table, held_out))
    table = table.select(["tokens", "source", "id", "text", "lang", "code_share"])
    return table.append_column("part", pc.index_in(table["source"], pa.array(sources, pa.string())))


def _entries(metas: list[pa.Table]) -> list[dict[str, Any]]:
    rows = [row for meta in metas for row in meta.to_pylist()]  # one row per shard
    for row in rows:
        row["tokens_by_source"] = json.loads(row["tokens_by_source"])
        row["tokens_by_lang"] = json.loads(row["tokens_by_lang"])
    return sorted(rows, key=lambda r: r["path"])


def write_training_shards(
    docs: ray.data.Dataset, plan: MixPlan, out: str, schema: pa.Schema, shard_tokens: int, held_out: HeldOut
) -> list[dict[str, Any]]:
    """Write the mix's shards from the workers; their manifest entries, in shard order."""
    groups = shard_groups(plan, shard_tokens)
    copies = docs.map_batches(
        expand_copies, fn_kwargs={"plan": plan, "held_out": held_out, "groups": groups}, batch_format="pyarrow"
    )
    kwargs = {"out": out, "schema": schema, "shard_tokens": shard_tokens}
    metas = partition_apply(copies, "group", groups, _write_group, kwargs, writer_options(out))
    return _entries(metas)


def write_held_out(
    docs: ray.data.Dataset, out: str, schema: pa.Schema, held_out: HeldOut, sources: list[str]
) -> list[dict[str, Any]]:
    """Write each source's held-out documents (with their text) from the workers; their manifest entries."""
    rows = docs.map_batches(_held_out_rows, fn_kwargs={"held_out": held_out, "sources": sources},
                            batch_format="pyarrow")  # fmt: skip
    metas = partition_apply(rows, "part", len(sources), _write_source, {"out": out, "schema": schema},
                            writer_options(out))  # fmt: skip
    return _entries(metas)


def _training_sizes(table: pa.Table, held_out: HeldOut) -> pa.Table:
    return training(table, held_out).select(["source", "id", "n_tokens"])


def _kept_sizes(table: pa.Table) -> pa.Table:
    return kept(table).select(["source", "id", "n_tokens"])


def held_out_stage(docs: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    """The held-out slice chosen from the tokenized documents (``mix.plan.plan_held_out``: per source, by id hash,
    at least ``held_out_tokens`` tokens and ``held_out_min_docs`` documents), into ``ctx.objects["held_out_slice"]``
    for the stages after it (an experiment's placebo leaves it intact; the mix leaves it out)."""
    mix = ctx.mix
    sizes = docs.map_batches(_kept_sizes, batch_format="pyarrow").materialize()
    ctx.objects["held_out_slice"] = plan_held_out(sizes, mix.held_out, mix.held_out_tokens, mix.held_out_min_docs)
    return docs


def write_stage(docs: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    """The mix planned from per-source totals, then the training shards and the held-out slice written by the
    workers; the plan and the shards' manifest entries go to ``ctx.objects``."""
    mix, pipe, held_out = ctx.mix, ctx.pipe, ctx.objects["held_out_slice"]
    sizes = docs.map_batches(_training_sizes, fn_kwargs={"held_out": held_out}, batch_format="pyarrow")
    plan = plan_mix(sizes.materialize(), mix.shares, mix.total_tokens, mix.max_epochs, mix.seed)
    vocab = Tokenizer.from_str(ctx.objects["tokenizer_json"]).get_vocab_size()
    out = str(ctx.out)
    ctx.objects["plan"] = plan
    ctx.objects["shards"] = write_training_shards(docs, plan, out, shard_schema(vocab), pipe.shard_tokens, held_out)
    held_schema = shard_schema(vocab, {"text": pa.string(), "lang": pa.string(), "code_share": pa.float32()})
    sources = sorted(s.name for s in ctx.sources)
    ctx.objects["held_out"] = write_held_out(docs, out, held_schema, held_out, sources)
    return docs


def build_manifest(ctx: Context, used_docs: dict[str, int]) -> dict[str, Any]:
    """The manifest of a build: tokenizer, models, shards, mix target vs realised, and what the inputs were
    (without absolute paths, so two output directories of one build compare equal)."""
    tokenizer_json, shards = ctx.objects["tokenizer_json"], ctx.objects["shards"]
    tok = Tokenizer.from_str(tokenizer_json)
    vocab = tok.get_vocab_size()
    blob = json.dumps([s.model_dump(mode="json", exclude={"paths"}) for s in ctx.sources], sort_keys=True)
    inputs: dict[str, Any] = {"sources": [s.name for s in ctx.sources],
                              "sources_sha256": hashlib.sha256(blob.encode()).hexdigest()}  # fmt: skip
    if ctx.mix.sources == "sample":
        from dataengine.sources.sample import sample_packages

        inputs["debian_packages"] = sample_packages()
    langid: dict[str, Any] = {"enabled": False}
    if ctx.pipe.langid.enabled:
        model = ctx.objects["lid_model"]
        langid = {"enabled": True, "default_model": not ctx.pipe.langid.model, "sha256": sha256_file(model)}
    return {
        "config_hash": ctx.mix.config_hash(),
        "seed": ctx.mix.seed,
        "tokenizer": {
            "path": TOKENIZER_JSON,
            "sha256": sha256_file(storage.join(ctx.out, TOKENIZER_JSON)),
            "vocab_size": vocab,
            "eos_id": eos_id(tok),
            "token_dtype": "uint16" if vocab <= 2**16 else "uint32",
            "trained": ctx.objects.get("user_tokenizer") is None,
        },
        "langid": langid,
        "shards": shards,
        "held_out": ctx.objects["held_out"],
        "mix": {"name": ctx.mix.name, **mix_section(ctx.objects["plan"], used_docs)},
        "totals": {"rows": sum(s["rows"] for s in shards), "tokens": sum(s["tokens"] for s in shards)},
        "inputs": inputs,
    }


def prepare_output(out: storage.Target, resume: bool) -> None:
    """Remove a previous build's outputs (manifest first, so a crash never leaves it looking complete).

    A directory (or object-store prefix) that holds files but no manifest is an interrupted build (or not a build
    at all): it is continued with ``--resume`` and otherwise refused, never mixed with new output.
    """
    files = storage.list_files(out)
    if files and MANIFEST not in files and not resume:
        raise ValueError(
            f"{out} holds an incomplete build (no {MANIFEST}): run the same command with --resume to "
            "continue it, or remove it"
        )
    storage.remove(storage.join(out, MANIFEST))
    for name in storage.list_files(out, recursive=False):
        if fnmatch(name, "shard-*.arrow"):
            storage.remove(storage.join(out, name))
    for sub in (HELD_OUT, "rejects"):
        storage.remove(storage.join(out, sub))
    if not storage.is_uri(out):
        Path(out).mkdir(parents=True, exist_ok=True)

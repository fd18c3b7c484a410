"""Read a build's shards back, and verify them against ``manifest.json``.

The manifest promises every shard's sha256, rows, tokens and tokens per source and per language; ``verify``
recomputes all of it from the bytes on disk, so a copied, truncated or edited output is caught before anyone
trains on it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from fnmatch import fnmatch
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from dataengine import storage
from dataengine.schema import SHARD_COLUMNS
from dataengine.shards.manifest import load_manifest
from tokenizer.train import EOS

Split = Literal["train", "held_out"]
SPLITS: dict[Split, str] = {"train": "shards", "held_out": "held_out"}  # split -> manifest key
HELD_OUT_DIR = "held_out"


def read_shard(path: storage.Target) -> pa.Table:
    """A whole shard (or held-out file) as a table; memory-mapped when local, so reading it costs no copy."""
    with storage.open_input(path) as source:
        return pa.ipc.open_stream(source).read_all()


def split_entries(manifest: dict[str, Any], split: Split) -> list[dict[str, Any]]:
    """The manifest's file entries of one split, in their order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return list(manifest.get(SPLITS[split], []))


def iter_batches(out: storage.Target, split: Split = "train") -> Iterator[tuple[str, int, pa.RecordBatch]]:
    """``(file path, index of the batch's first row in that file, batch)`` over a split, in manifest order."""
    for entry in split_entries(load_manifest(out), split):
        with storage.open_input(storage.join(out, entry["path"])) as source:
            first = 0
            for batch in pa.ipc.open_stream(source):
                yield entry["path"], first, batch
                first += batch.num_rows


def iter_documents(out: storage.Target, split: Split = "train") -> Iterator[dict[str, Any]]:
    """Every document of a split as a dict of its columns (``tokens`` as a list of ints), in shard order."""
    for _, _, batch in iter_batches(out, split):
        yield from batch.to_pylist()


def verify(out: storage.Target) -> list[str]:
    """Problems found by recomputing the output from its bytes; each names its file. Empty means intact."""
    manifest = load_manifest(out)
    tok_info = manifest.get("tokenizer", {})
    train, held_out = split_entries(manifest, "train"), split_entries(manifest, "held_out")
    problems = _verify_tokenizer(out, tok_info, held_out)
    vocab_size = int(tok_info.get("vocab_size", 0))
    dtype = tok_info.get("token_dtype")
    for entries, columns in ((train, SHARD_COLUMNS), (held_out, (*SHARD_COLUMNS, "text"))):
        for entry in entries:
            problems += _verify_file(out, entry, vocab_size, dtype, columns)
    listed = {e["path"] for e in [*train, *held_out]}
    held_out_files = storage.list_files(storage.join(out, HELD_OUT_DIR), recursive=False)
    on_disk = {name for name in storage.list_files(out, recursive=False) if fnmatch(name, "shard-*.arrow")}
    on_disk |= {f"{HELD_OUT_DIR}/{name}" for name in held_out_files if name.endswith(".arrow")}
    problems += [f"{name}: on disk but not in the manifest" for name in sorted(on_disk - listed)]
    totals = manifest.get("totals", {})
    for key in ("rows", "tokens"):
        summed = sum(int(e.get(key, 0)) for e in train)
        if key in totals and int(totals[key]) != summed:
            problems.append(f"manifest.json: totals.{key} is {totals[key]} but the shards add up to {summed}")
    return problems


def _verify_tokenizer(out: storage.Target, info: dict[str, Any], held_out: list[dict[str, Any]]) -> list[str]:
    name = info.get("path", "tokenizer.json")
    path = storage.join(out, name)
    if not storage.exists(path):
        return [f"{name}: missing"]
    data = storage.read_bytes(path)
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        return [f"{name}: sha256 does not match the manifest"]
    tok = Tokenizer.from_str(data.decode("utf-8"))
    problems = []
    if tok.get_vocab_size() != info.get("vocab_size"):
        problems.append(f"{name}: vocab size {tok.get_vocab_size()} but the manifest says {info.get('vocab_size')}")
    eos = info.get("eos_id")
    if eos is None or tok.id_to_token(int(eos)) != EOS:
        found = None if eos is None else tok.id_to_token(int(eos))
        problems.append(f"manifest.json: eos id {eos} is {found!r} in {name}, not {EOS!r}")
    return problems + _verify_encoding(out, tok, name, held_out)


def _verify_encoding(out: storage.Target, tok: Tokenizer, name: str, held_out: list[dict[str, Any]]) -> list[str]:
    """Held-out files keep their text, so re-encoding it shows whether these tokens came from this tokenizer."""
    problems = []
    for entry in held_out:
        try:
            table = read_shard(storage.join(out, entry["path"]))
        except (pa.ArrowException, OSError):
            continue  # reported with the file's own checks
        if "text" not in table.column_names:
            continue
        encoded = tok.encode_batch_fast(table["text"].to_pylist(), add_special_tokens=False)
        stored = table["tokens"].to_pylist()
        bad = sum(e.ids != s for e, s in zip(encoded, stored, strict=True))
        if bad:
            problems.append(
                f"{entry['path']}: {bad} of {len(stored)} documents do not re-encode to their stored tokens "
                f"with {name} (tokenizer mismatch)"
            )
    return problems


def _verify_file(
    out: storage.Target, entry: dict[str, Any], vocab_size: int, dtype: str | None, columns: tuple[str, ...]
) -> list[str]:
    name = entry["path"]
    path = storage.join(out, name)
    if not storage.exists(path):
        return [f"{name}: missing"]
    problems = []
    if storage.sha256(path) != entry.get("sha256"):
        problems.append(f"{name}: sha256 does not match the manifest")
    try:
        table = read_shard(path)
    except (pa.ArrowException, OSError) as e:
        return [*problems, f"{name}: unreadable Arrow stream ({str(e).splitlines()[0]})"]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        return [*problems, f"{name}: missing column(s) {', '.join(missing)}"]
    tokens = table["tokens"]
    lengths = pc.list_value_length(tokens).fill_null(0)
    by_source: Counter[str] = Counter()
    for source, n in zip(table["source"].to_pylist(), lengths.to_pylist(), strict=True):
        by_source[source] += n
    found = {"rows": table.num_rows, "tokens": sum(by_source.values())}
    for key, value in found.items():
        if entry.get(key) != value:
            problems.append(f"{name}: {key} is {value} but the manifest says {entry.get(key)}")
    by_source_found = {k: v for k, v in sorted(by_source.items()) if v}
    if by_source_found != {k: v for k, v in entry.get("tokens_by_source", {}).items() if v}:
        problems.append(f"{name}: tokens by source {by_source_found} do not match the manifest")
    if "lang" in table.column_names or "tokens_by_lang" in entry:  # outputs from before the column have neither
        by_lang: Counter[str] = Counter()
        langs = table["lang"].to_pylist() if "lang" in table.column_names else [None] * table.num_rows
        for lang, n in zip(langs, lengths.to_pylist(), strict=True):
            if lang is not None and n:
                by_lang[lang] += n
        if dict(sorted(by_lang.items())) != {k: v for k, v in entry.get("tokens_by_lang", {}).items() if v}:
            problems.append(f"{name}: tokens by language {dict(sorted(by_lang.items()))} do not match the manifest")
    value_type = tokens.type.value_type
    if dtype is not None and str(value_type) != dtype:
        problems.append(f"{name}: token type {value_type} but the manifest says {dtype}")
    top = pc.max(pc.list_flatten(tokens)).as_py()
    if top is not None and top >= vocab_size:
        problems.append(f"{name}: token id {top} is outside the vocabulary (size {vocab_size})")
    return problems

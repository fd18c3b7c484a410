"""Bits per byte on each source's held-out slice: a loss that does not depend on the tokenizer.

Every document is scored as training shows documents: ``[eos] + tokens + [eos]``.  The leading EOS is the context a
document starts from (in the packed training stream the previous document's EOS precedes it); the model predicts
every token and the closing EOS (where a document ends is information too).  The summed negative log-likelihood in
nats, divided by ln 2 and by the UTF-8 bytes of the document's text, is bits per byte: two models with different
tokenizers are compared on the same bytes.

Long documents are cut into non-overlapping windows of ``seq_len`` predictions, each restarting its context (a
sliding window would cost ``seq_len / stride`` times more); documents up to ``seq_len - 1`` tokens are scored whole.
Documents are taken in id order (ids are content hashes, so this is a fixed random order), whole, until the
source's token cap is reached; the result says how many of how many were scored.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn

from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import read_shard, split_entries
from pretrain.eval.scoring import bootstrap, evaluating
from pretrain.model import unwrap

BATCH_TOKENS = 8192  # predictions per forward pass (the loss never holds more than one chunk of logits)
WITH_CODE = "with code"  # the pages of a text source that hold code blocks (``code_share`` > 0)


def held_out_bpb(
    model: nn.Module,
    out_dir: str | Path,
    device: str | torch.device,
    max_tokens_per_source: int | None = None,
    seq_len: int | None = None,
    group_by_lang: bool = True,
) -> dict[str, dict[str, float]]:
    """``{source: {"bpb", "loss", "tokens", "bytes", "docs", "docs_total", "capped"}}`` plus ``"source/lang"``
    entries per value of the held-out files' ``lang`` column when it exists (and ``group_by_lang``), and a
    ``"source/with code"`` entry for a text source whose held-out pages partly carry code blocks.

    ``loss`` is nats per predicted token, ``tokens`` the predictions scored (document tokens + closing EOS),
    ``bytes`` the UTF-8 bytes of the scored texts; ``capped`` is true when ``max_tokens_per_source`` stopped the
    source before its last document (``docs`` of ``docs_total`` scored); ``bpb_ci95`` a bootstrap 95% interval
    over the scored documents (a slice of ten documents measures little, and says so).  ``model(x, targets)``
    gives per-token losses ``[B, T]`` (the GPT's chunked loss: no ``[B, T, V]`` logits); it is left in the
    training mode it came in.
    """
    if max_tokens_per_source is not None and max_tokens_per_source <= 0:
        raise ValueError(f"max_tokens_per_source must be positive or None; got {max_tokens_per_source}")
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    eos = int(manifest["tokenizer"]["eos_id"])
    seq_len = seq_len or unwrap(model).config.seq_len
    device = torch.device(device)
    table = _held_out_table(out_dir, split_entries(manifest, "held_out"))
    results: dict[str, dict[str, float]] = {}
    for source in sorted(set(table["source"].to_pylist())):
        docs = table.filter(pc.equal(table["source"], source)).sort_by("id")
        chosen = docs.slice(0, _docs_within(docs["tokens"], max_tokens_per_source))
        nll, predicted = _document_nll(model, chosen["tokens"].to_pylist(), eos, seq_len, device)
        nbytes = pc.binary_length(chosen["text"]).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        everything = np.ones(len(chosen), dtype=bool)
        results[source] = _score(nll, predicted, nbytes, everything, len(docs))
        if group_by_lang and "lang" in chosen.column_names:
            langs = np.array(chosen["lang"].to_pylist(), dtype=object)
            lang_totals = docs["lang"].value_counts().to_pylist()
            totals = {v["values"]: v["counts"] for v in lang_totals}
            for lang in sorted({lang for lang in langs if lang is not None}):
                results[f"{source}/{lang}"] = _score(nll, predicted, nbytes, langs == lang, totals[lang])
        if "code_share" in chosen.column_names:
            with_code = pc.fill_null(pc.greater(chosen["code_share"], 0), False).to_numpy(zero_copy_only=False)
            if 0 < with_code.sum() < len(chosen):  # prose pages some of which carry code blocks
                total = pc.sum(pc.fill_null(pc.greater(docs["code_share"], 0), False).cast(pa.int64())).as_py()
                results[f"{source}/{WITH_CODE}"] = _score(nll, predicted, nbytes, with_code, total)
    return results


def _held_out_table(out_dir: Path, entries: list[dict]) -> pa.Table:
    """All held-out files as one table of the columns scoring needs (``lang`` and ``code_share`` when some file
    has them, null in the files without)."""
    if not entries:
        raise ValueError(f"{out_dir}: the manifest lists no held-out files")
    tables = [read_shard(out_dir / e["path"]) for e in entries]
    names = ["tokens", "source", "id", "text"]
    for entry, t in zip(entries, tables, strict=True):
        missing = set(names) - set(t.column_names)
        if missing:
            raise ValueError(f"{entry['path']}: held-out file lacks columns {sorted(missing)}")
    optional = {"lang": pa.string(), "code_share": pa.float32()}  # older builds lack code_share
    names += [name for name in optional if any(name in t.column_names for t in tables)]
    selected = [
        pa.table({n: t[n] if n in t.column_names else pa.nulls(len(t), optional[n]) for n in names}) for t in tables
    ]
    return pa.concat_tables(selected)


def _docs_within(tokens: pa.ChunkedArray, cap: int | None) -> int:
    """How many leading documents to score: all, or up to and including the one that reaches ``cap`` tokens."""
    if cap is None:
        return len(tokens)
    cumulative = np.cumsum(pc.list_value_length(tokens).to_numpy(zero_copy_only=False))
    return min(len(tokens), int(np.searchsorted(cumulative, cap, side="left")) + 1)


@torch.no_grad()
def _document_nll(
    model: nn.Module, docs: list[list[int]], eos: int, seq_len: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL in nats and the number of predictions of every document, in float64."""
    windows: list[tuple[int, np.ndarray]] = []  # (document, seq_len + 1 tokens at most)
    predicted = np.zeros(len(docs), dtype=np.int64)
    for d, tokens in enumerate(docs):
        sequence = np.array([eos, *tokens, eos], dtype=np.int64)
        predicted[d] = len(sequence) - 1
        windows += [(d, sequence[at : at + seq_len + 1]) for at in range(0, len(sequence) - 1, seq_len)]
    windows.sort(key=lambda w: -len(w[1]))  # stable: similar lengths share a batch, so little padding
    nll = np.zeros(len(docs), dtype=np.float64)
    per_batch = max(1, BATCH_TOKENS // seq_len)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with evaluating(model):
        for first in range(0, len(windows), per_batch):
            batch = windows[first : first + per_batch]
            width = len(batch[0][1]) - 1
            x = torch.full((len(batch), width), eos, dtype=torch.long)
            y = torch.full((len(batch), width), -1, dtype=torch.long)
            for row, (_, window) in enumerate(batch):
                x[row, : len(window) - 1] = torch.from_numpy(window[:-1])
                y[row, : len(window) - 1] = torch.from_numpy(window[1:])
            x, y = x.to(device), y.to(device)
            with autocast:
                losses = model(x, y)
            sums = losses.float().sum(dim=1, dtype=torch.float64).cpu().numpy()
            np.add.at(nll, [d for d, _ in batch], sums)
    return nll, predicted


def _score(nll: np.ndarray, predicted: np.ndarray, nbytes: np.ndarray, mask: np.ndarray, total: int) -> dict:
    nats, tokens, size = float(nll[mask].sum()), int(predicted[mask].sum()), int(nbytes[mask].sum())
    docs = int(mask.sum())
    ci = bootstrap(nll[mask] / math.log(2), nbytes[mask], seed=docs) if docs > 1 and size else None
    return {
        "bpb": nats / math.log(2) / size if size else float("nan"),
        "bpb_ci95": None if ci is None else [ci.lo, ci.hi],
        "loss": nats / tokens if tokens else float("nan"),
        "tokens": tokens,
        "bytes": size,
        "docs": docs,
        "docs_total": int(total),
        "capped": docs < total,
    }

"""Decontamination: drop training documents that contain an evaluation item.

As GPT-3 and FineWeb do, an item and a document overlap when they share a long n-gram: word 13-grams for
English and code (lower-cased, punctuation stripped, digits kept: "3 plus 4" must not match "5 plus 6"), and
character 13-grams for items written in Chinese.  An item shorter than the n-gram is indexed whole, as one
n-gram of its own length, so it is found only as an exact run inside a document; an item shorter than
``min_units`` is too generic to mean contamination and is counted as skipped.

The index is sorted 64-bit n-gram hashes with the task of each.  A batch's n-grams are first tested in bulk
against a bitmap of the index's hash prefixes (one gather per n-gram; a few percent pass by chance) and only
those are looked up with ``np.searchsorted``: no Python loop over items or documents.  Character n-grams are
computed only for documents holding a CJK character when every indexed character n-gram holds one (checked when
the index is built), so English and code skip the character pass.  A dropped document's rejection names the
task whose item it contains.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data
from rich.console import Console

from dataengine.aggregate import grouped_sums
from dataengine.config import DecontamConfig, ShingleSpec
from dataengine.dedup.minhash import gaps, normalise, shingle_hashes, unit_hashes
from dataengine.schema import kept_mask, reject_rows

STAGE = "decontam"
REASON = f"{STAGE}:eval_overlap"
CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{CJK_CLASS}]")
BITMAP_BITS = 24  # hash prefixes in the bitmap: 16 MB, a few percent of n-grams pass by chance


def _specs(cfg: DecontamConfig) -> dict[str, ShingleSpec]:
    common = {"lowercase": True, "strip_punctuation": True, "normalise_digits": False}
    return {
        "word": ShingleSpec(unit="word", n=cfg.word_ngram, **common),
        "char": ShingleSpec(unit="char", n=cfg.char_ngram, **common),
    }


@dataclass
class EvalIndex:
    """N-gram hashes of every evaluation item, by unit kind and n-gram length, with the task of each hash."""

    config: DecontamConfig
    tasks: list[str]
    # (unit, n) -> (sorted hashes, task index of each)
    grams: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # too short to match
    char_grams_hold_cjk: bool = False  # every character n-gram has a CJK character: other documents cannot match

    @property
    def size(self) -> int:
        return sum(len(h) for h, _ in self.grams.values())

    @cached_property
    def bitmap(self) -> np.ndarray:
        """Whether any indexed hash (of any unit and length) starts with each ``BITMAP_BITS``-bit prefix; made
        where the index is used (a worker), not shipped."""
        bits = np.zeros(1 << BITMAP_BITS, dtype=bool)
        for hashes, _ in self.grams.values():
            bits[hashes >> np.uint64(64 - BITMAP_BITS)] = True
        return bits


def build_index(items: Iterable[tuple[str, str]], cfg: DecontamConfig) -> EvalIndex:
    """Index ``(task, text)`` items: word n-grams for every item, character n-grams for Chinese ones."""
    by_unit: dict[str, list[tuple[int, str]]] = {"word": [], "char": []}
    tasks: list[str] = []
    task_ids: dict[str, int] = {}
    items_per_task: Counter[str] = Counter()
    for task, text in items:
        tid = task_ids.setdefault(task, len(task_ids))
        if tid == len(tasks):
            tasks.append(task)
        items_per_task[task] += 1
        by_unit["char" if _CJK.search(text) else "word"].append((tid, text))
    index = EvalIndex(config=cfg, tasks=tasks, items=dict(items_per_task))
    index.char_grams_hold_cjk = all_grams_hold_cjk(pa.array([t for _, t in by_unit["char"]], pa.string()), cfg)
    skipped: Counter[str] = Counter()
    collected: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    for unit, spec in _specs(cfg).items():
        entries = by_unit[unit]
        if not entries:
            continue
        units, counts = unit_hashes(pa.array([t for _, t in entries], pa.string()), spec)
        grams, per_item = shingle_hashes(units, counts, spec.n, bits=64)
        owner = np.repeat(np.array([tid for tid, _ in entries], np.int32), per_item)
        lengths = np.repeat(np.minimum(counts, spec.n), per_item)  # n for long items, the whole length for short
        for tid, n_units in zip((tid for tid, _ in entries), counts.tolist(), strict=True):
            if n_units < cfg.min_units:
                skipped[tasks[tid]] += 1
        usable = lengths >= cfg.min_units
        for n in np.unique(lengths[usable]).tolist():
            chosen = usable & (lengths == n)
            collected.setdefault((unit, int(n)), []).append((grams[chosen], owner[chosen]))
    for key, parts in collected.items():
        hashes = np.concatenate([h for h, _ in parts])
        owners = np.concatenate([o for _, o in parts])
        order = np.argsort(hashes, kind="stable")
        index.grams[key] = (hashes[order], owners[order])
    index.skipped = dict(skipped)
    return index


def all_grams_hold_cjk(texts: pa.Array, cfg: DecontamConfig) -> bool:
    """Whether every character n-gram of these items has a CJK character: no run of ``char_ngram`` other
    characters once normalised as ``unit_hashes`` normalises them (a shorter item is indexed whole, and it has
    one: that is why it is indexed by characters)."""
    spec = _specs(cfg)["char"]
    clean = pc.replace_substring_regex(normalise(texts, spec), gaps(spec), "")
    return not pc.any(pc.match_substring_regex(clean, f"[^{CJK_CLASS}]{{{spec.n}}}")).as_py()


def rows_to_scan(index: EvalIndex, unit: str, texts: pa.Array) -> np.ndarray:
    """The rows whose ``unit`` n-grams can match: all of them, or for characters only those with a CJK character
    when every indexed character n-gram has one."""
    if unit != "char" or not index.char_grams_hold_cjk:
        return np.arange(len(texts))
    has_cjk = pc.fill_null(pc.match_substring_regex(texts, f"[{CJK_CLASS}]"), False)
    return np.flatnonzero(has_cjk.to_numpy(zero_copy_only=False))


def contaminating_task(index: EvalIndex, texts: pa.Array) -> list[str | None]:
    """Per text: the task of the first evaluation n-gram found in it (lowest task index), or None."""
    found = np.full(len(texts), len(index.tasks), dtype=np.int64)
    specs = _specs(index.config)
    prefix = np.uint64(64 - BITMAP_BITS)
    for unit in sorted({u for u, _ in index.grams}):
        rows = rows_to_scan(index, unit, texts)
        if not len(rows):
            continue
        units, counts = unit_hashes(texts if len(rows) == len(texts) else texts.take(rows), specs[unit])
        for (u, n), (hashes, owners) in index.grams.items():
            if u != unit:
                continue
            # (a document shorter than n is one gram of all its units, which only an item of that length matches)
            grams, per_doc = shingle_hashes(units, counts, n, bits=64)
            maybe = np.flatnonzero(index.bitmap[grams >> prefix])
            pos = np.clip(np.searchsorted(hashes, grams[maybe]), 0, len(hashes) - 1)
            hit = hashes[pos] == grams[maybe]
            if not hit.any():
                continue
            doc = np.searchsorted(np.cumsum(per_doc), maybe[hit], side="right")
            np.minimum.at(found, rows[doc], owners[pos[hit]])
    return [index.tasks[t] if t < len(index.tasks) else None for t in found.tolist()]


def decontaminate_batch(table: pa.Table, index: EvalIndex) -> pa.Table:
    """Reject kept documents that contain an evaluation item; the detail names the task."""
    kept = kept_mask(table)
    if not kept.any() or not index.grams:
        return table
    rows = np.flatnonzero(kept)
    tasks = contaminating_task(index, table["text"].take(pa.array(rows)).combine_chunks())
    rejects: list[str | None] = [None] * table.num_rows
    details: list[str | None] = [None] * table.num_rows
    for row, task in zip(rows.tolist(), tasks, strict=True):
        if task is not None:
            rejects[row], details[row] = REASON, f"task={task}"
    return reject_rows(table, rejects, details)


def _dropped(table: pa.Table) -> pa.Table:
    hit = table.filter(pc.equal(pc.fill_null(table["reject"], ""), REASON))
    tasks = pc.replace_substring(hit["reject_detail"], "task=", "")
    return pa.table({"task": tasks, "docs": pa.repeat(pa.scalar(1, pa.int64()), hit.num_rows)})


def decontaminate(docs: ray.data.Dataset, cfg: DecontamConfig, console: Console) -> tuple[ray.data.Dataset, dict]:
    """Reject documents holding an item of the configured evaluation suite; items and drops per task.

    The index (n-gram hashes of the suite's items) is bounded by the suite, not by the corpus."""
    if not cfg.enabled:
        return docs, {"enabled": False}
    from pretrain.eval.tasks import decontamination_texts, unavailable_lines  # the evaluation owns its items

    texts, unavailable = decontamination_texts(cfg.suite)
    for line in unavailable_lines(unavailable):
        console.print(f"[yellow]decontamination (their items are not checked): {line}[/]")
    index = build_index(texts, cfg)
    console.print(f"decontamination: {sum(index.items.values()):,} evaluation items, {index.size:,} n-grams")
    docs = docs.map_batches(decontaminate_batch, fn_kwargs={"index": index}, batch_format="pyarrow")
    docs = docs.materialize()
    dropped = grouped_sums(docs, _dropped, ["task"], ["docs"])
    return docs, {
        "enabled": True,
        "suite": cfg.suite,
        "word_ngram": cfg.word_ngram,
        "char_ngram": cfg.char_ngram,
        "items": index.items,
        "items_too_short": index.skipped,
        "unavailable": unavailable,
        "docs_dropped": dict(zip(dropped["task"].to_pylist(), dropped["docs"].to_pylist(), strict=True)),
    }

"""Decontamination throughput per core: our bulk n-gram scan against datatrove's ``NGramsDecontFilter``.

Same documents (code, English and Chinese text of the sample, every 40th with an evaluation item of the default
suite pasted in), same evaluation items, same process, CPU seconds (``time.process_time``) so that jobs sharing
the machine count against neither side.  Ours: ``contaminating_task`` over Arrow batches of the build's batch
size, the index (word 13-grams, character 13-grams for Chinese items, short items whole) built before the
clock starts, as the driver builds it once for every worker, and its bitmap made inside the timing, as each
worker makes it.  datatrove's: its filter reading its own index files of the same items, written before the
clock starts (13-grams of its normalised, spaCy-tokenized words; one dict look-up per n-gram), the same
documents one at a time (its default xxhash fails on ``str`` n-grams in this datatrove: sha1 64-bit, its other
hash).  Both must find every planted item (an English item of 18 words or more); what else each finds is printed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
from datatrove.utils.hashing import HashConfig, create_hash_func
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import load_word_tokenizer

from bench.corpus import plain_texts
from bench.harness import Row
from dataengine.config import DecontamConfig, PipelineConfig
from dataengine.filters.decontam import _CJK, build_index, contaminating_task
from pretrain.eval.tasks import decontamination_texts

INPUT_BYTES = 6_000_000
PLANT_EVERY = 40
N = 13


def planted(texts: list[str], items: list[tuple[str, str]]) -> tuple[list[str], list[int]]:
    """Every ``PLANT_EVERY``-th document with an English item of at least N words pasted in; their rows."""
    long_en = [t for _, t in items if not _CJK.search(t) and len(t.split()) >= N + 5]
    rows = list(range(0, len(texts), PLANT_EVERY))
    out = list(texts)
    for k, row in enumerate(rows):
        out[row] = texts[row][:2000] + "\n" + long_en[(k * 7919) % len(long_en)] + "\n" + texts[row][2000:]
    return out, rows


def ours(texts: list[str], items: list[tuple[str, str]]) -> tuple[float, set[int]]:
    index = build_index(items, DecontamConfig(word_ngram=N, char_ngram=N))
    start = time.process_time()
    batch = PipelineConfig().batch_size
    found = [
        task is not None
        for at in range(0, len(texts), batch)
        for task in contaminating_task(index, pa.array(texts[at : at + batch], pa.string()))
    ]
    return time.process_time() - start, set(np.flatnonzero(found).tolist())


def datatrove(texts: list[str], items: list[tuple[str, str]], folder: Path) -> tuple[float, set[int]]:
    """datatrove's filter on index files written as its indexer writes them (label n-grams of each task)."""
    config = NGramsDecontConfig(n_grams=N, hash_config=HashConfig(precision=64, hash_fc="sha1"))
    tokenizer, hash_func = load_word_tokenizer("en"), create_hash_func(config.hash_config)
    by_task: dict[str, set[int]] = {}
    for task, text in items:
        tokens = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
        by_task.setdefault(task, set()).update(map(hash_func, map(" ".join, ngrams(tokens, N))))
    for task, hashes in by_task.items():
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(folder / f"{task}.index.hashes")
    start = time.process_time()
    decont = NGramsDecontFilter(str(folder), config=config)
    found = {i for i, text in enumerate(texts) if decont.filter(Document(text=text, id=str(i))) is not True}
    return time.process_time() - start, found


def run() -> list[Row]:
    items = list(decontamination_texts("default")[0])
    texts, rows = planted(plain_texts(INPUT_BYTES), items)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    ours_s, ours_found = ours(texts, items)
    with tempfile.TemporaryDirectory() as folder:
        peer_s, peer_found = datatrove(texts, items, Path(folder))
    assert set(rows) <= ours_found and set(rows) <= peer_found, "a planted item was missed"
    print(f"{len(texts)} docs, {mb:.1f} MB, {len(rows)} planted; found beyond them: ours "
          f"{sorted(ours_found - set(rows))}, datatrove {sorted(peer_found - set(rows))}")  # fmt: skip
    what = f"decontamination, {len(texts):,} docs, {mb:.1f} MB, {len(items):,} items ({len(rows)} planted, all found)"
    peer = "datatrove NGramsDecontFilter, same items and documents"
    return [
        Row(what, mb / ours_s, peer, mb / peer_s, "MB/s per core (CPU time)"),
        Row(what, len(texts) / ours_s, peer, len(texts) / peer_s, "docs/s per core (CPU time)"),
    ]

"""Near-duplicate removal: signature speed, accuracy, end-to-end scale, agreement with datatrove.

All on real documents of the embedded sample corpus (code files, English and Chinese page text), in one run:

- MinHash signatures per CPU-second (one core): ours (``minhash.signatures``, from raw text) vs
  ``datasketch.MinHash`` and ``rensa.RMinHash`` (Rust) with 112 permutations fed the same shingles by a
  plain-Python shingler (its time counts: neither has one of its own), through ``update_batch`` / rensa's bulk
  ``digest_matrix_from_token_byte_sets`` and through per-shingle ``update`` (the usage datasketch's docs show); vs
  datatrove's ``MinhashDedupSignature`` (its own normalisation, word tokenizer and sha1 shingle hashes); and
  the permutation step alone, ours vs rensa, on the same shingle hashes.  CPU time, not wall, and the
  contenders interleaved round by round, best round each: the machine is shared;
- accuracy per domain on ``dataengine.dedup.labelled``'s pairs (one controlled edit per base document, true
  Jaccard computed exactly): recall at Jaccard >= 0.85 and false-positive rate at Jaccard <= 0.5, vs
  ``datasketch.MinHashLSH`` at the same threshold and number of permutations;
- the whole near-dedup stage (line dedup + signatures + LSH + marking) on Ray, 2 workers, at 100k and 300k
  documents (``DEDUP_SIZES=100000,300000,1000000`` for more): 70% real text (chunks of the sample corpus, then
  remixes of four quarter-chunks each once the chunks run out) and 30% light edits of them; wall time, peak
  memory of the process tree, and how wall time grows with size.  Ray's object store is capped at
  ``DEDUP_OBJECT_STORE_MB`` (default 1536; ``0`` for Ray's default, 30% of memory): beyond it Ray spills to disk,
  so the peak measures what the stage needs, not what an idle machine lets Ray keep in memory;
- datatrove's 4-stage MinHash pipeline on 5k of those documents (English and code): which documents each
  drops, compared after applying one keep rule (the smallest id of each cluster) to both clusterings;
- distributed connected components (``dataengine.dedup.components``) on a synthetic edge list of
  ``DEDUP_CC_EDGES`` edges (default 200k): wall time and rounds.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lxml.html
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray.data

from bench.corpus import page_paths, sample_by_name
from bench.harness import Row, timed
from bench.memory import PeakMemory
from dataengine.config import NearDedupConfig, ShingleSpec, SourceConfig
from dataengine.dedup import labelled
from dataengine.dedup.components import connected_components
from dataengine.dedup.lsh import find_near_duplicates
from dataengine.dedup.minhash import minhash, shingle_hashes, signatures, unit_hashes
from dataengine.dedup.near import near_dedup, signature_rows
from dataengine.extract.code import language_of
from dataengine.runtime import ray_session
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.files import expand

CFG = NearDedupConfig()
DOMAINS = {"code": "code", "web_en": "en", "web_zh": "zh"}
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="git", paths=[]),
]
SIG_DOCS = 1_500  # per-core signature speed: documents, a third of each domain
ACCURACY_BASES = 400  # per domain
SCALES = tuple(int(n) for n in os.environ.get("DEDUP_SIZES", "100000,300000").split(","))
BLOCK_DOCS = 20_000  # documents per Ray block of the end-to-end corpus
AGREEMENT_DOCS = 5_000
CC_EDGES = int(os.environ.get("DEDUP_CC_EDGES", "200000"))
OBJECT_STORE_MB = int(os.environ.get("DEDUP_OBJECT_STORE_MB", "1536")) or None
TREE_TARGET_MB = 4096  # issue 18: near-dedup's process-tree peak at 1M documents


def sample_documents(limit_per_domain: int) -> dict[str, list[str]]:
    """Real documents per source: code files, and the text of English and Chinese pages."""
    sources = sample_by_name()
    docs: dict[str, list[str]] = {"code": [], "web_en": [], "web_zh": []}
    for spec in sources["code"].path_specs():
        for path in expand(spec.path):
            if len(docs["code"]) < limit_per_domain and language_of(path):
                try:
                    docs["code"].append(Path(path).read_text(encoding="utf-8"))
                except (UnicodeDecodeError, OSError):
                    continue
    for name in ("web_en", "web_zh"):
        for path in page_paths(sources[name])[:limit_per_domain]:
            try:
                docs[name].append(lxml.html.parse(path).getroot().text_content())
            except (ValueError, OSError, AttributeError):
                continue
    return docs


def spec_of(source: str) -> ShingleSpec:
    return CFG.shingle_spec(DOMAINS[source])


def datatrove_config() -> Any:
    """FineWeb's 14 x 8 with sha1 shingle hashes: datatrove 0.10's xxhash path passes ``str`` to xxhash 4,
    which refuses it."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(hash_config=HashConfig(hash_fc="sha1"))


# -- signatures per second per core ---------------------------------------------------------------------------
def _python_shingles(text: str, spec: ShingleSpec) -> list[bytes]:
    return [" ".join(s).encode() for s in labelled.ref_shingles(text, spec)]


def least_cpu_seconds(contenders: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Each contender's least CPU time over ``rounds`` rounds, all contenders run in every round: CPU time
    because other jobs' load barely changes it, interleaved so a busy spell slows every contender alike."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return best


def signature_speed(docs: dict[str, list[str]]) -> list[Row]:
    import rensa
    from datasketch import MinHash
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    picked = {name: texts[: SIG_DOCS // 3] for name, texts in docs.items()}
    few = {name: texts[:50] for name, texts in picked.items()}  # for the slow peers
    n, n_few = (sum(len(t) for t in group.values()) for group in (picked, few))
    mb = sum(len(x.encode()) for t in picked.values() for x in t) / 1e6
    batches = [(spec_of(name), pa.array(texts[i : i + 256])) for name, texts in picked.items()
               for i in range(0, len(texts), 256)]  # fmt: skip
    hashed = []
    for spec, texts in batches:
        shingles, per_doc = shingle_hashes(*unit_hashes(texts, spec), spec.n)
        hashed.append((shingles.astype(np.uint32), per_doc[per_doc > 0]))
    datatrove = MinhashDedupSignature(output_folder=tempfile.mkdtemp(), config=datatrove_config())

    def python_shingled(group: dict[str, list[str]]) -> Iterator[list[bytes]]:
        for name, texts in group.items():
            yield from (_python_shingles(text, spec_of(name)) for text in texts)

    def datasketch_batch() -> None:
        for shingles in python_shingled(picked):
            MinHash(num_perm=CFG.num_perm).update_batch(shingles)

    def datasketch_each() -> None:
        for shingles in python_shingled(few):
            m = MinHash(num_perm=CFG.num_perm)
            for shingle in shingles:
                m.update(shingle)

    def rensa_each() -> None:
        for shingles in python_shingled(picked):
            m = rensa.RMinHash(num_perm=CFG.num_perm, seed=CFG.seed)
            m.update(shingles)
            m.digest()

    def rensa_bulk() -> None:
        for name, texts in picked.items():
            for i in range(0, len(texts), 256):
                sets = [_python_shingles(t, spec_of(name)) for t in texts[i : i + 256]]
                rensa.RMinHash.digest_matrix_from_token_byte_sets(sets, num_perm=CFG.num_perm, seed=CFG.seed)

    def datatrove_sigs() -> None:
        for texts in few.values():
            for text in texts:
                shingles = datatrove.get_shingles(text)
                if shingles.size:
                    datatrove.get_signature(shingles)

    def ours_permutations() -> None:
        for shingles, per_doc in hashed:
            minhash(shingles, per_doc, CFG.num_perm, CFG.seed)

    def rensa_permutations() -> None:
        for shingles, per_doc in hashed:
            offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.uint64)
            rensa.RMinHash.digest_matrix_from_flat_token_hashes(shingles.astype(np.uint64), offsets,
                                                                num_perm=CFG.num_perm, seed=CFG.seed)  # fmt: skip

    def ours() -> None:
        for spec, texts in batches:
            signatures(texts, spec, CFG.num_perm, CFG.seed)

    contenders = {"ours": ours, "datasketch MinHash.update_batch": datasketch_batch,
                  "datasketch MinHash.update (per shingle)": datasketch_each,
                  "rensa RMinHash.update": rensa_each, "rensa digest_matrix_from_token_byte_sets (bulk)": rensa_bulk,
                  "datatrove MinhashDedupSignature": datatrove_sigs}  # fmt: skip
    ours()  # warm up (pyarrow's Unicode tables, the permutations)
    cpu = least_cpu_seconds(contenders, rounds=3)
    docs_of = {name: n_few if name.startswith(("datatrove", "datasketch MinHash.update (")) else n for name in cpu}
    what = f"MinHash signatures from text, per CPU-second, {n:,} docs ({mb:.0f} MB code+en+zh), 112 perms"
    rows = [Row(what, n / cpu["ours"], name, docs_of[name] / s, "docs/s") for name, s in cpu.items() if name != "ours"]
    perm = least_cpu_seconds({"ours": ours_permutations, "rensa": rensa_permutations}, rounds=5)
    what = (
        f"MinHash permutation step alone, the same {sum(len(s) for s, _ in hashed):,} shingle hashes in, per CPU-second"
    )
    rows.append(Row(what, n / perm["ours"], "rensa digest_matrix_from_flat_token_hashes", n / perm["rensa"], "docs/s"))
    return rows


# -- accuracy on a labelled set -------------------------------------------------------------------------------
def labelled_set(docs: dict[str, list[str]]) -> list[labelled.LabelledPair]:
    """Pairs from the first 600 units of each document: long enough for heavy edits, short enough to be quick."""
    specs = {source: spec_of(source) for source in docs}
    cut = {s: [labelled.join(labelled.split(t, specs[s])[:600], specs[s]) for t in texts] for s, texts in docs.items()}
    return labelled.labelled_pairs(cut, specs, ACCURACY_BASES)


def _pair_rows(pairs: list[labelled.LabelledPair]) -> list[tuple[dict, dict]]:
    return [
        (doc_row(source=p.source, kind="text", url=f"{n}/a", text=p.original),
         doc_row(source=p.source, kind="text", url=f"{n}/b", text=p.edited))
        for n, p in enumerate(pairs)
    ]  # fmt: skip


def _datasketch_together(pairs: list[labelled.LabelledPair]) -> list[bool]:
    from datasketch import MinHash, MinHashLSH

    together = []
    for source in DOMAINS:
        group = [p for p in pairs if p.source == source]
        lsh = MinHashLSH(threshold=CFG.threshold, num_perm=CFG.num_perm)
        sketches = []
        for n, p in enumerate(group):
            a, b = MinHash(num_perm=CFG.num_perm), MinHash(num_perm=CFG.num_perm)
            a.update_batch(_python_shingles(p.original, spec_of(source)))
            b.update_batch(_python_shingles(p.edited, spec_of(source)))
            lsh.insert(n, a)
            sketches.append(b)
        together += [n in lsh.query(b) for n, b in enumerate(sketches)]
    return together


def accuracy(docs: dict[str, list[str]]) -> list[Row]:
    pairs = labelled_set(docs)
    rows = _pair_rows(pairs)
    flat = [r for pair in rows for r in pair]
    ds = ray.data.from_arrow([rows_to_table(flat[i::8]) for i in range(8)])
    sigs = ds.map_batches(signature_rows, fn_kwargs={"cfg": CFG, "domain_of": DOMAINS}, batch_format="pyarrow")
    kept = {r["id"]: r["kept"] for r in find_near_duplicates(sigs.materialize(), CFG).take_all()}
    ours = [kept.get(a["id"], a["id"]) == kept.get(b["id"], b["id"]) for a, b in rows]
    peer = _datasketch_together(pairs)
    out = []
    for source in DOMAINS:
        idx = [i for i, p in enumerate(pairs) if p.source == source]
        mine = labelled.accuracy([pairs[i] for i in idx], [ours[i] for i in idx])
        theirs = labelled.accuracy([pairs[i] for i in idx], [peer[i] for i in idx])
        mid = mine.pairs - mine.high - mine.low
        name = f"{source}: {mine.pairs} labelled pairs ({mine.high} at J>=0.85, {mine.low} at J<=0.5, {mid} between)"
        peer_name = f"datasketch MinHashLSH({CFG.threshold})"
        out.append(Row(f"{name}: recall at J>=0.85", mine.recall, peer_name, theirs.recall, "share"))
        out.append(Row(f"{name}: false positives at J<=0.5", mine.false_positives, peer_name, theirs.false_positives,
                       "share", higher_is_better=False))  # fmt: skip
    return out


# -- end to end ------------------------------------------------------------------------------------------------
def synthetic_corpus(docs: dict[str, list[str]], size: int) -> Iterator[pa.Table]:
    """``size`` documents in blocks of ``BLOCK_DOCS``: 70% real text (~120 words, 300 Chinese characters), 30%
    light edits (3-8%) of earlier ones, so every size has the same make-up.  The real chunks come first; past
    them, an original is a remix of four quarter-chunks of one source (two remixes rarely share a quarter)."""
    rng = random.Random(size)
    chunks = []
    for source, texts in docs.items():
        spec, step = spec_of(source), 300 if source == "web_zh" else 120
        for text in texts:
            toks = labelled.split(text, spec)
            chunks += [(source, toks[i : i + step]) for i in range(0, len(toks) - step // 2, step)]
    rng.shuffle(chunks)
    by_source: dict[str, list[list[str]]] = {}
    for source, toks in chunks:
        by_source.setdefault(source, []).append(toks)
    filler = [u for _, toks in chunks[:200] for u in toks]
    originals: list[tuple[str, list[str]]] = []
    rows: list[dict] = []
    for i in range(size):
        if rng.random() < 0.7 or not originals:
            if len(originals) < len(chunks):
                source, toks = chunks[len(originals)]
            else:
                source = chunks[rng.randrange(len(chunks))][0]
                pool = by_source[source]
                toks = [u for _ in range(4) for u in _quarter(pool[rng.randrange(len(pool))], rng)]
            originals.append((source, toks))
            rows.append(doc_row(source=source, kind="text", url=f"o{i}", text=labelled.join(toks, spec_of(source))))
        else:
            source, toks = originals[rng.randrange(len(originals))]
            kind = ("insert", "delete", "boilerplate")[i % 3]
            edited = labelled.edit(toks, kind, 0.03 + 0.05 * rng.random(), filler, rng)
            rows.append(doc_row(source=source, kind="text", url=f"c{i}", text=labelled.join(edited, spec_of(source))))
        if len(rows) == BLOCK_DOCS:
            yield rows_to_table(rows)
            rows = []
    if rows:
        yield rows_to_table(rows)


def _quarter(toks: list[str], rng: random.Random) -> list[str]:
    q = max(1, len(toks) // 4)
    start = rng.randrange(4) * q
    return toks[start : start + q]


@ray.remote(max_calls=1)  # its worker exits after: the generator's Python heap is no part of what is measured
def _generated(docs: dict[str, list[str]], size: int) -> tuple[pa.Table, ...] | pa.Table:
    blocks = tuple(synthetic_corpus(docs, size))
    return blocks if len(blocks) > 1 else blocks[0]


def end_to_end(docs: dict[str, list[str]], size: int) -> tuple[float, float, int, int]:
    """Wall seconds, peak MB of the process tree, documents dropped, lines removed, for ``size`` generated
    documents (generated in a task, so they reach the object store without passing through the driver)."""
    n_blocks = -(-size // BLOCK_DOCS)
    refs = _generated.options(num_returns=n_blocks).remote(docs, size)
    ds = ray.data.from_arrow_refs(refs if n_blocks > 1 else [refs]).materialize()
    del refs
    with PeakMemory() as mem:
        start = time.perf_counter()
        out, removed = near_dedup(ds, CFG, SOURCES)
        dropped = _dropped(out)
        wall = time.perf_counter() - start
    return wall, mem.peak / 2**20, dropped, sum(r["lines"] for r in removed.values())


def _count_rejected(table: pa.Table) -> pa.Table:
    return pa.table({"n": [table.num_rows - table["reject"].null_count]})


def _dropped(ds: ray.data.Dataset) -> int:
    return int(sum(r["n"] for r in ds.map_batches(_count_rejected, batch_format="pyarrow").take_all()))


# -- agreement with datatrove's pipeline ---------------------------------------------------------------------
def _read_docs(folder: Path) -> list[dict]:
    return [row for path in sorted(folder.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def datatrove_dropped(rows: list[dict], work: Path, workers: int) -> tuple[set[str], set[str]]:
    """Documents datatrove's 4 MinHash stages drop: as it chooses, and with the smallest id of each cluster kept."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    tasks = workers * 4
    (work / "in").mkdir(parents=True)
    for i in range(tasks):
        part = rows[i::tasks]
        table = pa.table({"id": [r["id"] for r in part], "text": [r["text"] for r in part]})
        pq.write_table(table, work / "in" / f"{i:03d}.parquet")
    config = datatrove_config()
    logs = str(work / "logs")

    def stage(name: str, pipeline: list, n_tasks: int) -> None:
        LocalPipelineExecutor(pipeline=pipeline, tasks=n_tasks, workers=workers, logging_dir=f"{logs}/{name}").run()

    stage("sig", [ParquetReader(str(work / "in")), MinhashDedupSignature(str(work / "sigs"), config=config)], tasks)
    stage(
        "buckets", [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)], config.num_buckets
    )
    stage(
        "cluster",
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config, save_cluster_id=True)],
        1,
    )
    stage("filter", [ParquetReader(str(work / "in")),
                     MinhashDedupFilter(str(work / "remove"), exclusion_writer=ParquetWriter(str(work / "removed")),
                                        load_cluster_ids=True),
                     ParquetWriter(str(work / "kept"))], tasks)  # fmt: skip
    removed = _read_docs(work / "removed")
    clusters: dict[int, list[str]] = {}
    for doc in removed + _read_docs(work / "kept"):
        cluster = doc["metadata"]["minhash_cluster_id"]
        if cluster != -1:
            clusters.setdefault(cluster, []).append(doc["id"])
    by_rule = {i for members in clusters.values() for i in sorted(members)[1:]}
    return {d["id"] for d in removed}, by_rule


def agreement(rows: list[dict], cpus: int) -> list[Row]:
    """Ours vs datatrove on the same documents (English and code: datatrove shingles words in one language)."""
    rows = [r for r in rows if r["source"] != "web_zh"][:AGREEMENT_DOCS]
    ds = ray.data.from_arrow([rows_to_table(rows[i :: cpus * 4]) for i in range(cpus * 4)])
    sigs = ds.map_batches(signature_rows, fn_kwargs={"cfg": CFG, "domain_of": DOMAINS}, batch_format="pyarrow")
    ours_s, found = timed(lambda: find_near_duplicates(sigs.materialize(), CFG))
    ours = {r["id"] for r in found.select_columns(["id"]).take_all()}
    with tempfile.TemporaryDirectory() as tmp:
        peer_s, (as_chosen, by_rule) = timed(lambda: datatrove_dropped(rows, Path(tmp), cpus))
    both = len(ours & by_rule)
    what = f"near-dedup of {len(rows):,} en+code docs, {cpus} workers"
    return [
        Row(f"{what}: wall (signatures to dropped ids)", ours_s, "datatrove 4-stage MinHash", peer_s, "s",
            higher_is_better=False),
        Row(f"{what}: documents dropped (datatrove: {len(by_rule):,} with the smallest id of each cluster kept, "
            f"{len(as_chosen):,} as it chooses)", len(ours), "-", None, "docs"),
        Row(f"{what}: dropped by both / by either (same keep rule)", both / max(1, len(ours | by_rule)), "-", None,
            "share"),
    ]  # fmt: skip


def components_scale() -> list[Row]:
    """Connected components, distributed, of an edge list: clusters of 5 plus 1% long-range edges."""
    rng = np.random.default_rng(0)
    n = (CC_EDGES - CC_EDGES // 100) * 5 // 4  # 4 edges per cluster of 5; the rest (1%) long-range
    nodes = np.arange(n)
    a = nodes[nodes % 5 != 0]
    b = a - a % 5
    extra = CC_EDGES - len(a)
    a = np.concatenate([a, rng.integers(0, n, extra)])
    b = np.concatenate([b, rng.integers(0, n, extra)])
    ids = pa.array([f"doc-{i:012d}" for i in range(n)], pa.string())
    table = pa.table({"a": ids.take(pa.array(a)), "b": ids.take(pa.array(b))})
    edges = ray.data.from_arrow([table.slice(i, BLOCK_DOCS) for i in range(0, len(table), BLOCK_DOCS)]).materialize()
    del table
    seconds, (found, rounds) = timed(lambda: connected_components(edges))
    what = f"connected components, distributed, {CC_EDGES:,} edges, {n:,} nodes ({found.count():,} not kept)"
    return [
        Row(f"{what}: wall", seconds, "-", None, "s", higher_is_better=False),
        Row(f"{what}: rounds (large-star + small-star)", rounds, "-", None, "rounds", higher_is_better=False),
    ]


def run() -> list[Row]:
    docs = sample_documents(limit_per_domain=6_000)
    rows = signature_speed(docs)
    with ray_session(2, object_store_mb=OBJECT_STORE_MB) as cpus:
        rows += accuracy(docs)
        walls = {}
        for size in SCALES:
            wall, peak_mb, dropped, lines = end_to_end(docs, size)
            walls[size] = wall
            what = f"near-dedup stage, {size // 1000:,}k docs ({cpus} workers; {dropped:,} dropped, {lines:,} lines)"
            store = f"object store {OBJECT_STORE_MB:,} MB" if OBJECT_STORE_MB else "Ray's default object store"
            target = ("target at 1M docs", TREE_TARGET_MB) if size >= 1_000_000 else ("-", None)
            rows.append(Row(f"{what}: wall", wall, "-", None, "s", higher_is_better=False))
            rows.append(Row(f"{what}: peak memory (process tree, {store})", peak_mb, *target, "MB",
                            higher_is_better=False))  # fmt: skip
        for small, large in zip(SCALES, SCALES[1:], strict=False):
            rows.append(Row(f"wall growth {small // 1000:,}k -> {large // 1000:,}k docs (x{large / small:.2g} docs)",
                            walls[large] / walls[small], "-", None, "x", higher_is_better=False))  # fmt: skip
        corpus = next(synthetic_corpus(docs, AGREEMENT_DOCS * 2)).to_pylist()
        rows += agreement(corpus, cpus)
        rows += components_scale()
    return rows

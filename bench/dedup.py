"""Near-duplicate removal: signature speed, accuracy, end-to-end scale, agreement with datatrove.

All on real documents of the embedded sample corpus (code files, English and Chinese page text), in one run:

- MinHash signatures per second on one core: ours (``minhash.signatures``, from raw text) vs
  ``datasketch.MinHash`` with the same 112 permutations fed the same shingles by a plain-Python shingler (its
  time counts: datasketch has none of its own), through ``update_batch`` and through per-shingle ``update``
  (the usage its docs show); and vs datatrove's ``MinhashDedupSignature`` (its own normalisation, word
  tokenizer and sha1 shingle hashes) on the same documents;
- accuracy per domain on a labelled set (one controlled edit per base document, true Jaccard computed
  exactly): recall at Jaccard >= 0.85 and false-positive rate at Jaccard <= 0.5, vs ``datasketch.MinHashLSH``
  at the same threshold and number of permutations;
- the whole near-dedup stage (line dedup + signatures + LSH + marking) on Ray, 2 workers, at 100k and 300k
  documents (real chunks and synthetic near-copies of them): wall time, peak memory of the process tree;
- datatrove's 4-stage MinHash pipeline on 5k of those documents (English and code): which documents each
  drops, compared after applying one keep rule (the smallest id of each cluster) to both clusterings;
- connected components in the driver on a synthetic edge list of 10M edges: the limit of the one step that
  is not distributed.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
import tracemalloc
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
from dataengine.dedup.lsh import components, find_near_duplicates
from dataengine.dedup.minhash import signatures
from dataengine.dedup.near import near_dedup, signature_rows
from dataengine.extract.code import language_of
from dataengine.runtime import ray_session
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.files import expand
from tests.test_near_dedup import edit_tokens, ref_shingles

CFG = NearDedupConfig()
DOMAINS = {"code": "code", "web_en": "en", "web_zh": "zh"}
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="git", paths=[]),
]
SIG_DOCS = 1_500  # per-core signature speed: documents, a third of each domain
ACCURACY_BASES = 400  # per domain
SCALES = (100_000, 300_000)
AGREEMENT_DOCS = 5_000
CC_EDGES = 10_000_000


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


def units(text: str, source: str) -> list[str]:
    """What an edit works on: characters for Chinese, words otherwise."""
    return list(re.sub(r"\s+", "", text)) if source == "web_zh" else text.split()


def join(tokens: list[str], source: str) -> str:
    return "".join(tokens) if source == "web_zh" else " ".join(tokens)


def datatrove_config() -> Any:
    """FineWeb's 14 x 8 with sha1 shingle hashes: datatrove 0.10's xxhash path passes ``str`` to xxhash 4,
    which refuses it."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(hash_config=HashConfig(hash_fc="sha1"))


# -- signatures per second per core ---------------------------------------------------------------------------
def _python_shingles(text: str, spec: ShingleSpec) -> list[bytes]:
    return [" ".join(s).encode() for s in ref_shingles(text, spec)]


def signature_speed(docs: dict[str, list[str]]) -> list[Row]:
    from datasketch import MinHash
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    picked = {name: texts[: SIG_DOCS // 3] for name, texts in docs.items()}
    n = sum(len(t) for t in picked.values())
    mb = sum(len(x.encode()) for t in picked.values() for x in t) / 1e6

    def ours() -> None:
        for name, texts in picked.items():
            spec = CFG.shingle_spec(DOMAINS[name])
            for i in range(0, len(texts), 256):
                signatures(pa.array(texts[i : i + 256]), spec, CFG.num_perm, CFG.seed)

    def datasketch_batch(texts: dict[str, list[str]]) -> None:
        for name, group in texts.items():
            spec = CFG.shingle_spec(DOMAINS[name])
            for text in group:
                m = MinHash(num_perm=CFG.num_perm)
                m.update_batch(_python_shingles(text, spec))

    def datasketch_each(texts: dict[str, list[str]]) -> None:
        for name, group in texts.items():
            spec = CFG.shingle_spec(DOMAINS[name])
            for text in group:
                m = MinHash(num_perm=CFG.num_perm)
                for shingle in _python_shingles(text, spec):
                    m.update(shingle)

    few = {name: texts[:50] for name, texts in picked.items()}
    n_few = sum(len(t) for t in few.values())
    datatrove = MinhashDedupSignature(output_folder=tempfile.mkdtemp(), config=datatrove_config())

    def datatrove_sigs() -> None:
        for texts in few.values():
            for text in texts:
                shingles = datatrove.get_shingles(text)
                if shingles.size:
                    datatrove.get_signature(shingles)

    ours()  # warm up (pyarrow's Unicode tables, the permutations)
    ours_s = min(timed(ours)[0] for _ in range(3))  # best of 3 (and 2): the machine is shared
    batch_s = min(timed(lambda: datasketch_batch(picked))[0] for _ in range(2))
    each_s, _ = timed(lambda: datasketch_each(few))
    dt_s, _ = timed(datatrove_sigs)  # on the first 50 of each domain, as per-shingle datasketch
    what = f"MinHash signatures, 1 core, {n:,} docs ({mb:.0f} MB code+en+zh), 112 perms"
    return [
        Row(what, n / ours_s, "datasketch MinHash.update_batch", n / batch_s, "docs/s"),
        Row(what, n / ours_s, "datasketch MinHash.update (per shingle)", n_few / each_s, "docs/s"),
        Row(what, n / ours_s, "datatrove MinhashDedupSignature", n_few / dt_s, "docs/s"),
    ]


# -- accuracy on a labelled set -------------------------------------------------------------------------------
def _dissimilar(texts: list[str], spec: ShingleSpec, limit: int) -> list[str]:
    """Up to ``limit`` texts, no two of which share more than Jaccard 0.3 (exactly, via a shingle index)."""
    index: dict[tuple[str, ...], list[int]] = {}
    kept: list[tuple[str, int]] = []
    for text in texts:
        sh = ref_shingles(text, spec)
        if len(sh) < 50:
            continue
        overlap: dict[int, int] = {}
        for s in sh:
            for j in index.get(s, ()):
                overlap[j] = overlap.get(j, 0) + 1
        if all(c / (len(sh) + kept[j][1] - c) <= 0.3 for j, c in overlap.items()):
            for s in sh:
                index.setdefault(s, []).append(len(kept))
            kept.append((text, len(sh)))
            if len(kept) == limit:
                break
    return [t for t, _ in kept]


def labelled_set(docs: dict[str, list[str]]) -> list[tuple[dict, dict, str, float]]:
    """(original, edited copy, source, true Jaccard) for light, medium and heavy edits of every kind."""
    rng = random.Random(0)
    kinds, scale = ["insert", "delete", "reorder", "boilerplate"], {"insert": 0.2, "delete": 0.2, "reorder": 0.5}
    pairs = []
    for source, texts in docs.items():
        spec = CFG.shingle_spec(DOMAINS[source])
        cut = [join(units(t, source)[:600], source) for t in texts]
        bases = _dissimilar(cut, spec, ACCURACY_BASES)
        filler = [u for t in bases for u in units(t, source)]
        for n, text in enumerate(bases):
            kind, level = kinds[n % 4], (0.06, 0.06, 0.4, 1.0, 1.0)[(n // 4) % 5]
            p = scale.get(kind, 2.0) * level * (0.5 + rng.random())
            edited = join(edit_tokens(units(text, source), kind, p, filler, rng), source)
            a, b = ref_shingles(text, spec), ref_shingles(edited, spec)
            rows = [
                doc_row(source=source, kind="text", url=f"{n}/{v}", text=t) for v, t in (("a", text), ("b", edited))
            ]
            pairs.append((rows[0], rows[1], source, len(a & b) / len(a | b)))
    return pairs


def _datasketch_together(pairs: list[tuple[dict, dict, str, float]]) -> list[bool]:
    from datasketch import MinHash, MinHashLSH

    together = []
    for source in DOMAINS:
        spec = CFG.shingle_spec(DOMAINS[source])
        group = [(a, b) for a, b, s, _ in pairs if s == source]
        lsh = MinHashLSH(threshold=CFG.threshold, num_perm=CFG.num_perm)
        sketches = {}
        for a, b in group:
            for row in (a, b):
                m = MinHash(num_perm=CFG.num_perm)
                m.update_batch(_python_shingles(row["text"], spec))
                sketches[row["id"]] = m
            lsh.insert(a["id"], sketches[a["id"]])
        together += [a["id"] in lsh.query(sketches[b["id"]]) for a, b in group]
    return together


def accuracy(docs: dict[str, list[str]]) -> list[Row]:
    pairs = labelled_set(docs)
    rows = [r for a, b, _, _ in pairs for r in (a, b)]
    ds = ray.data.from_arrow([rows_to_table(rows[i::8]) for i in range(8)])
    sigs = ds.map_batches(signature_rows, fn_kwargs={"cfg": CFG, "domain_of": DOMAINS}, batch_format="pyarrow")
    found = find_near_duplicates(sigs.materialize(), CFG)
    kept = dict(zip(found["id"].to_pylist(), found["kept"].to_pylist(), strict=True))
    ours = [kept.get(a["id"], a["id"]) == kept.get(b["id"], b["id"]) for a, b, _, _ in pairs]
    peer = _datasketch_together(pairs)
    out = []
    for source in DOMAINS:
        idx = [i for i, p in enumerate(pairs) if p[2] == source]
        high = [i for i in idx if pairs[i][3] >= 0.85]
        low = [i for i in idx if pairs[i][3] <= 0.5]
        mid = len(idx) - len(high) - len(low)
        name = f"{source}: {len(idx)} labelled pairs ({len(high)} at J>=0.85, {len(low)} at J<=0.5, {mid} between)"
        out.append(
            Row(
                f"{name}: recall at J>=0.85",
                sum(ours[i] for i in high) / len(high),
                "datasketch MinHashLSH(0.7)",
                sum(peer[i] for i in high) / len(high),
                "share",
            )
        )
        out.append(Row(f"{name}: false positives at J<=0.5", sum(ours[i] for i in low) / len(low),
                       "datasketch MinHashLSH(0.7)", sum(peer[i] for i in low) / len(low), "share",
                       higher_is_better=False))  # fmt: skip
    return out


# -- end to end ------------------------------------------------------------------------------------------------
def synthetic_corpus(docs: dict[str, list[str]], size: int) -> list[dict]:
    """``size`` documents: 70% real chunks (~120 words, 300 Chinese characters), 30% light edits of them."""
    rng = random.Random(size)
    chunks = []
    for source, texts in docs.items():
        step = 300 if source == "web_zh" else 120
        for text in texts:
            toks = units(text, source)
            chunks += [(source, toks[i : i + step]) for i in range(0, len(toks) - step // 2, step)]
    rng.shuffle(chunks)
    originals = chunks[: int(size * 0.7)]
    filler = [u for _, toks in originals[:200] for u in toks]
    rows = [doc_row(source=s, kind="text", url=f"o{i}", text=join(t, s)) for i, (s, t) in enumerate(originals)]
    for i in range(size - len(rows)):
        source, toks = originals[rng.randrange(len(originals))]
        kind = ("insert", "delete", "boilerplate")[i % 3]
        edited = edit_tokens(toks, kind, 0.03 + 0.05 * rng.random(), filler, rng)
        rows.append(doc_row(source=source, kind="text", url=f"c{i}", text=join(edited, source)))
    return rows


def end_to_end(rows: list[dict], cpus: int) -> tuple[float, float, int, int]:
    """Wall seconds, peak MB of the process tree, documents dropped, lines removed."""
    ds = ray.data.from_arrow([rows_to_table(rows[i :: cpus * 16]) for i in range(cpus * 16)]).materialize()
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
    ours = set(found["id"].to_pylist())
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


def components_limit() -> list[Row]:
    """The driver's one job: components of an edge list (clusters of 5 plus 1% long-range edges)."""
    rng = np.random.default_rng(0)
    n = CC_EDGES * 5 // 4
    nodes = np.arange(n)
    a = nodes[nodes % 5 != 0]
    b = a - a % 5
    extra = CC_EDGES - len(a)
    a = np.concatenate([a, rng.integers(0, n, extra)])
    b = np.concatenate([b, rng.integers(0, n, extra)])
    tracemalloc.start()
    seconds, labels = timed(lambda: components(a, b, n))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert labels.max() < n
    return [
        Row(f"connected components in the driver, {CC_EDGES:,} edges, {n:,} nodes: time", seconds,
            "-", None, "s", higher_is_better=False),
        Row("  the same: peak memory beyond the edge arrays", peak / 2**20, "-", None, "MB", higher_is_better=False),
    ]  # fmt: skip


def run() -> list[Row]:
    docs = sample_documents(limit_per_domain=6_000)
    rows = signature_speed(docs)
    with ray_session(2) as cpus:
        rows += accuracy(docs)
        sizes = {}
        for size in SCALES:
            corpus = synthetic_corpus(docs, size)
            wall, peak_mb, dropped, lines = end_to_end(corpus, cpus)
            sizes[size] = wall
            what = f"near-dedup stage, {size // 1000}k docs ({cpus} workers; {dropped:,} dropped, {lines:,} lines)"
            rows.append(Row(f"{what}: wall", wall, "-", None, "s", higher_is_better=False))
            rows.append(Row(f"{what}: peak memory (process tree)", peak_mb, "-", None, "MB", higher_is_better=False))
        small, large = SCALES[0], SCALES[-1]
        rows.append(Row(f"cost growth {small // 1000}k -> {large // 1000}k docs (x{large / small:.0f} docs)",
                        sizes[large] / sizes[small], "-", None, "x", higher_is_better=False))  # fmt: skip
        rows += agreement(synthetic_corpus(docs, SCALES[0]), cpus)
    rows += components_limit()
    return rows

"""Near-duplicate removal on real Ray and real text (licences, Python's documentation and standard library).

The accuracy test measures recall and false positives on ``dataengine.dedup.labelled``'s pairs (one
controlled edit per base document, true Jaccard computed exactly by a plain-Python shingler); the signature
test compares with a plain-Python MinHash built on that shingler.
"""

from __future__ import annotations

import random
import re
from pydoc_data.topics import topics

import numpy as np
import pyarrow as pa
import pytest
import ray.data
import xxhash

from dataengine.config import LineDedupConfig, NearDedupConfig, ShingleSpec, SourceConfig
from dataengine.dedup.components import connected_components, local_components
from dataengine.dedup.labelled import EDITS, LabelledPair, accuracy, labelled_pairs, ref_shingles
from dataengine.dedup.lines import STAGE as LINE_STAGE
from dataengine.dedup.lines import line_dedup, pairs_in
from dataengine.dedup.lsh import band_buckets, find_near_duplicates, sig_matrix
from dataengine.dedup.minhash import CHAR_MULT, NGRAM_WEIGHTS, estimated_jaccard, permutations, signatures
from dataengine.dedup.near import near_dedup, signature_rows
from dataengine.schema import CODE_SPANS, doc_row, rows_to_table
from tests.corpus import LICENSES, STDLIB, ZH_SENTENCES

M64 = 2**64 - 1
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="git", paths=[]),
]
DOMAINS = {s.name: s.filter_domain for s in SOURCES}


# -- a straightforward reference -----------------------------------------------------------------------------
def fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def ref_unit_hash(unit: str, spec: ShingleSpec) -> int:
    if spec.unit != "char":
        return xxhash.xxh3_64_intdigest(unit.encode())
    packed = int.from_bytes(unit.encode().ljust(4, b"\0"), "big")
    return fmix64((packed * int(CHAR_MULT) + 1) & M64)


def ref_signature(text: str, spec: ShingleSpec, num_perm: int, seed: int) -> list[int]:
    hashes = []
    for shingle in ref_shingles(text, spec):
        acc = sum(ref_unit_hash(u, spec) * int(w) for u, w in zip(shingle, NGRAM_WEIGHTS, strict=False)) & M64
        hashes.append(fmix64(acc) >> 32)
    a, b = permutations(num_perm, seed)
    return [min((int(ai) * x + int(bi)) & 0xFFFFFFFF for x in hashes) for ai, bi in zip(a, b, strict=True)]


def real_texts() -> list[str]:
    lic = [p.read_text(errors="replace")[:3000] for p in sorted(LICENSES.iterdir()) if not p.is_symlink()]
    code = [(STDLIB / name).read_text()[:3000] for name in ("json/decoder.py", "textwrap.py", "bisect.py")]
    zh = ["\n".join(ZH_SENTENCES[i : i + 4]) + " ２０２６年，ＡＢＣ。" for i in range(0, 12, 4)]
    return lic[:6] + code + zh + ["", "only four words here", "!!! ???"]


@pytest.mark.parametrize(
    "spec", [ShingleSpec(), ShingleSpec(unit="char", n=5), ShingleSpec(unit="line", n=2, lowercase=False)]
)
def test_signatures_equal_a_straightforward_reference(spec: ShingleSpec) -> None:
    texts = real_texts()
    sigs, has = signatures(pa.array(texts), spec, num_perm=16, seed=3)
    expected = [ref_signature(t, spec, 16, 3) for t in texts if ref_shingles(t, spec)]
    assert has.tolist() == [bool(ref_shingles(t, spec)) for t in texts]
    assert sigs.tolist() == expected


def test_in_memory_components_label_by_the_smallest_node() -> None:
    a, b = np.array([5, 3, 3, 7, 8]), np.array([4, 4, 6, 6, 9])
    assert local_components(a, b, 10).tolist() == [0, 1, 2, 3, 3, 3, 3, 3, 8, 8]


def _graph() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids in shuffled order, and edges: an 80-node chain, a 30-leaf star around a middle id, random small
    clusters, repeated and reversed edges, self-loops: components that need several rounds."""
    rng = random.Random(5)
    ids = [f"doc-{rng.getrandbits(40):010x}" for _ in range(160)]
    a, b = list(range(79)), list(range(1, 80))  # chain 0-1-...-79
    a += [100] * 30 + list(range(110, 115))
    b += list(range(80, 110)) + [100] * 5  # star: the centre is neither the smallest nor the largest id
    for _ in range(30):
        x = rng.randrange(115, 160)
        a.append(x)
        b.append(min(159, x + rng.randrange(1, 4)))
    a += [5, 17, 130]
    b += [4, 17, 131]
    return ids, np.array(a), np.array(b)


def test_distributed_components_equal_the_reference(ray_local: None) -> None:
    ids, a, b = _graph()
    order = np.argsort(ids)  # index order = id order, as the reference labels by the smallest index
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    nodes = np.unique(np.concatenate([a, b]))
    labels = local_components(rank[a], rank[b], len(ids))  # the in-memory algorithm as reference
    expected = {ids[n]: ids[order[labels[rank[n]]]] for n in nodes if labels[rank[n]] != rank[n]}
    edges = pa.table({"a": [ids[i] for i in a], "b": [ids[i] for i in b]})
    results = []
    for blocks, per_partition in ((1, 40), (3, 40), (2, 10_000)):  # many partitions, then one
        ds = ray.data.from_arrow([edges.slice(i * len(a) // blocks, len(a) // blocks + 1) for i in range(blocks)])
        found, rounds = connected_components(ds.materialize(), per_partition)
        rows = found.take_all()
        assert {r["id"]: r["kept"] for r in rows} == expected and len(rows) == len(expected)
        assert rounds >= 3 if per_partition == 40 else rounds == 1  # the chain spans partitions: several rounds
        results.append(sorted((r["id"], r["kept"]) for r in rows))
    assert results[0] == results[1] == results[2]


def test_pairs_in_equals_a_set() -> None:
    rng = np.random.default_rng(0)
    rows, keys = rng.integers(0, 20, 500), rng.integers(0, 30, 500).astype(np.uint64)
    set_rows, set_keys = rng.integers(0, 20, 80), rng.integers(0, 30, 80).astype(np.uint64)
    members = set(zip(set_rows.tolist(), set_keys.tolist(), strict=True))
    expected = [(r, k) in members for r, k in zip(rows.tolist(), keys.tolist(), strict=True)]
    assert pairs_in(rows, keys, set_rows, set_keys).tolist() == expected


# -- accuracy on a labelled set ------------------------------------------------------------------------------
def _chunks(text: str, size: int) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size) if len(words[i : i + size]) >= 100]


def _texts() -> dict[str, list[str]]:
    """Chunks of Python's documentation and licences (English), and of standard-library modules (code)."""
    en = [c for k in sorted(topics) for c in _chunks(topics[k], 400)]
    en += [c for p in sorted(LICENSES.iterdir()) if not p.is_symlink() for c in _chunks(p.read_text(), 400)]
    files = sorted(p for p in STDLIB.rglob("*.py") if "test" not in p.as_posix() and "site-packages" not in str(p))
    code = [c for p in files[:500] for c in _chunks(p.read_text(errors="replace"), 600)[:1]]
    return {"web_en": en, "code": code}


def _dataset(rows: list[dict], blocks: int) -> ray.data.Dataset:
    return ray.data.from_arrow([rows_to_table(rows[i::blocks]) for i in range(blocks)])


def _duplicates(rows: list[dict], cfg: NearDedupConfig, blocks: int = 4) -> dict[str, tuple[str, float]]:
    sigs = _dataset(rows, blocks).map_batches(
        signature_rows, fn_kwargs={"cfg": cfg, "domain_of": DOMAINS}, batch_format="pyarrow"
    )
    found = find_near_duplicates(sigs.materialize(), cfg)
    return {r["id"]: (r["kept"], r["jaccard"]) for r in found.take_all()}


def _rows(pairs: list[LabelledPair]) -> list[tuple[dict, dict]]:
    return [
        tuple(
            doc_row(source=p.source, kind="text", url=f"{n}/{v}", text=t)
            for v, t in (("a", p.original), ("b", p.edited))
        )
        for n, p in enumerate(pairs)
    ]


@pytest.fixture(scope="module")
def labelled(ray_local: None) -> tuple[list, list, dict[str, tuple[str, float]]]:
    pairs = labelled_pairs(_texts(), {"web_en": ShingleSpec(), "code": ShingleSpec()}, per_source=10_000)
    rows = _rows(pairs)
    flat = [r for pair in rows for r in pair]
    random.Random(1).shuffle(flat)
    return pairs, rows, _duplicates(flat, NearDedupConfig(), blocks=7)


def test_recall_and_false_positives_against_exact_jaccard(labelled: tuple) -> None:
    pairs, rows, dups = labelled
    together = [dups.get(a["id"], (a["id"],))[0] == dups.get(b["id"], (b["id"],))[0] for a, b in rows]
    acc = accuracy(pairs, together)
    assert acc.high >= 150 and acc.low >= 150
    assert acc.recall >= 0.95
    assert acc.false_positives <= 0.01
    for kind in EDITS:  # every edit kind is represented at both ends
        assert any(p.kind == kind and p.jaccard >= 0.85 for p in pairs)
        assert any(p.kind == kind and p.jaccard <= 0.5 for p in pairs)


def test_same_duplicates_whatever_the_blocks_and_row_order(labelled: tuple) -> None:
    _, rows, dups = labelled
    flat = [r for pair in rows for r in pair]
    assert _duplicates(flat, NearDedupConfig(), blocks=1) == dups  # the fixture's rows were shuffled into 7 blocks


def reference_near_duplicates(rows: list[dict], cfg: NearDedupConfig) -> dict[str, tuple[str, float]]:
    """In memory: the same signatures and bands, each bucket's members paired with its smallest id, pairs verified
    at the threshold, union-find components, the smallest id of each kept: ``{id: (kept, jaccard)}``."""
    table = signature_rows(rows_to_table(rows), cfg, DOMAINS)
    ids, sigs = table["id"].to_pylist(), sig_matrix(table["sig"], cfg.num_perm)
    sig_of = dict(zip(ids, sigs, strict=True))
    buckets: dict[int, list[str]] = {}
    for doc, row in zip(ids, band_buckets(sigs, table["source"].to_pylist(), cfg), strict=True):
        for bucket in row.tolist():
            buckets.setdefault(bucket, []).append(doc)
    parent = {doc: doc for doc in ids}

    def root(doc: str) -> str:
        while parent[doc] != doc:
            doc = parent[doc]
        return doc

    for members in buckets.values():
        smallest = min(members)
        for doc in members:
            if doc != smallest and estimated_jaccard(sig_of[doc], sig_of[smallest]) >= cfg.threshold:
                low, high = sorted((root(doc), root(smallest)))
                parent[high] = low
    kept = {doc: root(doc) for doc in ids}
    return {d: (k, float(estimated_jaccard(sig_of[d], sig_of[k]))) for d, k in kept.items() if d != k}


def test_near_duplicates_equal_an_in_memory_reference(labelled: tuple) -> None:
    _, rows, dups = labelled
    expected = reference_near_duplicates([r for pair in rows for r in pair], NearDedupConfig())
    assert len(expected) > 100
    assert {d: k for d, (k, _) in dups.items()} == {d: k for d, (k, _) in expected.items()}
    assert all(abs(dups[d][1] - jac) < 1e-6 for d, (_, jac) in expected.items())


# -- the stage as the build runs it --------------------------------------------------------------------------
def _words(n: int, seed: int) -> str:
    vocab = topics["assignment"].split()
    rng = random.Random(seed)
    return " ".join(rng.choice(vocab) for _ in range(n))


def test_the_smallest_id_is_kept_and_scope_separates_sources(ray_local: None) -> None:
    text = _words(400, 1)
    rows = [
        doc_row(source="web_en", kind="text", url="x", text=text),
        doc_row(source="code", kind="text", url="y", text=text + " one extra tail of words here"),
        doc_row(source="web_en", kind="text", url="z", text="Another header line. " + text),
        doc_row(source="web_en", kind="text", url="other", text=_words(400, 2)),
    ]
    ids = sorted(r["id"] for r in rows[:3])
    every = _duplicates(rows, NearDedupConfig())
    assert set(every) == set(ids[1:]) and {kept for kept, _ in every.values()} == {ids[0]}
    assert all(0.85 <= j <= 1.0 for _, j in every.values())

    per_source = _duplicates(rows, NearDedupConfig(scope="source"))
    web = sorted(r["id"] for r in rows[:3] if r["source"] == "web_en")
    assert per_source == {web[1]: (web[0], per_source[web[1]][1])}


def test_stage_removes_boilerplate_lines_then_rejects_near_duplicates(ray_local: None) -> None:
    footer = ["Copyright 2026 Example Docs. All rights reserved.", "Previous | Next | Index"]
    rows = []
    for i in range(12):
        body = _words(120, 10 + i)
        rows.append(doc_row(source="web_en", kind="text", url=f"p{i}", text="\n".join([body, *footer])))
    rows.append(doc_row(source="web_en", kind="text", url="nav", text="\n".join(footer)))
    rows.append(doc_row(source="web_en", kind="text", url="copy", text=_words(120, 10) + "\nPage 3"))
    code = "\n".join(["def f(x):", "    return x", *footer])
    rows += [doc_row(source="code", kind="text", url=f"c{i}.py", text=code + f"\n# {i}") for i in range(12)]
    cfg = NearDedupConfig(lines=LineDedupConfig(min_docs=10))
    out, removed = near_dedup(_dataset(rows, 3), cfg, SOURCES)
    result = {r["url"]: r for r in out.take_all()}

    assert removed["web_en"] == {"lines": 26, "bytes": 13 * sum(len(f) for f in footer)}
    assert "code" not in removed  # code keeps its lines: `return x` recurs in every file
    assert result["p1"]["text"] == _words(120, 11) and result["p1"]["reject"] is None
    assert result["nav"]["reject"] == f"{LINE_STAGE}:only_boilerplate"
    kept, dropped = sorted([result["p0"], result["copy"]], key=lambda r: r["id"])
    assert kept["reject"] is None and kept["text"] in (_words(120, 10), _words(120, 10) + "\nPage 3")
    assert dropped["reject"] == "near_dedup:duplicate"
    assert re.fullmatch(rf"kept={kept['id']} jaccard=0\.9\d|kept={kept['id']} jaccard=1\.00", dropped["reject_detail"])
    assert result["c0.py"]["text"].endswith(footer[1] + "\n# 0")


def test_line_dedup_is_the_same_whatever_the_blocks(ray_local: None) -> None:
    footer = "Previous | Next | Index"
    rows = [
        doc_row(source="web_en", kind="text", url=f"p{i}", text=f"{_words(30, i)}\n{footer}\n{footer}")
        for i in range(15)
    ]
    rows.append(doc_row(source="web_en", kind="text", url="rejected", text=footer, reject="min_length:too_short"))
    rows.append(doc_row(source="code", kind="text", url="c.py", text=f"x = 1\n{footer}"))
    cfg = LineDedupConfig(min_docs=10)
    results = []
    for blocks in (1, 3):
        out, removed = line_dedup(_dataset(rows, blocks).materialize(), DOMAINS, cfg)
        assert removed == {"web_en": {"lines": 30, "bytes": 30 * len(footer)}, "web_zh": {"lines": 0, "bytes": 0}}
        by_url = {r["url"]: r for r in out.take_all()}
        assert by_url["p3"]["text"] == _words(30, 3) and by_url["rejected"]["text"] == footer
        assert by_url["c.py"]["text"].endswith(footer)
        results.append(sorted((r["id"], r["text"], r["reject"]) for r in by_url.values()))
    assert results[0] == results[1]


def test_line_dedup_keeps_code_lines_and_moves_the_code_spans(ray_local: None) -> None:
    """Boilerplate lines go, a repeated line inside a code block stays, and the spans still point at the code."""
    from dataengine.extract.spans import spans_of

    footer, code = "Previous | Next | Index", "def f(x):\n    return x"
    rows = []
    for i in range(12):
        text = f"{footer}\n{_words(20, i)}\n{code}\n{footer}\nreturn x"
        start = text.index(code)
        row = doc_row(source="web_en", kind="text", url=f"p{i}", text=text)
        row["code_spans"], row["code_share"] = [{"start": start, "end": start + len(code)}], len(code) / len(text)
        rows.append(row)
    out, removed = line_dedup(_dataset(rows, 2).materialize(), DOMAINS, LineDedupConfig(min_docs=10))
    assert removed["web_en"]["lines"] == 12 * 3  # the footer twice and the prose "return x"; not the code's
    for r in out.take_all():
        [[(start, end)]] = spans_of(pa.array([r["code_spans"]], type=CODE_SPANS))
        assert r["text"][start:end] == code and r["text"].endswith(code) and footer not in r["text"]
        assert r["code_share"] == pytest.approx(len(code) / len(r["text"]))

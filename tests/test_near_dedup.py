"""Near-duplicate removal on real Ray and real text (licences, Python's documentation and standard library).

The accuracy test builds a labelled set: each base document gets one copy with a controlled edit (words
inserted or deleted, blocks reordered, boilerplate added) and the pair's true Jaccard is computed exactly
from a plain-Python shingler, independent of the vectorised one.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pydoc_data.topics import topics

import numpy as np
import pyarrow as pa
import pytest
import ray.data
import xxhash

from dataengine.config import LineDedupConfig, NearDedupConfig, ShingleSpec, SourceConfig
from dataengine.dedup.lines import STAGE as LINE_STAGE
from dataengine.dedup.lsh import components, find_near_duplicates
from dataengine.dedup.minhash import CHAR_MULT, NGRAM_WEIGHTS, permutations, signatures
from dataengine.dedup.near import near_dedup, signature_rows
from dataengine.schema import doc_row, rows_to_table
from tests.corpus import LICENSES, STDLIB, ZH_SENTENCES

M64 = 2**64 - 1
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="git", paths=[]),
]
DOMAINS = {s.name: s.filter_domain for s in SOURCES}


# -- a straightforward reference -----------------------------------------------------------------------------
def ref_units(text: str, spec: ShingleSpec) -> list[str]:
    if spec.lowercase:
        text = text.lower()
    if spec.normalise_digits:
        text = re.sub(r"\d+", "0", text)
    if spec.strip_punctuation:
        text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    if spec.unit == "word":
        return text.split()
    if spec.unit == "char":
        return list(re.sub(r"\s+", "", text))
    return [u for u in (re.sub(r"\s+", " ", line).strip() for line in text.split("\n")) if u]


def ref_shingles(text: str, spec: ShingleSpec) -> set[tuple[str, ...]]:
    units, n = ref_units(text, spec), spec.n
    if len(units) < n:
        return {tuple(units)} if units else set()
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


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
    return [min(((int(ai) * x + int(bi)) & M64) >> 32 for x in hashes) for ai, bi in zip(a, b, strict=True)]


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


def test_components_label_by_the_smallest_node() -> None:
    a, b = np.array([5, 3, 3, 7, 8]), np.array([4, 4, 6, 6, 9])
    assert components(a, b, 10).tolist() == [0, 1, 2, 3, 3, 3, 3, 3, 8, 8]


# -- accuracy on a labelled set ------------------------------------------------------------------------------
def _chunks(text: str, size: int) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size) if len(words[i : i + size]) >= 100]


def _bases() -> list[tuple[str, str]]:
    """(source, text) documents no two of which share more than Jaccard 0.3 (checked exactly)."""
    docs = [("web_en", c) for k in sorted(topics) for c in _chunks(topics[k], 400)]
    docs += [
        ("web_en", c) for p in sorted(LICENSES.iterdir()) if not p.is_symlink() for c in _chunks(p.read_text(), 400)
    ]
    files = sorted(p for p in STDLIB.rglob("*.py") if "test" not in p.as_posix() and "site-packages" not in str(p))
    docs += [("code", c) for p in files[:500] for c in _chunks(p.read_text(errors="replace"), 600)[:1]]
    spec, index, kept = ShingleSpec(), {}, []
    for source, text in docs:
        sh = ref_shingles(text, spec)
        overlap: dict[int, int] = {}
        for s in sh:
            for j in index.get(s, ()):
                overlap[j] = overlap.get(j, 0) + 1
        if all(c / (len(sh) + kept[j][2] - c) <= 0.3 for j, c in overlap.items()):
            for s in sh:
                index.setdefault(s, []).append(len(kept))
            kept.append((source, text, len(sh)))
    return [(s, t) for s, t, _ in kept]


def edit_tokens(words: list[str], kind: str, p: float, filler: list[str], rng: random.Random) -> list[str]:
    words, k = list(words), int(p * len(words))
    if kind == "insert":
        for _ in range(k):
            words.insert(rng.randrange(len(words) + 1), rng.choice(filler))
    elif kind == "delete":
        for _ in range(k):
            del words[rng.randrange(len(words))]
    elif kind == "reorder":
        blocks = [words[i : i + 6] for i in range(0, len(words), 6)]
        moved = rng.sample(range(len(blocks)), min(len(blocks), max(2, round(2 * p * len(blocks)))))
        order = rng.sample(moved, len(moved))
        blocks = [blocks[order[moved.index(i)]] if i in moved else b for i, b in enumerate(blocks)]
        words = [w for b in blocks for w in b]
    else:  # boilerplate: a header and a footer taken from other documents
        start = rng.randrange(len(filler) - k - 1)
        words = filler[start : start + k // 2] + words + filler[start + k // 2 : start + k]
    return words


def labelled_pairs() -> list[tuple[dict, dict, str, float]]:
    """(original row, edited row, edit kind, true Jaccard); light, medium and heavy edits of every kind."""
    rng, spec = random.Random(0), ShingleSpec()
    bases = _bases()
    filler = " ".join(t for _, t in bases).split()
    kinds, scale = ["insert", "delete", "reorder", "boilerplate"], {"insert": 0.2, "delete": 0.2, "reorder": 0.5}
    pairs = []
    for n, (source, text) in enumerate(bases):
        kind = kinds[n % 4]
        level = (0.06, 0.06, 0.4, 1.0, 1.0)[(n // 4) % 5]
        edited = " ".join(
            edit_tokens(text.split(), kind, scale.get(kind, 2.0) * level * (0.5 + rng.random()), filler, rng)
        )
        a, b = ref_shingles(text, spec), ref_shingles(edited, spec)
        rows = [doc_row(source=source, kind="text", url=f"{n}/{v}", text=t) for v, t in (("a", text), ("b", edited))]
        pairs.append((rows[0], rows[1], kind, len(a & b) / len(a | b)))
    return pairs


def _dataset(rows: list[dict], blocks: int) -> ray.data.Dataset:
    return ray.data.from_arrow([rows_to_table(rows[i::blocks]) for i in range(blocks)])


def _duplicates(rows: list[dict], cfg: NearDedupConfig, blocks: int = 4) -> dict[str, tuple[str, float]]:
    sigs = _dataset(rows, blocks).map_batches(
        signature_rows, fn_kwargs={"cfg": cfg, "domain_of": DOMAINS}, batch_format="pyarrow"
    )
    found = find_near_duplicates(sigs.materialize(), cfg)
    return {r["id"]: (r["kept"], r["jaccard"]) for r in found.to_pylist()}


@pytest.fixture(scope="module")
def labelled(ray_local: None) -> tuple[list, dict[str, tuple[str, float]]]:
    pairs = labelled_pairs()
    rows = [r for a, b, _, _ in pairs for r in (a, b)]
    random.Random(1).shuffle(rows)
    return pairs, _duplicates(rows, NearDedupConfig(), blocks=7)


def test_recall_and_false_positives_against_exact_jaccard(labelled: tuple) -> None:
    pairs, dups = labelled

    def together(a: dict, b: dict) -> bool:
        kept_a = dups.get(a["id"], (a["id"], 1.0))[0]
        return kept_a == dups.get(b["id"], (b["id"], 1.0))[0]

    high = [together(a, b) for a, b, _, j in pairs if j >= 0.85]
    low = [together(a, b) for a, b, _, j in pairs if j <= 0.5]
    assert len(high) >= 150 and len(low) >= 150
    assert sum(high) / len(high) >= 0.95
    assert sum(low) / len(low) <= 0.01
    for kind in ("insert", "delete", "reorder", "boilerplate"):  # every edit kind is represented at both ends
        assert any(k == kind and j >= 0.85 for _, _, k, j in pairs)
        assert any(k == kind and j <= 0.5 for _, _, k, j in pairs)


def test_same_duplicates_whatever_the_blocks_and_row_order(labelled: tuple) -> None:
    pairs, dups = labelled
    rows = [r for a, b, _, _ in pairs for r in (a, b)]
    assert _duplicates(rows, NearDedupConfig(), blocks=1) == dups  # the fixture's rows were shuffled into 7 blocks


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

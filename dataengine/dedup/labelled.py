"""Labelled near-duplicate pairs, for measuring MinHash-LSH settings against exact Jaccard.

Each base document gets one copy with a controlled edit (units inserted or deleted, blocks reordered,
boilerplate added around it), light, medium or heavy; the pair's true Jaccard is computed exactly by a
plain-Python shingler that shares no code with the vectorised one.  Bases are chosen so that no two share more
than Jaccard 0.3, so every pair's label holds for the whole set: recall is the share of pairs at Jaccard >= 0.85
found together, false positives the share of pairs at <= 0.5 found together.  Used by the tests and
``python -m bench dedup``; point ``labelled_pairs`` at your own documents and settings to measure them.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from dataengine.config import ShingleSpec

EDITS = ("insert", "delete", "reorder", "boilerplate")
_LEVELS = (0.06, 0.06, 0.4, 1.0, 1.0)  # light, light, medium, heavy, heavy: both ends of the threshold
_SCALE = {"insert": 0.2, "delete": 0.2, "reorder": 0.5, "boilerplate": 2.0}


@dataclass(frozen=True)
class LabelledPair:
    source: str
    kind: str  # the edit
    original: str
    edited: str
    jaccard: float  # exact, of the two texts' shingle sets


def ref_units(text: str, spec: ShingleSpec) -> list[str]:
    """The spec's units by the plain definitions (``str.lower``, ``\\d+``, Unicode categories, ``str.split``)."""
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
    """The set of n-grams of units (a text shorter than n is one shingle of all its units)."""
    units, n = ref_units(text, spec), spec.n
    if len(units) < n:
        return {tuple(units)} if units else set()
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


def jaccard(a: str, b: str, spec: ShingleSpec) -> float:
    sa, sb = ref_shingles(a, spec), ref_shingles(b, spec)
    return len(sa & sb) / max(1, len(sa | sb))


def split(text: str, spec: ShingleSpec) -> list[str]:
    """What an edit works on: characters for character shingles, whitespace-separated words otherwise."""
    return list(re.sub(r"\s+", "", text)) if spec.unit == "char" else text.split()


def join(units: list[str], spec: ShingleSpec) -> str:
    return "".join(units) if spec.unit == "char" else " ".join(units)


def edit(units: list[str], kind: str, p: float, filler: list[str], rng: random.Random) -> list[str]:
    """A copy of ``units`` with an edit of strength ``p`` (a share of the units; filler supplies new ones)."""
    units, k = list(units), int(p * len(units))
    if kind == "insert":
        for _ in range(k):
            units.insert(rng.randrange(len(units) + 1), rng.choice(filler))
    elif kind == "delete":
        for _ in range(k):
            del units[rng.randrange(len(units))]
    elif kind == "reorder":
        blocks = [units[i : i + 6] for i in range(0, len(units), 6)]
        moved = rng.sample(range(len(blocks)), min(len(blocks), max(2, round(2 * p * len(blocks)))))
        order = rng.sample(moved, len(moved))
        blocks = [blocks[order[moved.index(i)]] if i in moved else b for i, b in enumerate(blocks)]
        units = [u for b in blocks for u in b]
    elif kind == "boilerplate":  # a header and a footer taken from elsewhere
        start = rng.randrange(len(filler) - k - 1)
        units = filler[start : start + k // 2] + units + filler[start + k // 2 : start + k]
    else:
        raise ValueError(f"unknown edit {kind!r}; known: {', '.join(EDITS)}")
    return units


def dissimilar(texts: Iterable[str], spec: ShingleSpec, limit: int, min_shingles: int = 50) -> list[str]:
    """Up to ``limit`` texts with ``min_shingles`` or more, no two sharing more than Jaccard 0.3 (exactly,
    through an index of shingles)."""
    index: dict[tuple[str, ...], list[int]] = {}
    kept: list[tuple[str, int]] = []
    for text in texts:
        sh = ref_shingles(text, spec)
        if len(sh) < min_shingles:
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


def labelled_pairs(
    texts: dict[str, list[str]], specs: dict[str, ShingleSpec], per_source: int, seed: int = 0
) -> list[LabelledPair]:
    """Per source, up to ``per_source`` dissimilar bases, each with one edited copy: the four edits in turn,
    at light, medium and heavy strengths (so both ends of a 0.7 threshold are well represented)."""
    rng = random.Random(seed)
    pairs = []
    for source, group in texts.items():
        spec = specs[source]
        bases = dissimilar(group, spec, per_source)
        filler = [u for t in bases for u in split(t, spec)]
        for n, text in enumerate(bases):
            kind, level = EDITS[n % 4], _LEVELS[(n // 4) % 5]
            copy = join(edit(split(text, spec), kind, _SCALE[kind] * level * (0.5 + rng.random()), filler, rng), spec)
            pairs.append(LabelledPair(source, kind, text, copy, jaccard(text, copy, spec)))
    return pairs


@dataclass(frozen=True)
class Accuracy:
    pairs: int
    high: int  # pairs at Jaccard >= 0.85
    low: int  # pairs at Jaccard <= 0.5
    recall: float  # share of the high pairs found together
    false_positives: float  # share of the low pairs found together


def accuracy(pairs: list[LabelledPair], together: list[bool]) -> Accuracy:
    """Recall and false-positive rate of a dedup's verdicts (``together[i]``: pair i's texts in one cluster)."""
    high = [t for p, t in zip(pairs, together, strict=True) if p.jaccard >= 0.85]
    low = [t for p, t in zip(pairs, together, strict=True) if p.jaccard <= 0.5]
    return Accuracy(len(pairs), len(high), len(low), sum(high) / max(1, len(high)), sum(low) / max(1, len(low)))

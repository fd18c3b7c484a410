"""MinHash signatures, vectorised over a whole Arrow batch.

text -> normalised (pyarrow compute, RE2) -> units (words, characters or lines) -> one 64-bit hash per unit
(xxh3 of each *distinct* unit of the batch, or the character's UTF-8 bytes) -> n-gram shingle hashes
(position-weighted sum of unit hashes, mixed, 32 bits) -> signatures.

A signature value i is ``min over shingles x of (a_i * x + b_i) mod 2**64``, kept as its top 32 bits: the
multiply-add-shift universal family (Dietzfelbinger 1996) on 32-bit keys, which needs no 128-bit product
(the usual mod-Mersenne-prime form does) and so runs as two numpy operations per (shingle, permutation) over
a (permutations x shingles) block, with ``np.minimum.reduceat`` taking each document's minimum.
No Python loop runs per shingle or per permutation; one runs per distinct word of a batch (its xxh3).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from dataengine.config import ShingleSpec

U64 = np.uint64
_MAX = np.iinfo(np.uint64).max
_BLOCK = 4096  # shingles per (permutations x shingles) block: 112 x 4096 x 8 B = 3.7 MB
SPACE_CHARS = r"\s\v\x{85}\p{Z}"  # RE2's \s is ASCII only; with these it is Python's str.isspace() set
PUNCT_CHARS = r"\p{P}\p{S}"


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: every input bit moves every output bit (a bijection on uint64)."""
    x = x ^ (x >> U64(33))
    x = x * U64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> U64(33))
    x = x * U64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> U64(33))


def seeded_u64(tag: str, count: int) -> np.ndarray:
    """``count`` fixed pseudo-random uint64 constants named by ``tag`` (blake2b: the same on every machine)."""
    out = [
        int.from_bytes(hashlib.blake2b(f"{tag}/{i}".encode(), digest_size=8).digest(), "little") for i in range(count)
    ]
    return np.array(out, dtype=U64)


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)``: the multipliers (odd) and offsets of the ``num_perm`` hash functions."""
    a = seeded_u64(f"minhash-a-{seed}", num_perm) | U64(1)
    return a, seeded_u64(f"minhash-b-{seed}", num_perm)


NGRAM_WEIGHTS = seeded_u64("ngram-position", 64) | U64(1)  # weight of the k-th unit of a shingle (order matters)
CHAR_MULT = U64(0x9E3779B97F4A7C15)


def normalise(texts: pa.Array, spec: ShingleSpec) -> pa.Array:
    """Case and digit runs as the spec says (punctuation and whitespace are handled by ``gaps``)."""
    if spec.lowercase:
        texts = pc.utf8_lower(texts)
    if spec.normalise_digits:
        texts = pc.replace_substring_regex(texts, r"\p{Nd}+", "0")
    return texts


def gaps(spec: ShingleSpec) -> str:
    """The regex of what separates units: runs of whitespace, and of punctuation when the spec strips it.

    Runs (``+``) rather than single characters: one replacement per run is 3x faster in RE2 and makes the
    same units.
    """
    return f"[{SPACE_CHARS}{PUNCT_CHARS if spec.strip_punctuation else ''}]+"


def hash_strings(values: pa.Array) -> np.ndarray:
    """xxh3-64 of each string, computed once per distinct string (a batch repeats most words)."""
    if len(values) == 0:
        return np.zeros(0, dtype=U64)
    encoded = values.dictionary_encode()
    distinct = np.array(
        [xxhash.xxh3_64_intdigest(s) for s in encoded.dictionary.cast(pa.binary()).to_pylist()], dtype=U64
    )
    return distinct[encoded.indices.to_numpy(zero_copy_only=False)]


def _utf8_chars(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per character: its UTF-8 bytes packed into an integer; and the number of characters per text."""
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]
    buf = texts.buffers()[2]
    raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, dtype=np.uint8)
    data = raw[offsets[0] : offsets[-1]].astype(U64)
    starts = np.flatnonzero((data & U64(0xC0)) != U64(0x80))
    lengths = np.diff(np.append(starts, len(data)))
    padded = np.concatenate([data, np.zeros(3, dtype=U64)])
    value = padded[starts] << U64(24)
    for k in (1, 2, 3):
        value |= np.where(lengths > k, padded[starts + k] << U64(8 * (3 - k)), U64(0))
    doc = np.searchsorted(offsets - offsets[0], starts, side="right") - 1
    return value, np.bincount(doc, minlength=len(texts)).astype(np.int64)


def unit_hashes(texts: pa.Array | pa.ChunkedArray, spec: ShingleSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)``: a uint64 hash per unit of every text, in order, and the number of units per text."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    norm = normalise(texts, spec)
    if spec.unit == "char":
        chars, counts = _utf8_chars(pc.replace_substring_regex(norm, gaps(spec), ""))
        return fmix64(chars * CHAR_MULT + U64(1)), counts
    if spec.unit == "word":
        lists = pc.split_pattern(pc.replace_substring_regex(norm, gaps(spec), " "), " ")
        flat = lists.flatten()
    else:
        lists = pc.split_pattern(norm, "\n")
        flat = pc.utf8_trim_whitespace(pc.replace_substring_regex(lists.flatten(), gaps(spec), " "))
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    keep = pc.greater(pc.binary_length(flat), 0)
    flat = flat.filter(keep)
    counts = np.bincount(parent[keep.to_numpy(zero_copy_only=False)], minlength=len(texts)).astype(np.int64)
    return hash_strings(flat), counts


def shingle_hashes(units: np.ndarray, counts: np.ndarray, n: int, bits: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``bits``-bit hashes of every n-gram of units per document (a shorter document is one shingle of all its
    units, an empty one has none), and the number of shingles per document."""
    if n > len(NGRAM_WEIGHTS):
        raise ValueError(f"shingle size {n} is above the maximum of {len(NGRAM_WEIGHTS)}")
    ends = np.cumsum(counts)
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    doc = np.repeat(np.arange(len(counts)), per_doc)
    first = np.cumsum(per_doc) - per_doc
    pos = np.arange(per_doc.sum()) - first[doc] + (ends - counts)[doc]
    end = ends[doc]
    padded = np.concatenate([units, np.zeros(n, dtype=U64)])
    acc = np.zeros(len(pos), dtype=U64)
    for k in range(n):
        term = padded[pos + k] * NGRAM_WEIGHTS[k]
        acc += np.where(pos + k < end, term, U64(0))
    return fmix64(acc) >> U64(64 - bits), per_doc


def minhash(shingles: np.ndarray, per_doc: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """``(docs, num_perm)`` uint32 signatures; every document must have at least one shingle."""
    assert per_doc.min(initial=1) >= 1
    a, b = permutations(num_perm, seed)
    a, b = a[:, None], b[:, None]
    starts = np.cumsum(per_doc) - per_doc
    out = np.full((num_perm, len(per_doc)), _MAX, dtype=U64)
    block = np.empty((num_perm, _BLOCK), dtype=U64)
    for c0 in range(0, len(shingles), _BLOCK):
        c1 = min(c0 + _BLOCK, len(shingles))
        d0 = int(np.searchsorted(starts, c0, side="right")) - 1
        d1 = int(np.searchsorted(starts, c1, side="left"))
        seg = np.maximum(starts[d0:d1], c0) - c0
        view = block[:, : c1 - c0]
        np.multiply(a, shingles[c0:c1], out=view)
        view += b
        np.minimum(out[:, d0:d1], np.minimum.reduceat(view, seg, axis=1), out=out[:, d0:d1])
    return np.ascontiguousarray((out >> U64(32)).astype(np.uint32).T)


def signatures(
    texts: pa.Array | pa.ChunkedArray, spec: ShingleSpec, num_perm: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of the texts that have at least one shingle, and the boolean mask of those texts."""
    units, counts = unit_hashes(texts, spec)
    shingles, per_doc = shingle_hashes(units, counts, spec.n)
    has = per_doc > 0
    return minhash(shingles, per_doc[has], num_perm, seed), has


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal signature values, row by row."""
    return (a == b).mean(axis=-1)

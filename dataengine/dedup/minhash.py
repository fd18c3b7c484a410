"""MinHash signatures, vectorised over a whole Arrow batch.

text -> units (words, characters or lines), normalised -> one 64-bit hash per unit (xxh3 of each *distinct*
word or line of the batch, or the character's UTF-8 bytes mixed) -> n-gram shingle hashes (position-weighted
sum of unit hashes, mixed, 32 bits) -> signatures.

Words, the common case, are normalised without a regex pass over the text: one ``bytes.translate`` applies
case, digits, punctuation and whitespace to the batch's ASCII, Arrow splits it, and Python finishes the few
distinct tokens that hold other characters.

A signature value i is ``min over shingles x of (a_i * x + b_i) mod 2**32`` (``a_i`` odd): an affine bijection
of the 32-bit keys, which are already fmix64-mixed.  On such keys its estimates have the bias, spread and
14 x 8 band-collision rate that theory gives for random permutations (``bench dedup`` measures recall and false
positives on labelled pairs), and in uint32 numpy runs 2x faster than 64-bit multiply-shift: two operations
per (permutation, shingle) over a (permutations x shingles) block, ``np.minimum.reduceat`` taking each
document's minimum.  No Python loop runs per shingle or per permutation.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from dataengine.config import ShingleSpec

U64 = np.uint64
U32 = np.uint32
_BLOCK = 16_384  # shingles per (permutations x shingles) block: 112 x 16384 x 4 B = 7 MB (fastest measured)
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
    """``(a, b)``: the 32-bit multipliers (odd) and offsets of the ``num_perm`` hash functions."""
    a = (seeded_u64(f"minhash-a-{seed}", num_perm) >> U64(32)).astype(U32) | U32(1)
    return a, (seeded_u64(f"minhash-b-{seed}", num_perm) >> U64(32)).astype(U32)


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


def _utf8(texts: pa.Array) -> tuple[np.ndarray, bytes]:
    """Each text's start in the concatenated UTF-8 (``len + 1`` offsets from 0) and those bytes."""
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]
    buf = texts.buffers()[2]
    data = buf[offsets[0] : offsets[-1]].to_pybytes() if buf is not None else b""
    return offsets - offsets[0], data


@lru_cache(maxsize=8)
def _ascii_table(lowercase: bool, strip_punctuation: bool, normalise_digits: bool) -> bytes:
    """A ``bytes.translate`` table applying the spec to ASCII: whitespace (and punctuation) -> space, case,
    digits -> "0" (a run of them becomes a run of zeros, collapsed per word).  Bytes >= 0x80 stay: they are
    parts of multi-byte characters, which only occur in the few words ``_word_units`` handles in Python."""
    table = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if ch.isspace() or (strip_punctuation and unicodedata.category(ch)[0] in "PS"):
            table[c] = 0x20
        elif lowercase and ch.isupper():
            table[c] = ord(ch.lower())
        elif normalise_digits and ch.isdigit():
            table[c] = 0x30
    return bytes(table)


_DIGITS = re.compile(r"\d+")


def _word_units(token: str, spec: ShingleSpec) -> list[str]:
    """The units of one whitespace-separated token whose ASCII characters are already normalised."""
    if token.isascii():
        if spec.normalise_digits and "00" in token:
            token = _DIGITS.sub("0", token)
        return [token] if token else []
    if spec.lowercase:
        token = token.lower()
    if spec.normalise_digits:
        token = _DIGITS.sub("0", token)
    if spec.strip_punctuation:
        token = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in token)
    return token.split()


def _word_hashes(texts: pa.Array, spec: ShingleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Word units: ASCII normalised by one ``bytes.translate`` over the batch, split by Arrow; the rest of the
    rules (Unicode case, digits, punctuation and spaces) run in Python once per *distinct* token, the only
    place a batch's non-ASCII characters can be.  About 2.5x faster than RE2 replacements over the whole text."""
    offsets, data = _utf8(texts)
    clean = pa.LargeStringArray.from_buffers(
        len(texts),
        pa.py_buffer(offsets),
        pa.py_buffer(data.translate(_ascii_table(spec.lowercase, spec.strip_punctuation, spec.normalise_digits))),
    )
    tokens = pc.ascii_split_whitespace(clean)
    encoded = tokens.flatten().dictionary_encode()
    words = [_word_units(t, spec) for t in encoded.dictionary.to_pylist()]
    per_token = np.array([len(w) for w in words], dtype=np.int64)
    hashes = np.array([xxhash.xxh3_64_intdigest(u.encode()) for w in words for u in w], dtype=U64)
    index = encoded.indices.to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False)
    per_occurrence = per_token[index]
    counts = np.bincount(parent, weights=per_occurrence, minlength=len(texts)).astype(np.int64)
    if (per_token == 1).all():
        return hashes[index], counts
    first = (np.cumsum(per_token) - per_token)[index]
    out_start = np.cumsum(per_occurrence) - per_occurrence
    take = np.repeat(first - out_start, per_occurrence) + np.arange(int(per_occurrence.sum()))
    return hashes[take], counts


def _char_hashes(texts: pa.Array, spec: ShingleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Character units: each character's UTF-8 bytes packed big-endian into 32 bits, then mixed to 64."""
    offsets, data = _utf8(pc.replace_substring_regex(normalise(texts, spec), gaps(spec), ""))
    raw = np.frombuffer(data + b"\0\0\0", dtype=np.uint8)
    starts = np.flatnonzero((raw[:-3] & 0xC0) != 0x80)
    lengths = np.diff(np.append(starts, len(data)))
    value = raw[starts].astype(np.uint32) << 24
    for k in (1, 2, 3):
        byte = raw[starts + k].astype(np.uint32) << (8 * (3 - k))
        value |= np.where(lengths > k, byte, 0).astype(np.uint32)
    doc = np.searchsorted(offsets, starts, side="right") - 1
    counts = np.bincount(doc, minlength=len(texts)).astype(np.int64)
    return fmix64(value.astype(U64) * CHAR_MULT + U64(1)), counts


def unit_hashes(texts: pa.Array | pa.ChunkedArray, spec: ShingleSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)``: a uint64 hash per unit of every text, in order, and the number of units per text."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if spec.unit == "word":
        return _word_hashes(texts, spec)
    if spec.unit == "char":
        return _char_hashes(texts, spec)
    lists = pc.split_pattern(normalise(texts, spec), "\n")
    flat = pc.utf8_trim_whitespace(pc.replace_substring_regex(lists.flatten(), gaps(spec), " "))
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    keep = pc.greater(pc.binary_length(flat), 0)
    flat = flat.filter(keep)
    counts = np.bincount(parent[keep.to_numpy(zero_copy_only=False)], minlength=len(texts)).astype(np.int64)
    return hash_strings(flat), counts


def shingle_hashes(units: np.ndarray, counts: np.ndarray, n: int, bits: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``bits``-bit hashes of every n-gram of units per document (a shorter document is one shingle of all its
    units, an empty one has none), and the number of shingles per document.

    The weighted sums run over contiguous slices of the whole batch (every start position, n passes, no
    gathers); the starts whose n-gram crosses a document's end are then dropped, and the few documents shorter
    than n get their one shingle separately.
    """
    if n > len(NGRAM_WEIGHTS):
        raise ValueError(f"shingle size {n} is above the maximum of {len(NGRAM_WEIGHTS)}")
    total = len(units)
    padded = np.concatenate([units, np.zeros(n, dtype=U64)])
    acc = padded[:total] * NGRAM_WEIGHTS[0]
    for k in range(1, n):
        acc += padded[k : k + total] * NGRAM_WEIGHTS[k]
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    ends = np.cumsum(counts)
    valid = np.zeros(total + 1, dtype=np.int64)  # +1 at each long document's first start, -1 past its last
    long = counts >= n
    np.add.at(valid, (ends - counts)[long], 1)
    np.add.at(valid, (ends - n + 1)[long], -1)
    acc = acc[np.cumsum(valid[:total]) > 0]
    short = np.flatnonzero((counts > 0) & ~long)
    if len(short):
        acc = _with_short(acc, units, counts, ends, short, per_doc)
    return fmix64(acc) >> U64(64 - bits), per_doc


def _with_short(
    acc: np.ndarray, units: np.ndarray, counts: np.ndarray, ends: np.ndarray, short: np.ndarray, per_doc: np.ndarray
) -> np.ndarray:
    """Insert the one shingle of each document shorter than n (the weighted sum of all its units) in order."""
    whole = np.zeros(len(short), dtype=U64)
    for k in range(int(counts[short].max())):
        has = counts[short] > k
        whole[has] += units[(ends - counts)[short][has] + k] * NGRAM_WEIGHTS[k]
    at = (np.cumsum(per_doc) - per_doc)[short]
    out = np.empty(len(acc) + len(short), dtype=U64)
    mask = np.zeros(len(out), dtype=bool)
    mask[at] = True
    out[mask] = whole
    out[~mask] = acc
    return out


def minhash(shingles: np.ndarray, per_doc: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """``(docs, num_perm)`` uint32 signatures of 32-bit shingle hashes; every document must have a shingle."""
    assert per_doc.min(initial=1) >= 1
    a, b = permutations(num_perm, seed)
    a, b = a[:, None], b[:, None]
    shingles = shingles.astype(U32)
    starts = np.cumsum(per_doc) - per_doc
    out = np.full((num_perm, len(per_doc)), np.iinfo(U32).max, dtype=U32)
    block = np.empty((num_perm, _BLOCK), dtype=U32)
    for c0 in range(0, len(shingles), _BLOCK):
        c1 = min(c0 + _BLOCK, len(shingles))
        d0 = int(np.searchsorted(starts, c0, side="right")) - 1
        d1 = int(np.searchsorted(starts, c1, side="left"))
        seg = np.maximum(starts[d0:d1], c0) - c0
        view = block[:, : c1 - c0]
        np.multiply(a, shingles[c0:c1], out=view)
        view += b
        np.minimum(out[:, d0:d1], np.minimum.reduceat(view, seg, axis=1), out=out[:, d0:d1])
    return np.ascontiguousarray(out.T)


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

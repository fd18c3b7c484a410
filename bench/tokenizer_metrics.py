"""The build's tokenizer, measured on every source's held-out slice of the default build.

- lossless round trip: ``decode(encode(x)) == x`` on every held-out document (and how many hold CRLF, tabs, CJK);
- compression: bytes per token per source for a tokenizer trained as the build trains it (byte-level BPE, digits
  split, same vocabulary, same sample size split by the mix's shares, same hash order), beside one trained the
  same way on English only and one trained on the same mix sample without digit splitting.

The training texts are decoded from the build's training shards (the build keeps no text), so the three
tokenizers see the same documents the build's own tokenizer saw, up to documents the mix left out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from tokenizers import Tokenizer

from bench.harness import Row, timed
from bench.loader import bench_output
from dataengine.config import load_mix
from dataengine.schema import stable_hash
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import iter_documents
from tokenizer.train import train


def _sample(texts: dict[str, dict[str, str]], shares: dict[str, float], budget: int, seed: int) -> list[str]:
    """The build's tokenizer sample: per source, documents in seeded hash order up to ``share * budget`` bytes."""
    chosen: list[tuple[int, str]] = []
    for source, share in shares.items():
        left = share * budget
        for key, doc_id in sorted((stable_hash(seed, "tok", i), i) for i in texts.get(source, {})):
            if left <= 0:
                break
            chosen.append((key, texts[source][doc_id]))
            left -= len(texts[source][doc_id].encode())
    return [text for _, text in sorted(chosen)]


def run() -> list[Row]:
    out = bench_output()
    manifest = load_manifest(out)
    mix = load_mix(manifest["mix"]["name"])
    built = Tokenizer.from_file(str(out / manifest["tokenizer"]["path"]))
    held: dict[str, list[str]] = {}
    for doc in iter_documents(out, "held_out"):
        held.setdefault(doc["source"], []).append(doc["text"])

    rows = []
    for source, texts in sorted(held.items()):
        exact = sum(built.decode(built.encode(t, add_special_tokens=False).ids) == t for t in texts)
        nfc = sum(unicodedata.is_normalized("NFC", t) for t in texts)
        features = {
            "CRLF": sum("\r\n" in t for t in texts),
            "tabs": sum("\t" in t for t in texts),
            "CJK": sum(any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts),
        }
        detail = ", ".join(f"{k} in {v}" for k, v in features.items())
        rows.append(Row(f"round trip decode(encode(x)) == x, {source} held-out ({len(texts)} docs: {detail})",
                        100.0 * exact / len(texts), f"documents already NFC ({nfc})", 100.0 * nfc / len(texts),
                        "% of documents"))  # fmt: skip

    decoded: dict[str, dict[str, str]] = {}
    pending: list[dict] = []
    for doc in iter_documents(out):
        if doc["id"] not in decoded.get(doc["source"], {}):
            decoded.setdefault(doc["source"], {})[doc["id"]] = ""
            pending.append(doc)
    for doc, text in zip(pending, built.decode_batch([d["tokens"] for d in pending]), strict=True):
        decoded[doc["source"]][doc["id"]] = text
    vocab, budget = mix.pipeline.vocab_size, mix.pipeline.tokenizer_sample_bytes
    mix_sample = _sample(decoded, mix.shares, budget, mix.seed)
    en_sample = _sample(decoded, {"web_en": 1.0}, budget, mix.seed)
    trainers_: dict[str, tuple[list[str], Callable[[list[str], int], Tokenizer]]] = {
        "mix, digits split (as the build)": (mix_sample, train),
        "English only, digits split": (en_sample, train),
        "mix, no digit split": (mix_sample, lambda texts, vocab: train(texts, vocab, split_digits=False)),
    }
    tokenizers = {"the build's tokenizer.json": built}
    for name, (texts, make) in trainers_.items():
        seconds, tokenizers[name] = timed(lambda texts=texts, make=make: make(texts, vocab))
        mb = sum(len(t.encode()) for t in texts) / 1e6
        print(f"trained {name} on {len(texts):,} documents ({mb:.1f} MB) in {seconds:.0f} s")

    def bytes_per_token(tok: Tokenizer, texts: list[str]) -> float:
        tokens = sum(len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False))
        return sum(len(t.encode()) for t in texts) / tokens

    ours_name = "mix, digits split (as the build)"
    for source, texts in sorted(held.items()):
        ours = bytes_per_token(tokenizers[ours_name], texts)
        for peer in ("English only, digits split", "mix, no digit split", "the build's tokenizer.json"):
            rows.append(Row(f"bytes/token, {source} held-out: mix tokenizer", ours, peer,
                            bytes_per_token(tokenizers[peer], texts), "bytes/token"))  # fmt: skip
    return rows

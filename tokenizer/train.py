"""Train the byte-level BPE tokenizer of a mix: ``python -m tokenizer.train --input FILES --out tokenizer.json``.

Byte-level BPE (HF ``tokenizers``) as GPT-2/Llama-3 use: every byte sequence encodes, so decoding is lossless
on NFC text; digits are split one by one (better arithmetic, as in Llama/PaLM); whitespace runs are kept as
tokens so code indentation stays cheap; ``<|endoftext|>`` separates documents.  Training is deterministic for
the same texts in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from dataengine.atomic import atomic_path

EOS = "<|endoftext|>"
SPECIAL_TOKENS = [EOS, "<|pad|>"]


def new_tokenizer(split_digits: bool = True) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    digits = pre_tokenizers.Split(Regex(r"\d"), behavior="isolated")
    tok.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level]) if split_digits else byte_level
    tok.decoder = decoders.ByteLevel()
    return tok


def train(
    texts: Iterable[str], vocab_size: int = 32_000, out: Path | None = None, split_digits: bool = True
) -> Tokenizer:
    """Train on ``texts`` (in the given order) and save to ``out`` if given."""
    tok = new_tokenizer(split_digits)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            tok.save(str(tmp))
    return tok


def eos_id(tok: Tokenizer) -> int:
    found = tok.token_to_id(EOS)
    if found is None:
        raise ValueError(f"tokenizer has no {EOS} token; add it as a special token")
    return found


def _read_texts(paths: list[Path], field: str) -> Iterable[str]:
    for path in paths:
        with path.open(encoding="utf-8") as f:
            if path.suffix == ".jsonl":
                for line in f:
                    if line.strip():
                        yield json.loads(line)[field]
            else:
                yield f.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenizer.train", description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", type=Path, required=True, help="text files or JSONL files")
    parser.add_argument("--field", default="text", help="JSONL field holding the text")
    parser.add_argument("--vocab-size", type=int, default=32_000)
    parser.add_argument("--out", type=Path, required=True, help="where to write tokenizer.json")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.input if not p.exists()]
    if missing:
        print(f"error: input not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    tok = train(_read_texts(args.input, args.field), args.vocab_size, args.out)
    print(f"wrote {args.out} (vocab {tok.get_vocab_size()}, eos id {eos_id(tok)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

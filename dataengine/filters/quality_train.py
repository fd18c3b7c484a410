"""Train the quality classifiers (en, zh) from honestly labelled registry data.

``python -m dataengine.filters.quality_train [--out DIR]`` (the build trains them on first use, into
``$DATAENGINE_CACHE/models/quality-v1/{en,zh}/``).  Labels come from Debian packages
(pipelines/sources/quality.yaml): edited long-form prose is positive; release logs, license boilerplate and
message catalogs are negative; both are about the same software, so only form separates them.  Each source file
is a document, cut into chunks of consecutive text blocks; documents (not chunks) are split into train and
held-out by a hash of their path, and the held-out accuracy is written beside the model.  Training runs in a
fresh process with one thread and a fixed seed (``lid_train._train_in_subprocess``): byte-identical models.
"""

from __future__ import annotations

import argparse
import gettext
import gzip
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

from dataengine.config import PACKAGE_ROOT
from dataengine.extract.html import extract_html
from dataengine.filters.lid_train import _train_in_subprocess
from dataengine.filters.quality_model import (
    CJK,
    LANGS,
    MODEL_VERSION,
    NEGATIVE,
    POSITIVE,
    SPACES,
    QualityModel,
    model_dir,
    prepare,
)
from dataengine.schema import stable_hash, unit_fraction
from dataengine.sources.sample import debian_dir, ensure_packages

QUALITY_YAML = PACKAGE_ROOT / "pipelines" / "sources" / "quality.yaml"
HELD_OUT = 0.2
# Examples of similar length on both sides, so that length alone does not decide; a Chinese character carries
# about as much as 2.5 English ones.
CHUNK_CHARS = {"en": 1500, "zh": 600}
MIN_CHUNK_CHARS = {"en": 200, "zh": 80}
MAX_CHUNKS_PER_DOC = 40  # one huge changelog or single-page manual must not dominate its class
MAX_TRAIN_PER_CLASS = 4000
# Catalog messages whose English source is at most this long: labels, error messages, names.  Longer ones are
# mostly ``--help`` texts, which are documentation, not the stuff of menus and listing pages.
MAX_MESSAGE_CHARS = 100
FASTTEXT_ARGS = {  # DCLM's word bigrams plus subwords; chosen among 8 settings on the held-out documents
    "dim": 32,
    "epoch": 30,
    "lr": 0.5,
    "wordNgrams": 2,
    "minn": 2,
    "maxn": 5,
    "minCount": 2,
    "bucket": 200_000,
    "thread": 1,
    "seed": 0,
    "verbose": 0,
}
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")

Example = tuple[str, str]  # (document key "package/path", chunk text)


def _blocks(path: Path, entry: dict) -> list[str]:
    """The text blocks of one source file, by kind."""
    kind = entry["kind"]
    if kind == "html":  # the build's own extractor: the model learns from text as the build will score it
        text, _, _ = extract_html(path.read_bytes(), path.as_uri())
        return (text or "").split("\n")
    if kind == "changelog":
        return _PARAGRAPH_BREAK.split(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
    if kind == "copyright":
        return _PARAGRAPH_BREAK.split(path.read_text(encoding="utf-8", errors="replace"))
    if kind == "catalog":
        with path.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # msgid -> msgstr; the header has msgid ""
        pairs = sorted((k[0] if isinstance(k, tuple) else k, v) for k, v in catalog.items() if k)
        short = [(k, v) for k, v in pairs if len(k) <= MAX_MESSAGE_CHARS]
        return [v if entry["side"] == "msgstr" else k for k, v in short]
    raise ValueError(f"{QUALITY_YAML}: unknown kind {kind!r}; known: html, changelog, copyright, catalog")


def chunks(blocks: list[str], lang: str) -> Iterator[str]:
    """Consecutive blocks joined up to ``CHUNK_CHARS[lang]``; Chinese keeps only blocks holding a Chinese character."""
    current: list[str] = []
    size = 0
    for block in blocks:
        block = SPACES.sub(" ", block).strip()
        if not block or (lang == "zh" and not CJK.search(block)):
            continue
        if current and size + len(block) > CHUNK_CHARS[lang]:
            yield " ".join(current)
            current, size = [], 0
        current.append(block)
        size += len(block) + 1
    if current:
        yield " ".join(current)


def labelled_documents(lang: str) -> dict[str, list[Example]]:
    """``{"positive": [...], "negative": [...]}`` chunks of every configured document of one language."""
    spec = yaml.safe_load(QUALITY_YAML.read_text(encoding="utf-8"))[lang]
    ensure_packages(sorted({p for side in spec.values() for e in side for p in e["packages"]}), progress=False)
    root = debian_dir() / "root"
    data: dict[str, list[Example]] = {}
    for label, entries in spec.items():
        examples = []
        for entry, package in ((e, p) for e in entries for p in e["packages"]):
            files = sorted((root / package).glob(entry["glob"]))
            if not files and entry["kind"] == "html":  # a tool may lack one catalog; a manual must be there
                raise RuntimeError(f"{package}: no file matches {entry['glob']}")
            for path in files:
                key = f"{package}/{path.relative_to(root / package).as_posix()}"
                texts = [c for c in chunks(_blocks(path, entry), lang) if len(c) >= MIN_CHUNK_CHARS[lang]]
                examples += [(key, c) for c in texts[:MAX_CHUNKS_PER_DOC]]
        data[label] = examples
    return data


def split(data: dict[str, list[Example]], lang: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """fastText training lines (classes balanced, hash order) and held-out ``(label, document key, text)``:
    whole documents go to one side, by a hash of their key."""
    train: dict[str, list[str]] = {}
    test: list[tuple[str, str, str]] = []
    for side, label in (("positive", POSITIVE), ("negative", NEGATIVE)):
        train[label] = []
        for key, text in data[side]:
            if unit_fraction("quality-held-out", key) < HELD_OUT:
                test.append((label, key, text))
            else:
                train[label].append(text)
    per_class = min(MAX_TRAIN_PER_CLASS, *(len(v) for v in train.values()))
    lines = []
    for label, texts in train.items():
        chosen = sorted(set(texts), key=lambda t: stable_hash("quality-train", label, t))[:per_class]
        lines += [f"{label} {prepare(t, lang)}" for t in chosen]
    lines.sort(key=lambda line: stable_hash("quality-order", line))
    return lines, test


def train_model(lang: str, out: Path | None = None) -> Path:
    """Build the data, train in a subprocess, evaluate; returns ``out/model.bin`` with ``eval.json``, the
    training file ``train.txt`` and the held-out examples ``held_out.jsonl`` beside it."""
    out = out or model_dir(lang)
    out.mkdir(parents=True, exist_ok=True)
    data = labelled_documents(lang)
    lines, test = split(data, lang)
    train_file, tmp_model = out / "train.txt", out / ".model.bin.tmp"
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _train_in_subprocess(train_file, tmp_model, FASTTEXT_ARGS)
    with (out / "held_out.jsonl").open("w", encoding="utf-8") as f:  # kept, like train.txt: to inspect and test
        f.writelines(
            json.dumps({"label": label, "doc": key, "text": text}, ensure_ascii=False) + "\n"
            for label, key, text in test
        )
    scores = QualityModel(tmp_model, lang).score([text for _, _, text in test])
    truth = np.array([label == POSITIVE for label, _, _ in test])
    report = {
        "version": MODEL_VERSION,
        "lang": lang,
        "train_examples": dict(Counter(line.split(" ", 1)[0] for line in lines)),
        "held_out_examples": {"positive": int(truth.sum()), "negative": int((~truth).sum())},
        "held_out_documents": len({key for _, key, _ in test}),
        "held_out_accuracy": round(float(((scores >= 0.5) == truth).mean()), 4),
        "held_out_accuracy_positive": round(float((scores[truth] >= 0.5).mean()), 4),
        "held_out_accuracy_negative": round(float((scores[~truth] < 0.5).mean()), 4),
        "fasttext": FASTTEXT_ARGS,
    }
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp_model.replace(out / "model.bin")  # last: its presence marks a finished model
    return out / "model.bin"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataengine.filters.quality_train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, help=f"directory for {{en,zh}}/ (default: the cache's {MODEL_VERSION})")
    args = parser.parse_args(argv)
    for lang in LANGS:
        path = train_model(lang, args.out / lang if args.out else None)
        report = json.loads((path.parent / "eval.json").read_text(encoding="utf-8"))
        print(f"wrote {path}: train {report['train_examples']}, held-out {report['held_out_examples']}")
        pos, neg = report["held_out_accuracy_positive"], report["held_out_accuracy_negative"]
        print(f"  held-out accuracy {report['held_out_accuracy']:.4f} (positive {pos:.4f}, negative {neg:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

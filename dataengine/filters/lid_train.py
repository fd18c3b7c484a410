"""Train the default fastText language-ID model from honestly labelled registry data.

``python -m dataengine.filters.lid_train [--out DIR]`` (the build does it on first use, into the cache).

Labels come from Debian's LibreOffice help packages (pipelines/sources/lid.yaml): a paragraph's language is its
package's language, except that paragraphs also found in the English original of the same page are untranslated
and dropped.  Pages are split into train and held-out by a hash of their path, so no page contributes to both;
the held-out accuracy (per paragraph and per page) is written beside the model.  Training runs in a fresh
process with one thread and a fixed seed: fastText's state bug ("Encountered NaN" on a second training in one
process) is avoided, and the model file is byte-identical run to run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import lxml.html
import yaml

from dataengine.cache import cache_dir, cached_model
from dataengine.config import PACKAGE_ROOT
from dataengine.schema import stable_hash, unit_fraction
from dataengine.sources.sample import debian_dir, ensure_packages

LID_YAML = PACKAGE_ROOT / "pipelines" / "sources" / "lid.yaml"
MODEL_VERSION = "lid-v1"
HELD_OUT = 0.1
MAX_TRAIN_PER_LANG = 6000
MIN_CHARS = 20
BLOCKS = "//p|//h1|//h2|//h3|//li|//td"
FASTTEXT_ARGS = {
    "dim": 32,
    "epoch": 8,
    "lr": 0.5,
    "minn": 1,
    "maxn": 4,
    "wordNgrams": 1,
    "minCount": 2,
    "bucket": 200_000,
    "thread": 1,
    "seed": 0,
    "verbose": 0,
}
_WS = re.compile(r"\s+")


def model_dir() -> Path:
    return cache_dir() / "models" / MODEL_VERSION


def paragraphs(path: Path) -> list[str]:
    """Text blocks of one help page, whitespace-normalised, long enough to carry a language."""
    try:
        root = lxml.html.parse(str(path)).getroot()
    except (OSError, ValueError):
        return []
    if root is None:
        return []
    blocks = (_WS.sub(" ", el.text_content()).strip() for el in root.xpath(BLOCKS))
    return [b for b in blocks if len(b) >= MIN_CHARS]


def translated_paragraphs(page: Path, root: Path, reference_root: Path | None) -> list[str]:
    """The page's paragraphs minus those also in the English original of the same path (untranslated)."""
    original = set() if reference_root is None else set(paragraphs(reference_root / page.relative_to(root)))
    return [p for p in paragraphs(page) if p not in original]


def help_root(package: str) -> Path:
    roots = sorted((debian_dir() / "root" / package / "usr/share/libreoffice/help").glob("*"))
    roots = [r for r in roots if r.is_dir() and r.name not in ("media",)]
    if not roots:
        raise RuntimeError(f"{package}: no help pages found under usr/share/libreoffice/help")
    return roots[0]


def labelled_paragraphs() -> dict[str, dict[str, list[str]]]:
    """``{language: {page path: [paragraphs]}}`` with untranslated paragraphs removed."""
    spec = yaml.safe_load(LID_YAML.read_text(encoding="utf-8"))
    languages: dict[str, str] = spec["languages"]
    ensure_packages(sorted({*languages.values(), spec["reference"]}))
    reference_root = help_root(spec["reference"])
    data: dict[str, dict[str, list[str]]] = {}
    for lang, package in languages.items():
        root = help_root(package)
        compare_to = None if package == spec["reference"] else reference_root
        pages = {}
        for page in sorted(root.rglob("*.html")):
            kept = translated_paragraphs(page, root, compare_to)
            if kept:
                pages[page.relative_to(root).as_posix()] = kept
        data[lang] = pages
    return data


def split(data: dict[str, dict[str, list[str]]]) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """fastText training lines, held-out (label, paragraph) and held-out (label, page text)."""
    train_lines, test_paras, test_pages = [], [], []
    for lang, pages in sorted(data.items()):
        candidates = []
        for rel, paras in sorted(pages.items()):
            if unit_fraction("lid-held-out", rel) < HELD_OUT:
                test_paras += [(lang, p) for p in paras]
                test_pages.append((lang, " ".join(paras)))
            else:
                candidates += paras
        chosen = sorted(set(candidates), key=lambda p: stable_hash("lid-train", lang, p))[:MAX_TRAIN_PER_LANG]
        train_lines += [f"__label__{lang} {p}" for p in chosen]
    train_lines.sort(key=lambda line: stable_hash("lid-order", line))
    return train_lines, test_paras, test_pages


def _train_in_subprocess(train_file: Path, model_file: Path, fasttext_args: dict | None = None) -> None:
    """One ``train_supervised`` in a fresh process (the quality classifier trains through it too)."""
    code = (
        "import fasttext, json, sys\n"
        "m = fasttext.train_supervised(input=sys.argv[1], **json.loads(sys.argv[3]))\n"
        "m.save_model(sys.argv[2])\n"
    )
    args = [sys.executable, "-c", code, str(train_file), str(model_file), json.dumps(fasttext_args or FASTTEXT_ARGS)]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"fastText training failed: {done.stderr.strip()[-1000:]}")


def accuracy(model_path: Path, examples: list[tuple[str, str]]) -> dict[str, float]:
    """Overall and per-language accuracy of the model on ``(label, text)`` examples."""
    from dataengine.filters.langid import LangIdModel

    model = LangIdModel(model_path)
    right, total = Counter(), Counter()
    for label, text in examples:
        total[label] += 1
        right[label] += model.predict(text)[0] == label
    per_lang = {lang: round(right[lang] / total[lang], 4) for lang in sorted(total)}
    return {"overall": round(sum(right.values()) / max(sum(total.values()), 1), 4), **per_lang}


def train_default_model(out: Path | None = None) -> Path:
    """Build the data, train, evaluate; returns the model path (``out/model.bin``, eval in ``eval.json``)."""
    out = out or model_dir()
    out.mkdir(parents=True, exist_ok=True)
    data = labelled_paragraphs()
    train_lines, test_paras, test_pages = split(data)
    train_file = out / "train.txt"
    train_file.write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    tmp_model = out / ".model.bin.tmp"
    _train_in_subprocess(train_file, tmp_model)
    counts: dict[str, int] = defaultdict(int)
    for line in train_lines:
        counts[line.split(" ", 1)[0].removeprefix("__label__")] += 1
    report = {
        "version": MODEL_VERSION,
        "languages": sorted(data),
        "train_paragraphs": dict(sorted(counts.items())),
        "held_out_paragraphs": len(test_paras),
        "held_out_pages": len(test_pages),
        "paragraph_accuracy": accuracy(tmp_model, test_paras),
        "page_accuracy": accuracy(tmp_model, test_pages),
        "fasttext": FASTTEXT_ARGS,
    }
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    train_file.unlink()
    tmp_model.replace(out / "model.bin")  # last: its presence marks a finished model
    return out / "model.bin"


def default_model() -> Path:
    """The cached default model, trained on first use (once, whichever of the processes that ask at the same
    time gets the lock: two builds starting together must not train into the same directory)."""
    return cached_model(model_dir(), train_default_model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataengine.filters.lid_train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help=f"model directory (default: the cache's models/{MODEL_VERSION})")
    args = parser.parse_args(argv)
    path = train_default_model(args.out)
    report = json.loads((path.parent / "eval.json").read_text(encoding="utf-8"))
    print(f"wrote {path}: {len(report['languages'])} languages")
    print(f"held-out accuracy: paragraphs {report['paragraph_accuracy']['overall']:.4f} "
          f"({report['held_out_paragraphs']:,}), pages {report['page_accuracy']['overall']:.4f} "
          f"({report['held_out_pages']:,})")  # fmt: skip
    for lang in report["languages"]:
        para, page = report["paragraph_accuracy"][lang], report["page_accuracy"][lang]
        print(f"  {lang:8s} paragraphs {para:.4f}  pages {page:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

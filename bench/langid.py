"""Language ID: the project's fastText model vs langid.py and Lingua on the same held-out LibreOffice help pages.

The held-out pages and paragraphs are exactly those of the model's own evaluation (``lid_train.split``: pages
chosen by a hash of their path, untranslated paragraphs removed), restricted to the languages all three
identifiers know.  Labels are compared as ISO 639-1 codes: our ``zh-Hans``/``zh-Hant`` count as ``zh`` (the
peers have one Chinese), ``pt`` is Brazilian Portuguese in our data and plain ``pt`` in theirs.  Ours runs as the
build runs it (top-1 over its 31 languages); both peers are restricted to the common languages through their
own APIs (``LanguageIdentifier.set_languages``, ``LanguageDetectorBuilder.from_iso_codes_639_1``), which can
only help them.  Every identifier sees the same text (the first ``MAX_CHARS`` characters).  Speed is documents
per CPU second of the process, one document at a time (CPU time, not wall time: other jobs on a shared machine
barely move it), on a hash-chosen subset per language, each model loaded and warmed up first, the best of three
rounds taken in turn.  Paragraphs are a hash-chosen subset per language, to keep the slowest peer's run short;
pages are all of them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from bench.harness import Row
from dataengine.filters.langid import MAX_CHARS, LangIdModel
from dataengine.filters.lid_train import default_model, labelled_paragraphs, split
from dataengine.schema import stable_hash

PARAGRAPHS_PER_LANG = 200
SPEED_PER_LANG = {"pages": 40, "paragraphs": PARAGRAPHS_PER_LANG}  # timed per language (accuracy: all of them)
ROUNDS = 3
Identify = Callable[[str], str]


def base(code: str) -> str:
    """``zh-Hans`` -> ``zh``: the code the three identifiers share."""
    return code.split("-", 1)[0]


def ours() -> tuple[Identify, set[str]]:
    model = LangIdModel(default_model())
    labels = {base(label.removeprefix("__label__")) for label in model.model.get_labels()}
    return lambda text: base(model.predict(text)[0]), labels


def langid_py(languages: list[str]) -> Identify:
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model)  # its own instance: no global state changed
    identifier.set_languages(languages)
    return lambda text: identifier.classify(text)[0]


def lingua(languages: list[str], low_accuracy: bool = False) -> Identify:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    chosen = [getattr(IsoCode639_1, code.upper()) for code in languages]
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*chosen)
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def identify(text: str) -> str:
        found = detector.detect_language_of(text)
        return "" if found is None else found.iso_code_639_1.name.lower()

    return identify


def peer_languages() -> tuple[set[str], set[str]]:
    from langid.langid import LanguageIdentifier, model
    from lingua import Language

    langid_codes = set(LanguageIdentifier.from_modelstring(model).nb_classes)
    return langid_codes, {lang.iso_code_639_1.name.lower() for lang in Language.all()}


def per_language(examples: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """At most ``limit`` examples per label, chosen by hash (the same ones every run)."""
    taken: Counter[str] = Counter()
    chosen = []
    for label, text in sorted(examples, key=lambda ex: stable_hash("bench-langid", *ex)):
        if taken[label] < limit:
            taken[label] += 1
            chosen.append((label, text))
    return chosen


def accuracy(identify: Identify, examples: list[tuple[str, str]]) -> float:
    return sum(identify(text) == label for label, text in examples) / len(examples)


def speeds(identifiers: dict[str, Identify], texts: list[str]) -> dict[str, float]:
    """Documents per CPU second (one at a time), the best of ``ROUNDS`` rounds taken in turn: load from other
    work on a shared machine then hits every identifier alike."""
    for identify in identifiers.values():
        identify(texts[0])  # warm-up: lazy model loading is not measured
    best = dict.fromkeys(identifiers, 0.0)
    for _ in range(ROUNDS):
        for name, identify in identifiers.items():
            start = time.process_time()  # CPU time of this process: other jobs on the machine barely move it
            for text in texts:
                identify(text)
            best[name] = max(best[name], len(texts) / (time.process_time() - start))
    return best


def run() -> list[Row]:
    our_identify, our_labels = ours()
    langid_codes, lingua_codes = peer_languages()
    common = sorted(our_labels & langid_codes & lingua_codes)
    _, test_paras, test_pages = split(labelled_paragraphs())
    pages = [(base(lang), text[:MAX_CHARS]) for lang, text in test_pages if base(lang) in common]
    paras = [(base(lang), text[:MAX_CHARS]) for lang, text in test_paras if base(lang) in common]
    paras = per_language(paras, PARAGRAPHS_PER_LANG)
    identifiers = {
        "ours": our_identify,
        "langid.py 1.1.6": langid_py(common),
        "lingua 2.1 (high accuracy)": lingua(common),
        "lingua 2.1 (low accuracy mode)": lingua(common, low_accuracy=True),
    }
    rows = []
    for unit, examples in (("pages", pages), ("paragraphs", paras)):
        what = f"held-out {unit} ({len(examples):,}, {len(common)} languages)"
        correct = {name: accuracy(identify, examples) for name, identify in identifiers.items()}
        timed_texts = [text for _, text in per_language(examples, SPEED_PER_LANG[unit])]
        rate = speeds(identifiers, timed_texts)
        for name in list(identifiers)[1:]:
            rows.append(Row(f"accuracy, {what}", correct["ours"], name, correct[name], "fraction correct"))
        for name in list(identifiers)[1:]:
            speed_what = f"speed, {len(timed_texts):,} of those {unit}, one at a time, best of {ROUNDS}"
            rows.append(Row(speed_what, rate["ours"], name, rate[name], "docs per CPU second"))
    return rows

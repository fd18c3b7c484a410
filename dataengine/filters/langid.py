"""Language ID with fastText: the project's own model (trained on first use) or a user's lid.176.bin / GlotLID.

The language and its score become columns (``lang``, ``lang_score``); a text document whose language does not
match its source's (an untranslated English page in ``web_zh``) is rejected as ``langid:lang_mismatch`` — or, where
``langid.route`` names a source for its language, moved there (``langid:routed`` in its own source, a copy with
the other source's name and ``meta.routed_from`` going on) — and a matching one below the configured
``min_score`` as ``langid:low_score``.  Code is not language-identified.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from dataengine.config import SourceConfig
from dataengine.schema import reject_rows, set_column
from dataengine.shipped import ShippedModel, model_file

STAGE = "langid"
MAX_CHARS = 10_000

# ISO 639-3 (GlotLID's ``eng_Latn`` style) -> the ISO 639-1 codes our sources use, for the common languages.
ISO3_TO_1 = {
    "eng": "en", "cmn": "zh", "zho": "zh", "yue": "zh", "jpn": "ja", "kor": "ko", "deu": "de", "fra": "fr",
    "spa": "es", "ita": "it", "por": "pt", "rus": "ru", "nld": "nl", "pol": "pl", "tur": "tr", "vie": "vi",
    "ind": "id", "hin": "hi", "ell": "el", "ces": "cs", "swe": "sv", "dan": "da", "fin": "fi", "hun": "hu",
    "cat": "ca", "eus": "eu", "glg": "gl", "est": "et", "slk": "sk", "slv": "sl", "khm": "km", "arb": "ar",
}  # fmt: skip


def normalise_label(label: str) -> str:
    """``__label__en`` / ``__label__zho_Hant`` / ``__label__cmn_Hani`` -> ``en`` / ``zh-Hant`` / ``zh``."""
    code = label.removeprefix("__label__")
    if "_" not in code:
        return code
    lang, script = code.split("_", 1)
    lang = ISO3_TO_1.get(lang, lang)
    return f"{lang}-{script}" if lang == "zh" and script in ("Hans", "Hant") else lang


def matches(expected: str, predicted: str) -> bool:
    """``zh`` accepts ``zh-Hans`` and ``zh-Hant``; otherwise the codes must be equal."""
    return predicted == expected or predicted.startswith(expected + "-")


class LangIdModel:
    def __init__(self, path: Path | str | ShippedModel) -> None:
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model warning
        with model_file(path) as local:
            self.model = fasttext.load_model(local)

    def predict(self, text: str) -> tuple[str, float]:
        labels, scores = self.model.predict(text[:MAX_CHARS].replace("\n", " "), k=1)
        return normalise_label(labels[0]), float(np.clip(scores[0], 0.0, 1.0))


class LangIdTagger:
    """Ray Data callable class: tags ``lang``/``lang_score`` of every text document still in the running.

    Tagging is the model's work and is cached with the extracted documents; the decision (``langid_decide``)
    applies the thresholds afterwards, so changing ``min_score`` never reruns the model.
    """

    def __init__(self, model_path: str, sources: list[SourceConfig]) -> None:
        self.model = LangIdModel(model_path)
        self.expected = expected_languages(sources)

    def __call__(self, table: pa.Table) -> pa.Table:
        langs = table["lang"].to_pylist()
        scores: list[float | None] = [None] * table.num_rows
        rows = zip(table["source"].to_pylist(), table["text"].to_pylist(), table["reject"].to_pylist(), strict=True)
        for i, (source, text, prev) in enumerate(rows):
            if source in self.expected and prev is None and text:
                langs[i], score = self.model.predict(text)
                scores[i] = round(score, 4)
        table = set_column(table, "lang", pa.array(langs, pa.string()))
        return set_column(table, "lang_score", pa.array(scores, pa.float32()))


def expected_languages(sources: list[SourceConfig]) -> dict[str, str]:
    """source -> the language its text documents must be in (text sources that name one)."""
    return {s.name: s.lang for s in sources if s.filter_domain != "code" and s.lang}


ROUTED = f"{STAGE}:routed"


def langid_decide(
    table: pa.Table, expected: dict[str, str], min_score: float, route: dict[str, str] | None = None
) -> pa.Table:
    """Ray Data ``map_batches`` function: reject tagged documents in the wrong language or below ``min_score``;
    with ``route`` (language -> source), move a wrong-language document to the source of its language instead."""
    rejects: list[str | None] = [None] * table.num_rows
    details: list[str | None] = [None] * table.num_rows
    moved: dict[int, str] = {}  # row -> the source it moves to
    rows = zip(table["source"].to_pylist(), table["lang"].to_pylist(), table["lang_score"].to_pylist(), strict=True)
    for i, (source, lang, score) in enumerate(rows):
        if score is None or source not in expected:
            continue  # not tagged: code, a source without a language, or rejected before tagging
        if not matches(expected[source], lang):
            target = next((t for code, t in (route or {}).items() if matches(code, lang) and t != source), None)
            if target is not None and score >= min_score:
                moved[i] = target
                rejects[i], details[i] = ROUTED, f"to={target} predicted={lang} score={score:.3f}"
            else:
                rejects[i], details[i] = f"{STAGE}:lang_mismatch", f"predicted={lang} score={score:.3f}"
        elif score < min_score:
            rejects[i], details[i] = f"{STAGE}:low_score", f"{lang} score={score:.3f} < {min_score}"
    decided = reject_rows(table, rejects, details)
    return pa.concat_tables([decided, routed_copies(table, moved)]) if moved else decided


def routed_copies(table: pa.Table, moved: dict[int, str]) -> pa.Table:
    """The moved rows as documents of their new source: a stable id of that source, ``meta.routed_from``."""
    rows = table.take(pa.array(sorted(moved), pa.int64())).to_pylist()
    for row, target in zip(rows, (moved[i] for i in sorted(moved)), strict=True):
        meta = json.loads(row["meta"] or "{}")
        meta["routed_from"] = row["source"]
        row["id"] = f"{target}/{row['id'].split('/', 1)[-1]}"
        row["source"], row["meta"] = target, json.dumps(meta, ensure_ascii=False, sort_keys=True)
    return pa.Table.from_pylist(rows, schema=table.schema)

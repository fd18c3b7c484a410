"""Model-based quality: a fastText classifier per text language (en, zh), DCLM / FineWeb-Edu style.

The score is P(well-edited prose) from the project's own models (``quality_train``: trained on first use from
registry data, cached).  Tag first, threshold later: ``QualityTagger`` stores the score as the
``quality_score`` column once (cached with the build's tags), ``quality_decide`` applies per-language thresholds
from the config (``quality_model.min_score``), so a new threshold reruns no model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_sums
from dataengine.cache import cache_dir, cached_model
from dataengine.config import QUALITY_LANGS as LANGS
from dataengine.schema import reject_rows, set_column
from dataengine.shipped import ShippedModel, model_file

STAGE = "quality_model"
MODEL_VERSION = "quality-v1"
MAX_CHARS = 10_000  # scored prefix of a document
POSITIVE, NEGATIVE = "__label__hq", "__label__lq"
SPACES = re.compile(r"\s+")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def model_dir(lang: str) -> Path:
    return cache_dir() / "models" / MODEL_VERSION / lang


def prepare(text: str, lang: str) -> str:
    """One fastText line: whitespace collapsed, lower-cased; Chinese split into characters (fastText splits on
    spaces, and word bigrams then become character bigrams)."""
    text = SPACES.sub(" ", text[:MAX_CHARS]).strip().lower()
    return " ".join(CJK.sub(r" \g<0> ", text).split()) if lang == "zh" else text


def default_model(lang: str) -> Path:
    """The cached model of ``lang`` (``en`` or ``zh``), trained on first use (``cache.cached_model``)."""
    from dataengine.filters.quality_train import train_model

    return cached_model(model_dir(lang), lambda: train_model(lang))


class QualityModel:
    def __init__(self, path: Path | str | ShippedModel, lang: str = "en") -> None:
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model warning
        with model_file(path) as local:
            self.model = fasttext.load_model(local)
        self.lang = lang

    def score(self, texts: list[str]) -> np.ndarray:
        """P(positive) per text, float32 in [0, 1]."""
        if not texts:
            return np.zeros(0, np.float32)
        labels, probs = self.model.predict([prepare(t, self.lang) for t in texts], k=2)
        return np.array(
            [dict(zip(ls, ps, strict=True)).get(POSITIVE, 0.0) for ls, ps in zip(labels, probs, strict=True)],
            np.float32,
        ).clip(0.0, 1.0)


def base_lang(lang: str) -> str:
    """``zh-Hans``/``zh-Hant`` -> ``zh``; a language without a model is a ``ValueError``."""
    code = lang.split("-", 1)[0]
    if code not in LANGS:
        raise ValueError(f"no quality model for language {lang!r}; known: {', '.join(LANGS)}")
    return code


class QualityTagger:
    """Ray Data callable class: tags ``quality_score`` of every kept document whose ``lang`` has a model.

    The score is stored once with the tagged documents; ``quality_decide`` applies the thresholds afterwards.
    ``model_paths`` (language -> model file, or its bytes shipped through the object store) come from the driver,
    which trains missing models first.
    """

    def __init__(self, model_paths: dict[str, str | ShippedModel]) -> None:
        self.models = {base_lang(lang): QualityModel(path, base_lang(lang)) for lang, path in model_paths.items()}

    def __call__(self, table: pa.Table) -> pa.Table:
        scores = np.full(table.num_rows, np.nan, np.float32)
        texts = table["text"].to_pylist()
        todo: dict[str, list[int]] = {}
        rows = zip(table["lang"].to_pylist(), texts, table["reject"].to_pylist(), strict=True)
        for i, (lang, text, prev) in enumerate(rows):
            code = (lang or "").split("-", 1)[0]
            if prev is None and text and code in self.models:
                todo.setdefault(code, []).append(i)
        for lang, rows_of_lang in todo.items():
            scores[rows_of_lang] = self.models[lang].score([texts[i] for i in rows_of_lang]).round(4)
        return set_column(table, "quality_score", pa.array(scores, pa.float32(), mask=np.isnan(scores)))


def quality_decide(table: pa.Table, min_score: dict[str, float]) -> pa.Table:
    """Ray Data ``map_batches`` function: ``quality_model:low_score`` for tagged documents below their language's
    ``min_score`` (a language not named is never rejected)."""
    rejects: list[str | None] = [None] * table.num_rows
    details: list[str | None] = [None] * table.num_rows
    rows = zip(table["lang"].to_pylist(), table["quality_score"].to_pylist(), strict=True)
    for i, (lang, score) in enumerate(rows):
        threshold = min_score.get((lang or "").split("-", 1)[0])
        if score is not None and threshold is not None and score < threshold:
            rejects[i], details[i] = f"{STAGE}:low_score", f"{lang} score={score:.3f} < {threshold}"
    return reject_rows(table, rejects, details)


SCORE_BINS = 10_000  # quantiles of the score summary are exact to 1/SCORE_BINS


def _score_bins(table: pa.Table) -> pa.Table:
    scored = table.filter(pc.is_valid(table["quality_score"]))
    scores = scored["quality_score"].to_numpy(zero_copy_only=False)
    bins = np.minimum((scores * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
    side = pc.if_else(pc.is_null(scored["reject"]), "kept", "rejected")
    return pa.table({"source": scored["source"], "side": side, "bin": bins,
                     "docs": pa.repeat(pa.scalar(1, pa.int64()), scored.num_rows)})  # fmt: skip


def quality_summary(docs: ray.data.Dataset) -> dict[str, dict[str, dict[str, float]]]:
    """Per source, the score quantiles of documents the cleaning stages kept beside those they rejected: a
    check that the rules and the classifier agree (rejected documents should score lower), and a guide for
    choosing ``min_score``.  Sources with no scored document are left out.  Computed from a histogram of the
    scores (``SCORE_BINS`` bins per source and side), so no score reaches the driver."""
    hist = grouped_sums(docs, _score_bins, ["source", "side", "bin"], ["docs"])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (source, side), part in _groups(hist).items():
        bins, counts = np.asarray(part["bin"]), np.cumsum(part["docs"])
        n = int(counts[-1])
        quantiles = {f"p{q}": round((bins[np.searchsorted(counts, q / 100 * n)] + 0.5) / SCORE_BINS, 4)
                     for q in (10, 50, 90)}  # fmt: skip
        out.setdefault(source, {})[side] = {"docs": n, **quantiles}
    return dict(sorted(out.items()))


def _groups(hist: pa.Table) -> dict[tuple[str, str], dict[str, list[int]]]:
    groups: dict[tuple[str, str], dict[str, list[int]]] = {}
    for row in hist.sort_by([("source", "ascending"), ("side", "ascending"), ("bin", "ascending")]).to_pylist():
        part = groups.setdefault((row["source"], row["side"]), {"bin": [], "docs": []})
        part["bin"].append(row["bin"])
        part["docs"].append(row["docs"])
    return groups

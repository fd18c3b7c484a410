"""The fastText quality classifier: trained on registry data in a subprocess (once, into the cache), scores
held-out prose above held-out logs and catalogs, retrains byte-identically, and tags documents
once so that a threshold decides later."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dataengine.config import FilterSpec
from dataengine.filters import build_rule
from dataengine.filters.lid_train import _train_in_subprocess
from dataengine.filters.quality_model import (
    POSITIVE,
    QualityModel,
    QualityTagger,
    base_lang,
    default_model,
    quality_decide,
)
from dataengine.filters.quality_train import FASTTEXT_ARGS, HELD_OUT
from dataengine.schema import doc_row, rows_to_table, unit_fraction
from tests.corpus import ZH_SENTENCES

PROSE_ZH = "".join(ZH_SENTENCES)
MENU_ZH = "文件 编辑 视图 插入 格式 工具 窗口 帮助 打开 保存 另存为 关闭 退出 " * 5


@pytest.fixture(scope="module", params=["en", "zh"])
def lang_model(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, default_model(request.param)  # trained on first use (about a minute), then cached


def test_held_out_accuracy_recorded_beside_the_model(lang_model: tuple[str, Path]) -> None:
    lang, path = lang_model
    report = json.loads((path.parent / "eval.json").read_text())
    assert report["lang"] == lang and report["held_out_documents"] >= 30
    assert report["held_out_accuracy"] >= 0.85


def test_held_out_prose_scores_above_logs_and_catalogs(lang_model: tuple[str, Path]) -> None:
    lang, path = lang_model
    held = [json.loads(line) for line in (path.parent / "held_out.jsonl").read_text().splitlines()]
    assert all(unit_fraction("quality-held-out", ex["doc"]) < HELD_OUT for ex in held)
    scores = QualityModel(path, lang).score([ex["text"] for ex in held])
    positive = np.array([ex["label"] == POSITIVE for ex in held])
    assert np.median(scores[positive]) > 0.8 and np.median(scores[~positive]) < 0.2
    auc = (scores[positive][:, None] > scores[~positive][None, :]).mean()  # P(positive outranks negative)
    assert auc >= 0.9


def test_retraining_gives_the_same_bytes(lang_model: tuple[str, Path], tmp_path: Path) -> None:
    """One thread and a fixed seed in a fresh process: the cached model is reproduced byte for byte."""
    _, path = lang_model
    _train_in_subprocess(path.parent / "train.txt", tmp_path / "again.bin", FASTTEXT_ARGS)
    assert (tmp_path / "again.bin").read_bytes() == path.read_bytes()


def test_model_scores_prose_above_a_menu_and_names_unknown_languages() -> None:
    model = QualityModel(default_model("zh"), base_lang("zh-Hans"))
    scores = model.score([PROSE_ZH, MENU_ZH, PROSE_ZH])
    assert scores.dtype == np.float32 and scores[0] == scores[2] and scores[0] > 0.5 > scores[1]
    with pytest.raises(ValueError, match="no quality model for language 'fr'"):
        base_lang("fr")


def test_a_quality_model_filter_entry_points_to_the_threshold() -> None:
    """The score is a tag thresholded by ``quality_model.min_score``, not a rule of the filter chain."""
    with pytest.raises(ValueError, match=r"quality_model: \{min_score"):
        build_rule(FilterSpec(name="quality_model", domains=["en"]))


def test_tag_then_decide() -> None:
    """Tagging scores kept en/zh documents once; the threshold is applied afterwards, per language."""
    rows = [
        doc_row(source="web_zh", kind="html", url="a", text=PROSE_ZH, lang="zh-Hans"),
        doc_row(source="web_zh", kind="html", url="b", text=MENU_ZH, lang="zh-Hant"),
        doc_row(source="web_zh", kind="html", url="c", text=MENU_ZH, lang="zh", reject="langid:low_score"),
        doc_row(source="code", kind="code", url="d.py", text="print(1)\n", lang="python"),
    ]
    tagged = QualityTagger({"zh": str(default_model("zh"))})(rows_to_table(rows))
    scores = tagged["quality_score"].to_pylist()
    assert scores[0] > 0.5 > scores[1] and scores[2] is None and scores[3] is None
    assert tagged["quality_score"].type == pa.float32()
    decided = quality_decide(tagged, {"zh": 0.5})
    assert decided["reject"].to_pylist() == [None, "quality_model:low_score", "langid:low_score", None]
    assert quality_decide(tagged, {"en": 0.5})["reject"].to_pylist()[1] is None

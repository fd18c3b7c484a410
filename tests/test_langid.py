"""Language ID: the project's fastText model on held-out registry pages, label mapping for lid.176/GlotLID
models, and the stage's rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from dataengine.config import SourceConfig
from dataengine.filters.langid import (
    LangIdModel,
    LangIdTagger,
    expected_languages,
    langid_decide,
    matches,
    normalise_label,
)
from dataengine.filters.lid_train import (
    HELD_OUT,
    LID_YAML,
    _train_in_subprocess,
    default_model,
    help_root,
    translated_paragraphs,
)
from dataengine.schema import doc_row, rows_to_table, unit_fraction
from tests.corpus import LICENSES, ZH_SENTENCES

LANGS = ["en", "zh-Hans", "zh-Hant", "ja", "ko", "de", "ru", "hi"]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return default_model()


def test_label_mapping_for_our_lid176_and_glotlid_labels() -> None:
    assert normalise_label("__label__en") == "en"
    assert normalise_label("__label__zh-Hant") == "zh-Hant"
    assert normalise_label("__label__eng_Latn") == "en"
    assert normalise_label("__label__cmn_Hani") == "zh"
    assert normalise_label("__label__zho_Hant") == "zh-Hant"
    assert matches("zh", "zh-Hans") and matches("zh", "zh") and not matches("zh", "ja")


def test_held_out_accuracy_recorded_beside_the_model(model_path: Path) -> None:
    report = json.loads((model_path.parent / "eval.json").read_text())
    assert len(report["languages"]) >= 20 and set(LANGS) <= set(report["languages"])
    assert report["page_accuracy"]["overall"] >= 0.97
    assert all(report["page_accuracy"][lang] >= 0.95 for lang in LANGS)


def test_held_out_pages_of_eight_languages(model_path: Path) -> None:
    import yaml

    spec = yaml.safe_load(LID_YAML.read_text())
    packages, reference = spec["languages"], help_root(spec["reference"])
    model = LangIdModel(model_path)
    for lang in LANGS:
        root = help_root(packages[lang])
        held = [
            p
            for p in sorted(root.rglob("*.html"))
            if unit_fraction("lid-held-out", p.relative_to(root).as_posix()) < HELD_OUT
        ]
        compare_to = None if lang == "en" else reference
        pages = [" ".join(translated_paragraphs(p, root, compare_to)) for p in held[:400]]
        pages = [t for t in pages if len(t) > 200][:30]
        right = sum(model.predict(t)[0] == lang for t in pages)
        assert right >= 0.9 * len(pages), (lang, right, len(pages))


def test_stage_rejects_wrong_language_and_skips_code(model_path: Path) -> None:
    sources = [
        SourceConfig(name="web_zh", kind="jsonl", paths=["x"], lang="zh"),
        SourceConfig(name="code", kind="git", paths=["x"]),
    ]
    english = (LICENSES / "Apache-2.0").read_text()[:3000]
    rows = [
        doc_row(source="web_zh", kind="text", url="1", text="".join(ZH_SENTENCES)),
        doc_row(source="web_zh", kind="text", url="2", text=english),
        doc_row(source="code", kind="text", url="3", text="def f(x):\n    return x\n", lang="python"),
    ]
    tagged = LangIdTagger(str(model_path), sources)(rows_to_table(rows))
    assert tagged["reject"].null_count == 3  # tagging decides nothing: thresholds come after, from the cache
    out = langid_decide(tagged, expected_languages(sources), min_score=0.0).to_pylist()
    assert out[0]["reject"] is None and out[0]["lang"] == "zh-Hans" and out[0]["lang_score"] > 0.5
    assert out[1]["reject"] == "langid:lang_mismatch" and out[1]["reject_detail"].startswith("predicted=en")
    assert out[2]["lang"] == "python" and out[2]["lang_score"] is None
    strict = langid_decide(tagged, expected_languages(sources), min_score=1.0).to_pylist()  # same tags, new threshold
    assert strict[0]["reject"] == "langid:low_score" and strict[2]["reject"] is None


def test_route_moves_a_page_to_the_source_of_its_language(model_path: Path) -> None:
    """``langid.route``: the English page found in web_zh goes on as a web_en document, counted in both."""
    from dataengine.report.collect import _routed

    sources = [
        SourceConfig(name="web_zh", kind="jsonl", paths=["x"], lang="zh"),
        SourceConfig(name="web_en", kind="jsonl", paths=["x"], lang="en"),
    ]
    english = (LICENSES / "Apache-2.0").read_text()[:3000]
    rows = [
        doc_row(source="web_zh", kind="text", url="1", text="".join(ZH_SENTENCES)),
        doc_row(source="web_zh", kind="text", url="2", text=english, meta={"package": "p"}),
    ]
    tagged = LangIdTagger(str(model_path), sources)(rows_to_table(rows))
    out = langid_decide(tagged, expected_languages(sources), min_score=0.0, route={"en": "web_en"}).to_pylist()
    assert [(r["source"], r["reject"]) for r in out] == [
        ("web_zh", None),
        ("web_zh", "langid:routed"),
        ("web_en", None),
    ]
    moved = out[2]
    assert moved["text"] == english and moved["id"] == "web_en/" + out[1]["id"].split("/", 1)[1]
    assert json.loads(moved["meta"]) == {"package": "p", "routed_from": "web_zh"}
    assert out[1]["reject_detail"].startswith("to=web_en predicted=en")
    counts = _routed(pa.Table.from_pylist(out, schema=tagged.schema)).select(["source", "kind", "docs"])
    assert counts.to_pylist() == [{"source": "web_en", "kind": "routed", "docs": 1}]
    unrouted = langid_decide(tagged, expected_languages(sources), min_score=0.0, route={"ja": "web_en"})
    assert unrouted["reject"].to_pylist() == [None, "langid:lang_mismatch"]  # no route for English: rejected


def test_a_glotlid_style_user_model_and_deterministic_training(tmp_path: Path) -> None:
    english = [p.replace("\n", " ") for p in (LICENSES / "GPL-3").read_text().split("\n\n") if len(p) > 40]
    lines = [f"__label__eng_Latn {p}" for p in english[::2]]
    lines += [f"__label__cmn_Hani {a}{b}" for a in ZH_SENTENCES for b in ZH_SENTENCES]
    train = tmp_path / "train.txt"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _train_in_subprocess(train, tmp_path / "a.bin")
    _train_in_subprocess(train, tmp_path / "b.bin")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    model = LangIdModel(tmp_path / "a.bin")
    assert model.predict(english[1])[0] == "en"
    assert model.predict("".join(reversed(ZH_SENTENCES)))[0] == "zh"


def test_bench_peers_run_offline_and_labels_map_to_shared_codes() -> None:
    """``python -m bench langid``'s peers ship their models (nothing is downloaded) and answer in the codes
    ours is compared with (``zh-Hans``/``zh-Hant`` -> ``zh``)."""
    from bench.langid import base, langid_py, lingua, ours

    english = (LICENSES / "Apache-2.0").read_text()[:2000]
    chinese = "".join(ZH_SENTENCES)
    identify, labels = ours()
    assert {"en", "zh", "ja", "de"} <= labels and base("zh-Hant") == "zh" and base("pt") == "pt"
    for peer in (langid_py(["de", "en", "ja", "zh"]), lingua(["de", "en", "ja", "zh"]), identify):
        assert peer(english) == "en" and peer(chinese) == "zh"


def test_a_model_shipped_through_the_object_store_tags_as_the_file_does(model_path: Path, ray_local: None) -> None:
    """On a cluster workers never open the driver's model path: the bytes travel through Ray and are loaded from a
    private temporary file that is gone once the model is in memory."""
    import glob
    import tempfile

    import ray
    import ray.data

    from dataengine.shipped import ShippedModel

    sources = [SourceConfig(name="web_zh", kind="jsonl", paths=["x"], lang="zh")]
    rows = [doc_row(source="web_zh", kind="text", url=str(i), text=t) for i, t in enumerate(ZH_SENTENCES[:4])]
    table = rows_to_table(rows)
    shipped = ShippedModel.put(model_path)
    via_ray = ray.data.from_arrow(table).map_batches(
        LangIdTagger, fn_constructor_kwargs={"model_path": shipped, "sources": sources}, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5,
    ).take_all()  # fmt: skip
    local = LangIdTagger(str(model_path), sources)(table).to_pylist()
    assert [(r["lang"], r["lang_score"]) for r in via_ray] == [(r["lang"], r["lang_score"]) for r in local]
    assert not glob.glob(f"{tempfile.gettempdir()}/dataengine-*-{model_path.name}")  # no copy left behind
    assert ray.get(shipped.ref) == model_path.read_bytes()

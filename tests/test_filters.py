"""Quality rules: each names its reason, each threshold has a document just inside and one just outside it,
the English rules decide as datatrove does, and the Chinese and code rules judge real files of the sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from dataengine.config import FilterSpec, PipelineConfig, SourceConfig
from dataengine.extract.html import extract_html
from dataengine.filters import QualityStage, build_rule
from dataengine.filters.rules_code import CodeFiles, CodeLines
from dataengine.filters.rules_text import (
    C4Quality,
    CjkRatio,
    FineWebQuality,
    GopherQuality,
    GopherRepetition,
    MinLength,
)
from dataengine.filters.rules_zh import OpenccT2S, ZhBoilerplate, ZhQuality, ZhRepetition, repeated_ngram_share
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.sample import debian_dir, ensure_packages
from tests.corpus import LICENSES, ZH_SENTENCES

ZH_PAGES = {
    "tw": "debian-reference-zh-tw/usr/share/debian-reference/ch01.zh-tw.html",
    "tw_help": "libreoffice-help-zh-tw/usr/share/libreoffice/help/zh-TW/text/swriter/guide/arrange_chapters.html",
    "cn": "libreoffice-help-zh-cn/usr/share/libreoffice/help/zh-CN/text/swriter/guide/arrange_chapters.html",
    "ref": "debian-reference-zh-cn/usr/share/debian-reference/ch01.zh-cn.html",
}
# (file in the unpacked packages, its path in its repository as the build's meta has it)
CODE_FILES = {
    "minified": ("node-axios/usr/share/nodejs/axios/dist/axios.min.js", "dist/axios.min.js"),
    "protobuf": (
        "golang-github-docker-docker-dev/usr/share/gocode/src/github.com/moby/buildkit/solver/pb/ops.pb.go",
        "solver/pb/ops.pb.go",
    ),
    "lock": ("golang-github-stretchr-testify-dev/usr/share/gocode/src/github.com/stretchr/testify/go.sum", "go.sum"),
    "vendored": (
        "python3-django/usr/lib/python3/dist-packages/django/contrib/admin/static/admin/js/vendor/xregexp/xregexp.js",
        "contrib/admin/static/admin/js/vendor/xregexp/xregexp.js",
    ),
    "python": ("libpython3.11-stdlib/usr/lib/python3.11/json/decoder.py", "json/decoder.py"),
}


@pytest.fixture(scope="module")
def debian() -> Path:
    """The unpacked Debian packages these tests read (fetched with apt-get on first use, then cached)."""
    names = {p.split("/")[0] for p in [*ZH_PAGES.values(), *(f for f, _ in CODE_FILES.values())]}
    ensure_packages(sorted(names), progress=False)
    return debian_dir() / "root"


@pytest.fixture(scope="module")
def zh_pages(debian: Path) -> dict[str, str]:
    pages = {}
    for key, rel in ZH_PAGES.items():
        text, _, reason = extract_html((debian / rel).read_bytes(), f"http://sample.local/{rel}")
        assert reason is None and text
        pages[key] = text
    return pages


def licence_lines() -> list[str]:
    """Real English sentences, one per line, from the licences Debian ships."""
    text = (LICENSES / "GPL-3").read_text()
    sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", " ".join(text.split())) if len(s.split()) >= 6]
    return list(dict.fromkeys(sentences))


# --- English: datatrove's filters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (GopherQuality, GopherQualityFilter),
        (GopherRepetition, GopherRepetitionFilter),
        (C4Quality, C4QualityFilter),
        (FineWebQuality, FineWebQualityFilter),
    ],
)
def test_english_rules_agree_with_datatrove_on_real_text(ours, theirs) -> None:
    texts = [p.read_text(errors="replace") for p in sorted(LICENSES.iterdir()) if p.is_file()]
    texts += ["word " * 30, "short", "\n".join(f"- item {i}" for i in range(200)), "\n".join(licence_lines()[:40])]
    rule, peer = ours(), theirs()
    for text in texts:
        expected = peer.filter(Document(text=text, id=""))
        assert rule(text) == (None if expected is True else expected[1])


def test_c4_judges_without_editing_the_text() -> None:
    text = "\n".join(licence_lines()[:8] + ["Menu", "Enable javascript to see this page."])
    stage = QualityStage(
        [FilterSpec(name="c4_quality", domains=["en"])], [SourceConfig(name="en", kind="jsonl", paths=[], lang="en")]
    )
    out = stage(rows_to_table([doc_row(source="en", kind="text", url="u", text=text)]))
    assert out["reject"].to_pylist() == [None]
    assert out["text"].to_pylist() == [text]  # C4 would drop the last two lines; we only decide


def test_gopher_repetition_duplicate_line_threshold() -> None:
    lines = licence_lines()[:10]
    rule = GopherRepetition(
        dup_para_frac=None, dup_para_char_frac=None, dup_line_char_frac=None, top_n_grams=[], dup_n_grams=[]
    )
    inside = lines[:7] + [lines[0]] * 3  # 3 of 10 lines repeat: 0.3, not above 0.3
    outside = lines[:6] + [lines[0]] * 4
    assert rule("\n".join(inside)) is None
    assert rule("\n".join(outside)) == "dup_line_frac"


def test_c4_needs_five_sentences_and_no_curly_bracket() -> None:
    lines = licence_lines()
    assert C4Quality()("\n".join(lines[:5])) is None
    assert C4Quality()("\n".join(lines[:4])) == "too_few_sentences"
    assert C4Quality()("\n".join([*lines[:5], "Call f() { return 1; } here."])) == "curly_bracket"


def test_fineweb_share_of_lines_ending_in_punctuation() -> None:
    lines = [line.rstrip(".") for line in licence_lines()[:25]]
    inside = [line + "." if i < 3 else line for i, line in enumerate(lines)]  # 3/25 = 0.12
    outside = [line + "." if i < 2 else line for i, line in enumerate(lines)]
    assert FineWebQuality()("\n".join(inside)) is None
    assert FineWebQuality()("\n".join(outside)) == "line_punct_ratio"


def test_gopher_quality_minimum_words() -> None:
    words = re.sub(r"[^\w\s]", "", " ".join(licence_lines())).split()
    assert GopherQuality()(" ".join(words[:50])) is None
    assert GopherQuality()(" ".join(words[:49])) == "gopher_short_doc"


def test_min_length_counts_non_space_characters() -> None:
    assert MinLength(10)("a b c d e f g h i") == "too_short"
    assert MinLength(5)("abcde") is None


def test_cjk_ratio_threshold() -> None:
    assert CjkRatio(0.3)("中文字" + "a" * 7) is None
    assert CjkRatio(0.3)("中文字" + "a" * 8) == "low_cjk_ratio"


# --- Chinese -----------------------------------------------------------------------------------------


def test_traditional_page_becomes_simplified_and_keeps_its_script(zh_pages: dict[str, str]) -> None:
    rule = OpenccT2S()
    text, meta = rule.edit(zh_pages["tw"])
    assert meta == {"zh_script": "Hant"}
    assert "當你學習一個電腦系統" in zh_pages["tw"] and "当你学习一个电脑系统" in text
    text, meta = rule.edit(zh_pages["cn"])
    assert meta == {"zh_script": "Hans"} and text == zh_pages["cn"]


def test_real_chinese_pages_pass_the_chinese_rules(zh_pages: dict[str, str]) -> None:
    for key in ("cn", "ref", "tw"):
        text = OpenccT2S().edit(zh_pages[key])[0]
        assert ZhQuality()(text) is None
        assert ZhRepetition()(text) is None
    # this zh-TW help page is mostly untranslated English: a real page the CJK share catches
    assert ZhQuality()(OpenccT2S().edit(zh_pages["tw_help"])[0]) == "low_cjk_ratio"


def test_zh_quality_thresholds() -> None:
    body = "".join(ZH_SENTENCES)  # 12 sentences ending in 。
    assert ZhQuality()(body[:199] + "。") is None  # 200 characters
    assert ZhQuality()(body[:198] + "。") == "too_short"
    cjk = "中" * 60 + "a" * 140  # 0.3 CJK
    assert ZhQuality(min_line_punct_ratio=None)(cjk) is None
    assert ZhQuality(min_line_punct_ratio=None)(cjk[1:] + "a") == "low_cjk_ratio"
    no_lines = ZhQuality(min_line_punct_ratio=None)
    assert no_lines("中" * 130 + "，" * 70) is None  # 0.35 punctuation
    assert no_lines("中" * 129 + "，" * 71) == "punct_ratio"
    symbols = "中" * 180 + "=" * 20  # 0.1 symbols (not punctuation: "=" is a math symbol)
    assert ZhQuality(min_line_punct_ratio=None)(symbols) is None
    assert ZhQuality(min_line_punct_ratio=None)("中" * 179 + "=" * 21) == "symbol_ratio"


def test_zh_short_lines_and_unpunctuated_lines() -> None:
    ten = ["数据质量很重要吗？是的", "好"]  # 11 + 1 characters over 2 lines: average 6
    assert ZhQuality(min_chars=None)("\n".join(["数据质量和多样性同样重要。"] * 2)) is None
    assert ZhQuality(min_chars=None)("\n".join(ten)) == "short_lines"
    lines = [s.rstrip("。") for s in ZH_SENTENCES] * 3  # 36 lines
    inside = "\n".join(s + "。" if i < 4 else s for i, s in enumerate(lines))  # 4/36 = 0.111
    outside = "\n".join(s + "。" if i < 3 else s for i, s in enumerate(lines))  # 3/36 = 0.083
    assert ZhQuality()(inside) is None
    assert ZhQuality()(outside) == "line_punct_ratio"


def test_zh_repetition_lines_and_ngrams() -> None:
    rule = ZhRepetition(top_n_grams=[], dup_n_grams=[], max_repeated_ngram_share=None, dup_line_char_frac=None)
    lines = ZH_SENTENCES[:7]
    assert rule("\n".join(lines[:5] + [lines[0]] * 2)) is None  # 2/7 = 0.286, FineWeb-2 cmn allows 0.287
    assert rule("\n".join(lines[:7] + [lines[0]] * 3)) == "dup_line_frac"  # 3/10
    ad = "点击这里购买最新款手机只要九十九元"
    assert ZhRepetition()("".join(ZH_SENTENCES) + ad) is None
    assert ZhRepetition()("".join(ZH_SENTENCES) + ad * 12) == "duplicated_10_n_grams"  # an ad pasted 12 times


def test_evalweb_repeated_ngram_share() -> None:
    unique = "".join(ZH_SENTENCES)
    assert repeated_ngram_share(unique, 13) == 0.0
    half = unique[:300] + unique[:300]
    assert repeated_ngram_share(half, 13) > 0.5
    rule = ZhRepetition(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
                        top_n_grams=[], dup_n_grams=[])  # fmt: skip
    assert rule(unique) is None
    assert rule(half) == "repeated_ngrams"


def test_boilerplate_lines_are_removed_and_counted(zh_pages: dict[str, str]) -> None:
    nav = "首页 > 帮助 > 文字文档"
    legal = "版权所有 " + "某" * 35  # 40 characters
    long_line = "版权所有 " + "某" * 36  # 41: a sentence that mentions copyright, kept
    row = "| 命令 | 说明 |"  # a table row, not a menu
    shell = "$ lsof |grep bar|grep less"  # lines of the sample that look like menus but are code and prose
    prose = "移到文档的上一页。此功能仅在打印预览时可用。"
    text = "\n".join([nav, zh_pages["cn"], legal, long_line, row, shell, prose, "上一页 | 下一页"])
    cleaned, meta = ZhBoilerplate(max_chars=40).edit(text)
    assert meta == {"zh_boilerplate_lines": 3}
    assert cleaned == "\n".join([zh_pages["cn"], long_line, row, shell, prose])
    assert ZhBoilerplate().edit(zh_pages["cn"]) == (zh_pages["cn"], {})


# --- code ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [("minified", "minified"), ("protobuf", "generated_protobuf"), ("lock", "lock_file"), ("vendored", "vendored")],
)
def test_real_files_rejected_with_their_reason(debian: Path, key: str, reason: str) -> None:
    file, repo_path = CODE_FILES[key]
    assert CodeFiles()((debian / file).read_text(encoding="utf-8"), repo_path) == reason


def test_real_source_file_is_kept(debian: Path) -> None:
    file, repo_path = CODE_FILES["python"]
    text = (debian / file).read_text(encoding="utf-8")
    assert CodeFiles()(text, repo_path) is None
    assert CodeLines()(text) is None


def test_vendored_matches_whole_directory_names() -> None:
    assert CodeFiles()("import os\n", "lib/venv/__init__.py") is None  # the standard library's venv package
    assert CodeFiles()("import os\n", "lib/.venv/x.py") == "vendored"
    assert CodeFiles()("x = 1\n", "web/node_modules/lodash/index.js") == "vendored"


def test_data_file_sizes_after_starcoder() -> None:
    rule = CodeFiles()
    assert rule("{" + "1" * 48 + "}", "a.json") is None  # 50 characters
    assert rule("{" + "1" * 47 + "}", "a.json") == "data_file_size"
    assert rule("a: " + "b" * 4997, "c.yaml") is None  # 5,000
    assert rule("a: " + "b" * 4998, "c.yml") == "data_file_size"
    assert rule("a,b\n1,2\n", "t.csv") == "data_file"


def test_minified_share_and_size_cap() -> None:
    rule = CodeFiles(minified_line_length=500, minified_char_share=0.5, max_chars=10_000)
    code = "var a=1;" * 63 + "\n"  # one 504-character line
    body = "x = 1;\n" * 72  # 504 characters in short lines
    assert rule(code + body[:504], "app.js") is None  # the long line holds 504 of 1,009 characters
    assert rule(code + body[:503], "app.js") == "minified"  # 504 of 1,008: half
    assert rule("x = 1\n" * 1666, "big.py") is None  # 9,996 characters
    assert rule("x = 1\n" * 1667, "big.py") == "too_large"


def test_code_lines_thresholds() -> None:
    rule = CodeLines()
    short = "x = 1\n" * 20
    assert rule("x = '" + "a" * 994 + "'\n" + short) is None  # a line of 1,000 characters
    assert rule("x = '" + "a" * 995 + "'\n" + short) == "max_line_length"
    assert rule(("y" * 100 + "\n") * 3) is None
    assert rule(("y" * 101 + "\n") * 3) == "avg_line_length"
    assert rule("a" * 25 + "{" * 75) is None  # alphanumeric fraction 0.25
    assert rule("a" * 24 + "{" * 76) == "low_alnum_fraction"
    assert rule("# Code generated by protoc-gen-go. DO NOT EDIT.\npackage pb\n") == "auto_generated"
    assert rule("\n" * 5 + "# generated by hand\n") is None  # the header is the first 5 lines


# --- the stage -----------------------------------------------------------------------------------------


def test_quality_stage_applies_rules_by_domain_and_names_the_filter() -> None:
    sources = [
        SourceConfig(name="en", kind="jsonl", paths=["x"], lang="en"),
        SourceConfig(name="zh", kind="jsonl", paths=["x"], lang="zh"),
    ]
    filters = [
        FilterSpec(name="min_length", domains=["en"], params={"min_chars": 20}),
        FilterSpec(name="cjk_ratio", domains=["zh"]),
    ]
    rows = [
        doc_row(source="en", kind="text", url="1", text="too short"),
        doc_row(source="zh", kind="text", url="2", text="too short but not judged by length"),
        doc_row(source="zh", kind="text", url="3", text="".join(ZH_SENTENCES)),
    ]
    out = QualityStage(filters, sources)(rows_to_table(rows))
    assert out["reject"].to_pylist() == ["min_length:too_short", "cjk_ratio:low_cjk_ratio", None]


def test_stage_normalises_chinese_and_passes_paths_to_code_rules(zh_pages: dict[str, str]) -> None:
    sources = [
        SourceConfig(name="zh", kind="jsonl", paths=[], lang="zh"),
        SourceConfig(name="code", kind="git", paths=[]),
    ]
    filters = [f for f in PipelineConfig().filters if {"zh", "code"} & set(f.domains)]
    rows = [
        doc_row(source="zh", kind="text", url="a", text=zh_pages["tw"]),
        doc_row(
            source="code",
            kind="code",
            url="r/go.sum",
            text="golang.org/x/sys v0.1.0 h1:abc=\n" * 20,
            meta={"path": "go.sum"},
        ),
        doc_row(
            source="code",
            kind="code",
            url="r/x.py",
            text="import os\n\n\ndef main():\n    return os.getcwd()\n" * 8,
            meta={"path": "x.py"},
        ),
    ]
    out = QualityStage(filters, sources)(rows_to_table(rows))
    assert out["reject"].to_pylist() == [None, "code_files:lock_file", None]
    text, meta = out["text"][0].as_py(), json.loads(out["meta"][0].as_py())
    assert meta["zh_script"] == "Hant" and "当你学习一个电脑系统" in text


def test_default_chain_builds() -> None:
    for spec in PipelineConfig().filters:
        build_rule(spec)


def test_unknown_filter_and_bad_threshold_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="known filters: .*gopher_quality"):
        build_rule(FilterSpec(name="perplexity", domains=["en"]))
    with pytest.raises(ValueError, match="bad parameters"):
        build_rule(FilterSpec(name="min_length", domains=["en"], params={"minimum": 3}))

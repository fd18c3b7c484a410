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
from datatrove.utils.text import split_into_sentences, split_into_words

from dataengine.config import FilterSpec, PipelineConfig, SourceConfig
from dataengine.extract.html import extract_html
from dataengine.filters import FILTERS, QualityStage, build_rule
from dataengine.filters.rules_code import CodeFiles, CodeLines
from dataengine.filters.rules_en import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from dataengine.filters.rules_text import CjkRatio, DatatroveC4Quality, MinLength
from dataengine.filters.rules_zh import (
    WORD,
    OpenccT2S,
    WordGrams,
    ZhBoilerplate,
    ZhQuality,
    ZhRepetition,
    repeated_ngram_shares,
)
from dataengine.filters.text_split import TextSplit, english_words
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.sample import debian_dir, ensure_packages
from tests.corpus import LICENSES, ZH_SENTENCES
from tests.rules_reference import REFERENCES, repeated_ngram_share_reference

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


# --- English: the fast chain against datatrove's filters ------------------------------------------------

PEERS = {
    "gopher_quality": (GopherQuality, GopherQualityFilter),
    "gopher_repetition": (GopherRepetition, GopherRepetitionFilter),
    "c4_quality": (C4Quality, C4QualityFilter),
    "fineweb_quality": (FineWebQuality, FineWebQualityFilter),
}
EN_SITES = ["python3.11-doc", "postgresql-doc-15", "git-doc", "libreoffice-help-en-us", "debian-reference-en"]


def peer_reason(peer, text: str) -> str | None:
    result = peer.filter(Document(text=text, id=""))
    return None if result is True else result[1]


@pytest.fixture(scope="module")
def en_pages() -> list[str]:
    """Text of real English documentation pages (every 60th page of five Debian sites), extracted as the build does."""
    ensure_packages(EN_SITES, progress=False)
    root = debian_dir() / "root"
    paths = sorted(p for site in EN_SITES for p in (root / site).rglob("*.htm*") if p.is_file())
    pages = []
    for path in paths[::60]:
        text, _, reason = extract_html(path.read_bytes(), f"http://sample.local/{path.relative_to(root)}")
        if reason is None and text:
            pages.append(text)
    assert len(pages) > 60
    return pages


def test_fast_split_is_spacys_words_and_sentences(en_pages: list[str]) -> None:
    for text in en_pages:
        assert TextSplit(text).words() == split_into_words(text)
    lines = [line.strip() for text in en_pages[:20] for line in text.splitlines() if line.strip()]
    lines += ["", "A.  B. [1]", "  Lead. x", "End.\tNext one. ", "Mr.Smith went. (e.g.) yes! No?!"]
    for line in lines:
        assert english_words().sentences(line) == len(split_into_sentences(line)), line


def test_chunk_tokenizer_is_spacys_around_every_special_case() -> None:
    """The shortcuts for simple chunks against spaCy itself: each special case alone and wrapped in marks."""
    import spacy

    tokenize, nlp = english_words().tokenize, spacy.blank("en")
    marks = ["", "(", '"', "[("]
    chunks = [p + k + s for k in tokenize.specials for p in marks for s in ["", ",", ".", ")", '".', "!)"]]
    chunks += ["(123)", "2023,", "10.", "WORD.", "Word.", "x-e.g.", "Mr.Smith", "http://x.org/a-b.", "3.5km."]
    for chunk in chunks:
        assert tokenize(chunk) == [t.text for t in nlp.tokenizer(chunk)], chunk


@pytest.mark.parametrize("name", sorted(PEERS))
def test_fast_rules_decide_as_datatrove_on_real_pages(en_pages: list[str], name: str) -> None:
    """Every page, each rule at datatrove's defaults and at the project's thresholds: the same reason or keep."""
    ours, theirs = PEERS[name]
    project = next(f.params for f in PipelineConfig().filters if f.name == name)
    reasons = set()
    for params in ({}, project):
        rule, peer = ours(**params), theirs(**params)
        for text in en_pages:
            reason = rule(text)
            assert reason == peer_reason(peer, text)
            reasons.add(reason)
    assert None in reasons and len(reasons) > 1  # the pages both pass and fail this rule


def family(make, ks):
    return [(k, make(k)) for k in ks]


def words_of(n: int) -> list[str]:
    words = re.sub(r"[^\w\s]", "", " ".join(licence_lines())).split()
    return (words * (1 + n // len(words)))[:n]


def sentences_of(n: int) -> list[str]:
    return licence_lines()[:n]


LINES_ONLY = {"top_n_grams": [], "dup_n_grams": []}
NO_STOP = [w for w in words_of(400) if w not in {"the", "be", "to", "of", "and", "that", "have", "with"}]
# (rule, params, documents k -> text sweeping one statistic across one threshold, the reason outside it)
THRESHOLDS = [
    ("gopher_quality", {}, lambda k: " ".join(words_of(k)), range(45, 56), "gopher_short_doc"),
    ("gopher_quality", {"max_doc_words": 60}, lambda k: " ".join(words_of(k)), range(55, 66), "gopher_long_doc"),
    (
        "gopher_quality",
        {},
        lambda k: " ".join(words_of(60) + ["a"] * k),
        range(60, 140, 4),
        "gopher_below_avg_threshold",
    ),
    (
        "gopher_quality",
        {},
        lambda k: " ".join(words_of(60) + ["internationalisations"] * k),
        range(20, 60, 2),
        "gopher_above_avg_threshold",
    ),
    ("gopher_quality", {}, lambda k: " ".join(words_of(80)) + " #" * k, range(5, 12), "gopher_too_many_hashes"),
    ("gopher_quality", {}, lambda k: "... " * k + " ".join(words_of(80)), range(5, 12), "gopher_too_many_ellipsis"),
    (
        "gopher_quality",
        {},
        lambda k: "\n".join(("- " if i < k else "") + s for i, s in enumerate(sentences_of(20))),
        range(16, 21),
        "gopher_too_many_bullets",
    ),
    (
        "gopher_quality",
        {},
        lambda k: "\n".join(s + ("..." if i < k else "") for i, s in enumerate(sentences_of(20))),
        range(4, 9),
        "gopher_too_many_end_ellipsis",
    ),
    (
        "gopher_quality",
        {},
        lambda k: " ".join(words_of(100) + ["1984"] * k),
        range(20, 30),
        "gopher_below_alpha_threshold",
    ),
    (
        "gopher_quality",
        {},
        lambda k: " ".join(NO_STOP[:100] + ["the", "of", "and"][:k]),
        range(0, 4),
        "gopher_enough_stop_words",
    ),
    (
        "gopher_repetition",
        {**LINES_ONLY, "dup_line_char_frac": None},
        lambda k: "\n".join(sentences_of(20) + sentences_of(k)),
        range(4, 12),
        "dup_line_frac",
    ),
    (
        "gopher_repetition",
        {**LINES_ONLY, "dup_line_char_frac": None, "dup_para_char_frac": None},
        lambda k: "\n\n".join(sentences_of(20) + sentences_of(k)),
        range(4, 12),
        "dup_para_frac",
    ),
    (
        "gopher_repetition",
        {**LINES_ONLY, "dup_line_frac": None},
        lambda k: "\n".join(sentences_of(30) + sentences_of(2) * k),
        range(1, 6),
        "dup_line_char_frac",
    ),
    (
        "gopher_repetition",
        {**LINES_ONLY, "dup_para_frac": None, "dup_line_frac": None, "dup_line_char_frac": None},
        lambda k: "\n\n".join(sentences_of(30) + sentences_of(2) * k),
        range(1, 6),
        "dup_para_char_frac",
    ),
    (
        "gopher_repetition",
        {"top_n_grams": [[2, 0.2]], "dup_n_grams": []},
        lambda k: " ".join(words_of(300)) + " free software" * k,
        range(20, 60, 4),
        "top_2_gram",
    ),
    (
        "gopher_repetition",
        {"top_n_grams": []},
        lambda k: " ".join(words_of(300)) + " " + " ".join(words_of(12) * k),
        range(1, 8),
        "duplicated_5_n_grams",
    ),
    (
        "gopher_repetition",
        {"top_n_grams": [], "dup_n_grams": [[10, 0.1]]},
        lambda k: " ".join(words_of(300)) + " " + " ".join(words_of(10)[::-1] * k),
        range(1, 10),
        "duplicated_10_n_grams",
    ),
    ("c4_quality", {}, lambda k: "\n".join(sentences_of(k)), range(2, 8), "too_few_sentences"),
    (
        "c4_quality",
        {},
        lambda k: "\n".join(sentences_of(4) + ["Say no more. Really so."] * k),
        range(0, 2),
        "too_few_sentences",
    ),
    (
        "c4_quality",
        {},
        lambda k: "\n".join(sentences_of(6) + ["Use {x} in templates."] * k),
        range(0, 2),
        "curly_bracket",
    ),
    (
        "c4_quality",
        {},
        lambda k: "\n".join(sentences_of(6) + ["Lorem ipsum dolor sit amet."] * k),
        range(0, 2),
        "lorem_ipsum",
    ),
    (
        "c4_quality",
        {},
        lambda k: "\n".join(sentences_of(4) + [" ".join(["word"] * k) + "."]),
        range(1, 5),
        "too_few_sentences",
    ),
    (
        "c4_quality",
        {"max_word_length": 20},
        lambda k: "\n".join(sentences_of(4) + ["A " + "x" * k + " b c."]),
        range(18, 23),
        "too_few_sentences",
    ),
    (
        "c4_quality",
        {},
        lambda k: "\n".join(sentences_of(4) + ["This site uses cookies to work." if k else "It works well."]),
        range(0, 2),
        "too_few_sentences",
    ),
    (
        "fineweb_quality",
        {},
        lambda k: "\n".join(s.rstrip(".") + ("." if i < k else "") for i, s in enumerate(sentences_of(25))),
        range(0, 6),
        "line_punct_ratio",
    ),
    (
        "fineweb_quality",
        {},
        lambda k: "\n".join(sentences_of(10) + [f"Short line {i}." for i in range(k)]),
        range(15, 25),
        "short_line_ratio",
    ),
    ("fineweb_quality", {}, lambda k: "\n".join(sentences_of(60) + sentences_of(1) * k), range(0, 3), "char_dup_ratio"),
    (
        "fineweb_quality",
        {"short_line_thr": 1.0},
        lambda k: "\n".join(f"Item {i}." for i in range(30)) + " more words" * k,
        range(0, 8),
        "list_ratio",
    ),
]


@pytest.mark.parametrize(("name", "params", "make", "ks", "reason"), THRESHOLDS)
def test_fast_rule_each_threshold_inside_and_outside(name, params, make, ks, reason) -> None:
    """A family of documents crossing one threshold: each decided as datatrove's class decides it, both sides met."""
    ours, theirs = PEERS[name]
    rule, peer = ours(**params), theirs(**params)
    seen = set()
    for k, text in family(make, ks):
        expected = peer_reason(peer, text)
        assert rule(text) == expected, (k, expected)
        seen.add(expected)
    assert seen == {None, reason}


def test_c4_judges_without_editing_the_text() -> None:
    text = "\n".join(licence_lines()[:8] + ["Menu", "Enable javascript to see this page."])
    stage = QualityStage(
        [FilterSpec(name="c4_quality", domains=["en"])], [SourceConfig(name="en", kind="jsonl", paths=[], lang="en")]
    )
    out = stage(rows_to_table([doc_row(source="en", kind="text", url="u", text=text)]))
    assert out["reject"].to_pylist() == [None]
    assert out["text"].to_pylist() == [text]  # C4 would drop the last two lines; we only decide


def test_english_rules_switch_runs_datatrove_classes() -> None:
    filters = [f for f in PipelineConfig().filters if "en" in f.domains]
    sources = [SourceConfig(name="en", kind="jsonl", paths=[], lang="en")]
    fast, peer = QualityStage(filters, sources), QualityStage(filters, sources, english_rules="datatrove")
    assert isinstance(dict((n, r) for n, _, r in fast.rules)["c4_quality"], C4Quality)
    assert isinstance(dict((n, r) for n, _, r in peer.rules)["c4_quality"], DatatroveC4Quality)
    texts = ["\n".join(licence_lines()[:12]), "\n".join(licence_lines()[:3]), "word " * 300]
    table = rows_to_table([doc_row(source="en", kind="text", url=str(i), text=t) for i, t in enumerate(texts)])
    assert fast(table)["reject"].to_pylist() == peer(table)["reject"].to_pylist()
    assert PipelineConfig(english_rules="datatrove").english_rules == "datatrove"
    with pytest.raises(ValueError, match="english_rules"):
        build_rule(filters[0], english_rules="spacy")
    with pytest.raises(ValueError, match="english_rules: datatrove"):
        build_rule(FilterSpec(name="c4_quality", domains=["en"], params={"split_paragraph": False}))


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
    half = unique[:300] + unique[:300]
    shares = repeated_ngram_shares([unique, half, unique, "", "中" * 12], 13)  # each text counted alone
    assert shares == [repeated_ngram_share_reference(t, 13) for t in (unique, half, unique, "", "中" * 12)]
    assert shares[0] == 0.0 and shares[1] > 0.5
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


# --- vectorised Chinese/code rules against the per-document rules they replaced --------------------------

BODY = "".join(ZH_SENTENCES)
AD = "点击这里购买最新款手机只要九十九元"
ONLY = {  # one check of a rule at a time, the others off
    "zh_quality": {"min_chars": None, "min_avg_line_chars": None, "min_line_punct_ratio": None,
                   "min_cjk_ratio": None, "max_punct_ratio": None, "max_symbol_ratio": None},
    "zh_repetition": {"dup_line_frac": None, "dup_para_frac": None, "dup_line_char_frac": None,
                      "dup_para_char_frac": None, "top_n_grams": [], "dup_n_grams": [],
                      "max_repeated_ngram_share": None},
}  # fmt: skip
# (rule, its thresholds, a document of step k, the steps, the reason): the steps cross the threshold one unit at a time
SWEEPS = [
    ("min_length", {}, lambda k: " ab" * k, range(97, 104), "too_short"),
    ("min_length", {}, lambda k: " \n" * 450 + "x" * k, range(197, 204), "too_short"),  # past the first 800 characters
    ("cjk_ratio", {}, lambda k: "中" * k + "a b" * (100 - k), range(40, 50), "low_cjk_ratio"),
    ("code_lines", {}, lambda k: "a_1é" * k + "\n(){}" * (100 - k), range(35, 45), "low_alnum_fraction"),
    ("code_lines", {}, lambda k: "x = 1\n" * 20 + "y" * (995 + k), range(0, 10), "max_line_length"),
    ("code_lines", {}, lambda k: ("z" * (99 + k % 3) + "\n") * (k + 1), range(0, 6), "avg_line_length"),
    ("zh_quality", {**ONLY["zh_quality"], "min_chars": 100}, lambda k: BODY[:k] + " \n\t" * 50, range(96, 104),
     "too_short"),
    ("zh_quality", {**ONLY["zh_quality"], "min_cjk_ratio": 0.3}, lambda k: "中𠀀" * k + "a1，=😀" * (50 - k) + "\u3000",
     range(22, 30), "low_cjk_ratio"),
    ("zh_quality", {**ONLY["zh_quality"], "max_punct_ratio": 0.35}, lambda k: "中" * (200 - k) + "，、《》!" * (k // 5)
     + "，" * (k % 5), range(65, 75), "punct_ratio"),
    ("zh_quality", {**ONLY["zh_quality"], "max_symbol_ratio": 0.1}, lambda k: "中" * (200 - k) + "😀=©" * (k // 3)
     + "¥" * (k % 3), range(15, 25), "symbol_ratio"),
    ("zh_quality", {**ONLY["zh_quality"], "min_avg_line_chars": 10}, lambda k: "\n".join(["中" * 9, "中" * (9 + k)]),
     range(0, 5), "short_lines"),
    ("zh_quality", {**ONLY["zh_quality"], "min_line_punct_ratio": 0.106},
     lambda k: "\n".join(s + "。 " * (i < k) for i, s in enumerate([x.rstrip("。") for x in ZH_SENTENCES] * 3)),
     range(2, 6), "line_punct_ratio"),
    ("zh_repetition", {**ONLY["zh_repetition"], "dup_line_frac": 0.287},
     lambda k: "\n".join(ZH_SENTENCES[:5] + [ZH_SENTENCES[0]] * k), range(0, 5), "dup_line_frac"),
    ("zh_repetition", {**ONLY["zh_repetition"], "dup_para_char_frac": 0.2},
     lambda k: "\n\n".join(ZH_SENTENCES + [ZH_SENTENCES[1]] * k), range(0, 6), "dup_para_char_frac"),
    *(("zh_repetition", {**ONLY["zh_repetition"], "top_n_grams": [(n, frac)]},
       lambda k, n=n: BODY[:250] + "广告推销"[:n] * k, range(0, 40), f"top_{n}_gram")
      for n, frac in ((2, 0.2), (3, 0.25), (4, 0.3))),
    *(("zh_repetition", {**ONLY["zh_repetition"], "dup_n_grams": [(n, frac)]},
       lambda k: BODY + AD * k, range(0, 20), f"duplicated_{n}_n_grams")
      for n, frac in ((5, 0.4), (6, 0.38), (8, 0.35), (10, 0.32))),
    # words that join alike ("ab c" and "a bc"): datatrove's own walk over the joined strings decides
    ("zh_repetition", {**ONLY["zh_repetition"], "dup_n_grams": [(5, 0.4)]},
     lambda k: BODY[:100] + "，".join(["ab c d e f", "a bc d e f"] * k), range(0, 20), "duplicated_5_n_grams"),
    ("zh_repetition", {**ONLY["zh_repetition"], "max_repeated_ngram_share": 0.5},
     lambda k: BODY[:300] + "\n" + BODY[:k], range(100, 125), "repeated_ngrams"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "make", "ks", "reason"), SWEEPS)
def test_vectorised_rule_decides_as_its_per_document_reference(name, params, make, ks, reason) -> None:
    rule, reference = FILTERS[name](**params), REFERENCES[name](**params)
    decisions = [rule(make(k)) for k in ks]
    assert decisions == [reference(make(k)) for k in ks]
    assert set(decisions) == {None, reason}  # the steps cross the threshold: documents just inside and just outside
    if getattr(rule, "batched", False):  # the whole sweep as one batch, between texts of the other sweeps
        texts = [text for k in ks for text in (make(k), BODY[: k % 7], AD * (k % 3))]
        assert rule.judge_texts(texts) == [reference(text) for text in texts]


def test_batched_chinese_rules_decide_each_text_as_alone() -> None:
    """Every sweep's documents in one batch (thresholds crossed in different rules side by side)."""
    texts = [make(k) for name, _, make, ks, _ in SWEEPS if name.startswith("zh_") for k in ks] + ["", " \n", "中"]
    for name in ("zh_quality", "zh_repetition"):
        rule, reference = FILTERS[name](), REFERENCES[name]()
        decisions = rule.judge_texts(texts)
        assert decisions == [reference(text) for text in texts] == [rule(text) for text in texts], name
        assert len(set(decisions)) > 3, name
    assert ZhQuality().judge_texts([]) == ZhRepetition().judge_texts([]) == []


def test_joined_alike_ngrams_take_datatroves_walk() -> None:
    text = "，".join(["ab c d e f", "a bc d e f"] * 5)
    grams = WordGrams([WORD.findall(t) for t in (BODY, text, BODY + "ab", "abc")])
    assert grams.joined_distinct(5).tolist() == [True, False, True, True]


def test_opencc_counts_changed_characters_as_before() -> None:
    rule, reference = OpenccT2S(), REFERENCES["opencc_t2s"]()
    texts = ["當" * k + "当" * (100 - k) + "a𠀀" for k in range(5)] + ["後" + "中" * 99, "", "abc"]
    assert [rule.edit(t) for t in texts] == [reference.edit(t) for t in texts] == rule.edit_texts(texts)
    assert {rule.edit(t)[1]["zh_script"] for t in texts} == {"Hans", "Hant"}
    # a text holding the batch separator is converted alone; a phrase of another length (tw2sp) counts whole
    odd = ["當\ue000後", *texts]
    assert rule.edit_texts(odd) == [reference.edit(t) for t in odd]
    phrases, phrases_ref = OpenccT2S("tw2sp"), REFERENCES["opencc_t2s"]("tw2sp")
    words = ["記憶體" * 3 + "中" * 50, "當" * 10, "識別符號", "中文"]
    assert phrases.edit_texts(words) == [phrases_ref.edit(t) for t in words]
    assert len(phrases.edit(words[0])[0]) != len(words[0])


def test_vectorised_rules_decide_as_before_on_real_pages_and_files(zh_pages: dict[str, str], debian: Path) -> None:
    texts = list(zh_pages.values()) + [(debian / f).read_text(encoding="utf-8") for f, _ in CODE_FILES.values()]
    for name, reference in REFERENCES.items():
        rule, ref = FILTERS[name](), reference()
        if name == "opencc_t2s":
            assert [rule.edit(t) for t in texts] == [ref.edit(t) for t in texts] == rule.edit_texts(texts)
        else:
            expected = [ref(t) for t in texts]
            assert [rule(t) for t in texts] == expected, name
            if getattr(rule, "batched", False):
                assert rule.judge_texts(texts) == expected, name


def test_stage_batch_equals_the_per_document_chain_on_real_chinese_pages(zh_pages: dict[str, str]) -> None:
    """The default Chinese chain in one batch (pages, their halves and repeats) decides, edits and tags as the
    per-document reference rules called one document at a time do."""
    sources = [SourceConfig(name="zh", kind="jsonl", paths=[], lang="zh")]
    filters = [f for f in PipelineConfig().filters if "zh" in f.domains]
    pages = list(zh_pages.values())
    texts = pages + [p[: len(p) // 2] for p in pages] + [p[:400] * 3 for p in pages] + [p[:150] for p in pages]
    table = rows_to_table([doc_row(source="zh", kind="text", url=str(i), text=t) for i, t in enumerate(texts)])
    batched, previous = QualityStage(filters, sources), QualityStage(filters, sources)
    params = {spec.name: spec.params for spec in filters}
    previous.chains = {
        source: [
            (name, REFERENCES[name](**params[name]) if name in REFERENCES else rule, how) for name, rule, how in chain
        ]
        for source, chain in previous.chains.items()
    }
    ours, theirs = batched(table), previous(table)
    for column in ("reject", "text", "meta"):
        assert ours[column].to_pylist() == theirs[column].to_pylist(), column
    assert None in ours["reject"].to_pylist() and len(set(ours["reject"].to_pylist())) > 2


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

"""Code-aware rules: prose judged with code blocks masked, pages that are mostly code judged by the code rules,
code spans carried through the Chinese text edits, and the report of what the switch changes.

Real pages: Python's Functional Programming HOWTO (kept, where the code-blind chain rejects it for a curly
bracket), and pages made of real files from the sample's Debian packages: generated protobuf code and minified
JavaScript inside ``<pre>`` with one sentence, and JavaScript written into the prose of licence paragraphs.
"""

from __future__ import annotations

import html
from pathlib import Path

import pyarrow as pa
import pytest
import ray.data
from rich.console import Console

from dataengine.config import PipelineConfig, SourceConfig, load_mix
from dataengine.extract.html import extract_page
from dataengine.extract.spans import code_share, remap, spans_of
from dataengine.filters import QualityStage
from dataengine.filters.code_aware import CODE_AWARE_CHANGE, code_view, prose_view, text_edits
from dataengine.filters.rules_zh import OpenccT2S, ZhBoilerplate
from dataengine.pipeline import Context
from dataengine.report.code_aware import code_aware_report
from dataengine.report.funnel import SourceFunnel
from dataengine.report.render import render_html
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.sample import debian_dir, ensure_packages
from pipelines.build import stages as build_stages
from tests.corpus import LICENSES

FUNCTIONAL = "python3.11-doc/usr/share/doc/python3.11/html/howto/functional.html"
GENERATED = "golang-github-docker-docker-dev/usr/share/gocode/src/github.com/moby/buildkit/solver/pb/ops.pb.go"
MINIFIED = "node-axios/usr/share/nodejs/axios/dist/axios.min.js"
SCRIPT = "node-axios/usr/share/nodejs/axios/dist/axios.js"
ZH_PAGE = "debian-reference-zh-tw/usr/share/debian-reference/ch01.zh-tw.html"
SOURCES = [
    SourceConfig(name="web_en", kind="jsonl", paths=[], lang="en"),
    SourceConfig(name="web_zh", kind="jsonl", paths=[], lang="zh"),
    SourceConfig(name="code", kind="git", paths=[]),
]
SHARE = PipelineConfig().code_page_share


@pytest.fixture(scope="module")
def debian() -> Path:
    """The unpacked Debian packages these tests read (fetched with apt-get on first use, then cached)."""
    ensure_packages(sorted({p.split("/")[0] for p in (FUNCTIONAL, GENERATED, MINIFIED, ZH_PAGE)}), progress=False)
    return debian_dir() / "root"


@pytest.fixture(scope="module")
def stages() -> tuple[QualityStage, QualityStage]:
    """The default chains, code-aware and code-blind (``pipeline.code_aware: false``)."""
    filters = PipelineConfig().filters
    return QualityStage(filters, SOURCES, code_page_share=SHARE), QualityStage(filters, SOURCES)


def page_row(source: str, page: str, url: str) -> dict:
    """A document as the extract stage leaves it: text, code spans and code share from the real extractor."""
    text, spans, _, reason = extract_page(page.encode(), url)
    assert reason is None and text
    row = doc_row(source=source, kind="html", url=url, text=text)
    return row | {"code_spans": [{"start": s, "end": e} for s, e in spans], "code_share": code_share(text, spans)}


def html_page(title: str, body: str) -> str:
    head = f"<!DOCTYPE html><html><head><title>{title}</title></head>"
    return f"{head}<body><article><h1>{title}</h1>{body}</article></body></html>"


def licence_paragraphs(n: int) -> list[str]:
    text = (LICENSES / "GPL-3").read_text()
    paras = [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) > 30]
    return paras[:n]


def verdicts(stages: tuple[QualityStage, QualityStage], row: dict) -> tuple[str | None, str | None, dict | None]:
    """(code-aware verdict, code-blind verdict, the change tag)."""
    aware, blind = (stage(rows_to_table([row])) for stage in stages)
    assert CODE_AWARE_CHANGE not in blind.column_names  # the switch off adds nothing
    return aware["reject"][0].as_py(), blind["reject"][0].as_py(), aware[CODE_AWARE_CHANGE][0].as_py()


def test_documentation_page_with_code_examples_is_kept(debian: Path, stages) -> None:
    row = page_row(
        "web_en", (debian / FUNCTIONAL).read_text(), "http://python3.11-doc.sample.local/howto/functional.html"
    )
    assert 0 < row["code_share"] < SHARE  # prose with examples: judged as prose
    aware, blind, change = verdicts(stages, row)
    assert blind == "c4_quality:curly_bracket"  # the code examples' dict and set literals
    assert aware is None
    assert change == {"code_blind": blind, "code_aware": "kept", "view": "prose"}


def test_generated_code_with_one_sentence_is_rejected_by_the_code_rules(debian: Path, stages) -> None:
    code = (debian / GENERATED).read_text()[:20_000]
    page = html_page(
        "ops.pb.go", f"<p>This is the protocol definition of the build solver.</p><pre>{html.escape(code)}</pre>"
    )
    row = page_row("web_en", page, "http://docs.example/ops.html")
    assert row["code_share"] > SHARE
    out = stages[0](rows_to_table([row]))
    assert out["reject"][0].as_py() == "code_lines:auto_generated"  # "Code generated by protoc-gen-gogo. DO NOT EDIT."
    assert out["reject_detail"][0].as_py().startswith("code page: code_share")


def test_minified_javascript_in_pre_is_rejected_by_the_code_rules(debian: Path, stages) -> None:
    code = (debian / MINIFIED).read_text()
    page = html_page(
        "axios", f"<p>Here is the client library, ready to paste into a page.</p><pre>{html.escape(code)}</pre>"
    )
    aware, blind, _ = verdicts(stages, page_row("web_en", page, "http://cdn.example/axios.html"))
    assert aware == "code_lines:max_line_length" and blind is not None


def test_inline_javascript_in_prose_is_still_a_curly_bracket(debian: Path, stages) -> None:
    script = (debian / SCRIPT).read_text().splitlines()
    start = next(i for i, line in enumerate(script) if "function" in line and "{" in line)
    paras = licence_paragraphs(8)
    paras.insert(4, " ".join(line.strip() for line in script[start : start + 12]) + ".")
    row = page_row(
        "web_en", html_page("Terms", "".join(f"<p>{html.escape(p)}</p>" for p in paras)), "http://x.example/t"
    )
    assert row["code_spans"] == []  # the script is not in a code block: it is the page's prose
    aware, blind, change = verdicts(stages, row)
    assert aware == blind == "c4_quality:curly_bracket" and change is None


def test_prose_and_code_views() -> None:
    text = "Intro line.\n\nfor x in y:\n    f(x)\n\nMiddle {text}.\nprint(1)\nEnd."
    spans = [(text.index("for"), text.index("f(x)") + 4), (text.index("print"), text.index("print") + 8)]
    assert prose_view(text, spans) == "Intro line.\n\nMiddle {text}.\n\nEnd."
    assert code_view(text, spans) == "for x in y:\n    f(x)\nprint(1)"
    assert prose_view(text, []) == text


def test_mostly_code_page_is_judged_on_its_blocks_and_switch_off_judges_whole_text(stages) -> None:
    code = "\n".join(f"def handler_{i}(request):\n    return respond(request, status={i})\n" for i in range(40))
    page = html_page("Handlers", f"<p>Handlers.</p><pre>{html.escape(code)}</pre>")
    aware, blind, change = verdicts(stages, page_row("web_en", page, "http://x.example/h"))
    assert aware is None  # good code with a thin layer of prose: the code rules keep it
    assert blind is not None and change == {"code_blind": blind, "code_aware": "kept", "view": "code"}


def test_code_spans_follow_the_chinese_edits_on_a_real_page(debian: Path) -> None:
    row = page_row("web_zh", (debian / ZH_PAGE).read_text(), "http://debian-reference-zh-tw.sample.local/ch01.html")
    spans = spans_of(pa.array([row["code_spans"]]))[0]
    assert len(spans) > 20
    # a breadcrumb line before the first block, which the boilerplate rule removes
    row["text"] = "首頁 > 文件 > 參考手冊\n" + row["text"]
    row["code_spans"] = [{"start": s + 15, "end": e + 15} for s, e in spans]
    blocks = [row["text"][s + 15 : e + 15] for s, e in spans]
    filters = [f for f in PipelineConfig().filters if "zh" in f.domains]
    out = QualityStage(filters, SOURCES, code_page_share=SHARE)(rows_to_table([row]))
    text, moved = out["text"][0].as_py(), spans_of(out["code_spans"])[0]
    convert = OpenccT2S().converter.convert
    assert not text.startswith("首页") and [text[s:e] for s, e in moved] == [convert(b) for b in blocks]
    assert out["code_share"][0].as_py() == pytest.approx(code_share(text, moved))


def test_spans_move_through_edits_that_change_lengths() -> None:
    # tw2sp rewrites phrases, some to shorter ones (識別符號 -> 标识符): offsets after them move
    text = "定義識別符號：x = 1 然後\n程式碼：\nint main() { return 0; }\n結束"
    spans = [(text.index("x = 1"), text.index("x = 1") + 5), (text.index("int"), text.index("}") + 1)]
    new, _ = OpenccT2S(config="tw2sp").edit(text)
    assert len(new) < len(text)
    moved = remap(spans, text_edits(text, new))
    assert [new[s:e] for s, e in moved] == ["x = 1", "int main() { return 0; }"]
    # removed lines before and between code blocks
    text = "首页 | 关于 | 联系\n看这里：\nls -l\n上一页\ncd /\n说明。"
    spans = [(text.index("ls"), text.index("ls") + 5), (text.index("cd"), text.index("cd") + 4)]
    new, _ = ZhBoilerplate().edit(text)
    assert [new[s:e] for s, e in remap(spans, text_edits(text, new))] == ["ls -l", "cd /"]
    assert text_edits("同樣長度", "同样长度") == []  # t2s: one character for one, offsets unchanged


def test_report_counts_pages_and_tokens_per_rule_with_the_switch_on_and_off(debian: Path, stages, ray_local) -> None:
    functional = page_row("web_en", (debian / FUNCTIONAL).read_text(), "http://python3.11-doc.sample.local/f.html")
    rows = [functional, doc_row(source="web_en", kind="html", url="short", text="too short")]
    table = stages[0](rows_to_table(rows)).append_column("n_tokens", pa.array([5000, 3], pa.int64()))
    funnel = {"web_en": SourceFunnel(rejected={"min_length:too_short": 1}, rejected_tokens={"min_length:too_short": 3})}
    section = code_aware_report(ray.data.from_arrow(table), funnel)["web_en"]
    assert section["changes"] == [
        {"code_blind": "c4_quality:curly_bracket", "code_aware": "kept", "docs": 1, "tokens": 5000}
    ]
    assert section["rules"] == {
        "c4_quality:curly_bracket": {"docs_off": 1, "docs_on": 0, "docs_change": -1,
                                     "tokens_off": 5000, "tokens_on": 0, "tokens_change": -5000},
        "kept": {"docs_change": 1, "tokens_change": 5000},
    }  # fmt: skip
    [example] = section["examples"]
    assert example["view"] == "prose"
    first_block = functional["text"][functional["code_spans"][0]["start"] : functional["code_spans"][0]["end"]]
    assert first_block[:40] in example["whole"] and first_block[:40] not in example["seen"]
    page = render_html({"sources": {"web_en": {}}, "code_aware": {"web_en": section}}, b"")
    assert "code_aware: false judged the whole page" in page and "c4_quality:curly_bracket → kept" in page


def test_switch_reaches_the_filters_stage_and_its_cache_key(tmp_path: Path) -> None:
    filters = next(s for s in build_stages() if s.name == "filters")
    on = load_mix("code30")
    off = on.model_copy(update={"pipeline": on.pipeline.model_copy(update={"code_aware": False})})
    contexts = [Context(mix, SOURCES, 1, str(tmp_path), str(tmp_path), Console()) for mix in (on, off)]
    assert [filters.kwargs(c)["code_page_share"] for c in contexts] == [SHARE, None]
    assert filters.reads(contexts[0]) != filters.reads(contexts[1])

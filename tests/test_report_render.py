"""The report files: valid JSON, a real PNG and an HTML page naming every source and rejection reason."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from dataengine.report.funnel import SourceFunnel
from dataengine.report.render import remaining_after_stages, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STAGES = ["read", "extract", "min_length", "gopher_quality", "cjk_ratio", "code_lines", "exact_dedup", "mix"]


def _report() -> dict[str, Any]:
    code = SourceFunnel(docs_in=120, bytes_in=900_000, tokens_in=250_000, docs_out=100, tokens_out=400_000)
    code.unique_tokens_out, code.epochs = 200_000, 2.0
    code.reject("read:binary", 5, 0, 50_000)
    code.reject("code_lines:too_long_lines", 10, 20_000, 80_000)
    code.reject("exact_dedup:duplicate", 5, 5_000, 20_000)
    zh = SourceFunnel(docs_in=50, bytes_in=60_000, tokens_in=30_000, docs_out=40, tokens_out=25_000)
    zh.held_out_docs, zh.held_out_tokens = 2, 1_000
    zh.reject("cjk_ratio:汉字太少", 8, 4_000, 8_000)
    empty = SourceFunnel()  # a source whose every input failed to read, or that had no input at all
    sources = {"code": code, "web_zh": zh, "网页_empty": empty}
    assert all(f.balanced() for f in sources.values())
    return {
        "mix": "code30",
        "seed": 3,
        "stages": STAGES,
        "sources": {name: asdict(f) for name, f in sources.items()},
        "totals": {"docs_in": 170, "docs_out": 140, "tokens_in": 280_000, "tokens_out": 425_000, "held_out_docs": 2},
        "mix_shares": {"code": {"target": 0.3, "realised": 0.31}, "web_zh": {"target": 0.7, "realised": 0.69}},
        "timings_s": {"read": 1.5, "filter": 2.25, "tokenize": 0.75},
        "wall_s": 5.0,
        "peak_rss_mb": 812.5,
        "workers": 2,
    }


class _Collect(HTMLParser):
    """Text and image sources of a page (HTMLParser never rejects bad markup, so the test checks what it found)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images += [v or "" for k, v in attrs if k == "src"]


def test_write_report_makes_json_png_and_html(tmp_path: Path) -> None:
    report = _report()
    write_report(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == report
    png = (tmp_path / "funnel.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    parsed = _Collect()
    parsed.feed(page)
    text = "".join(parsed.text)
    for name, funnel in report["sources"].items():
        assert name in text
        for reason in funnel["rejected"]:
            assert reason in text
    for step in report["timings_s"]:
        assert step in text
    assert "31.000%" in text and "+1.000%" in text  # realised share and its difference from the target
    (image,) = parsed.images
    assert base64.b64decode(image.removeprefix("data:image/png;base64,")) == png
    assert not list(tmp_path.glob(".*.tmp"))


def test_remaining_after_stages_ends_at_docs_out() -> None:
    report = _report()
    steps = dict(remaining_after_stages(report, "code"))
    assert list(steps) == ["in", *STAGES, "out"]
    assert (steps["in"], steps["read"], steps["code_lines"], steps["mix"], steps["out"]) == (120, 115, 105, 100, 100)
    zh = remaining_after_stages(report, "web_zh")
    assert zh[-1] == ("out", report["sources"]["web_zh"]["docs_out"])


def test_write_report_with_no_sources(tmp_path: Path) -> None:
    write_report(tmp_path, {"mix": "empty", "seed": 0, "stages": [], "sources": {}})
    assert (tmp_path / "funnel.png").read_bytes().startswith(PNG_MAGIC)
    assert "empty" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_rejected_examples_sit_beside_kept_ones(tmp_path: Path) -> None:
    report = _report()
    report["examples"] = {
        "code": {
            "kept": [{"id": "k1", "url": "repo/good.py", "detail": None, "text": "def good():\n    return 1"}],
            "rejected": {
                "code_lines:too_long_lines": [
                    {"id": "r1", "url": "repo/min.js", "detail": "max line 4,000 > 1,000", "text": "var a=1;<b>"}
                ]
            },
        }
    }
    write_report(tmp_path, report)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = page[page.index("Rejected beside kept: code") :]
    start = section.index("<tr><td>code_lines:too_long_lines")
    row = section[start : section.index("</tr>", start)]
    assert "repo/min.js" in row and "max line 4,000" in row and "var a=1;&lt;b&gt;" in row  # escaped
    assert "repo/good.py" in row and "def good():" in row  # the kept document in the same row
    assert "Rejected beside kept: web_zh" not in page  # no examples given for it: no section


def test_code_licences_and_quality_scores_are_shown(tmp_path: Path) -> None:
    report = _report()
    report["sources"]["code"]["licenses"] = {
        "GPL-2.0-only": {"docs": 1, "bytes": 10, "tokens": 100},
        "MIT OR Apache-2.0": {"docs": 3, "bytes": 30, "tokens": 300},
    }
    report["quality_scores"] = {"web_zh": {"kept": {"docs": 40, "p10": 0.2, "p50": 0.61, "p90": 0.9}}}
    write_report(tmp_path, report)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = page[page.index("Licences of kept code: code") :]
    assert section.index("MIT OR Apache-2.0") < section.index("GPL-2.0-only")  # most tokens first
    mit = section[section.index("MIT OR Apache-2.0") : section.index("</tr>", section.index("MIT OR Apache-2.0"))]
    assert "75.0%" in mit and ">yes<" in mit
    assert "web_zh kept" in page and "0.610" in page

"""Write a build's report: ``report.json`` (for machines), ``funnel.png`` and a self-contained ``report.html``.

The HTML embeds the plot and needs no server or network, so it can be mailed or attached to an experiment log.
Every count comes from ``report.json``; nothing here recomputes or rounds the numbers the build checked.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from typing import Any

from dataengine import storage
from dataengine.licenses import permissive

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
FUNNEL_PNG = "funnel.png"


def write_report(out: storage.Target, report: dict[str, Any]) -> None:
    """Write the three report files into ``out``, each whole (a reader never sees half a file)."""
    storage.write_json(storage.join(out, REPORT_JSON), report)
    png = plot_funnel(report)
    storage.write_bytes(storage.join(out, FUNNEL_PNG), png)
    storage.write_text(storage.join(out, REPORT_HTML), render_html(report, png))


def stage_order(report: dict[str, Any]) -> list[str]:
    """The report's stages in pipeline order, then any stage that only appears in a rejection key."""
    stages = list(report.get("stages", []))
    for funnel in report.get("sources", {}).values():
        for key in sorted(funnel.get("rejected", {})):
            stage = key.split(":", 1)[0]
            if stage not in stages:
                stages.append(stage)
    return stages


def ordered_rejections(report: dict[str, Any], source: str) -> list[str]:
    """A source's ``stage:reason`` keys in pipeline order, the biggest first within a stage."""
    stages = stage_order(report)
    rejected = report["sources"][source].get("rejected", {})
    return sorted(rejected, key=lambda k: (stages.index(k.split(":", 1)[0]), -rejected[k], k))


def remaining_after_stages(report: dict[str, Any], source: str) -> list[tuple[str, int]]:
    """Documents left after each stage: ``in``, every stage, then ``out`` (after the held-out split)."""
    funnel = report["sources"][source]
    rejected = funnel.get("rejected", {})
    left = int(funnel.get("docs_in", 0))
    steps = [("in", left)]
    for stage in stage_order(report):
        left -= sum(n for k, n in rejected.items() if k.split(":", 1)[0] == stage)
        steps.append((stage, left))
    steps.append(("out", left - int(funnel.get("held_out_docs", 0))))
    return steps


def plot_funnel(report: dict[str, Any]) -> bytes:
    """PNG bytes: share of each source's documents left after every stage, and tokens out per source."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # here: readers of reports need no matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    sources = report.get("sources", {})
    fig = Figure(figsize=(13, 5), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    labels = ["in", *stage_order(report), "out"]
    for name, funnel in sources.items():
        steps = remaining_after_stages(report, name)
        docs_in = steps[0][1]
        pct = [100.0 * n / docs_in if docs_in else math.nan for _, n in steps]  # no input: no line, a legend entry
        left.plot(
            range(len(steps)),
            pct,
            marker="o",
            drawstyle="steps-post",
            label=f"{name}: {docs_in:,} in → {int(funnel.get('docs_out', 0)):,} out",
        )
    left.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    left.set_ylim(0, 105)
    left.set_ylabel("documents left (% of documents in)")
    left.set_title("Documents left after each stage")
    left.grid(alpha=0.3)
    if sources:
        left.legend(loc="lower left", fontsize="small")
    names = list(sources)
    tokens_out = [int(f.get("tokens_out", 0)) for f in sources.values()]
    right.barh(range(len(names)), tokens_out, color="tab:blue")
    right.set_yticks(range(len(names)), names)
    right.invert_yaxis()
    for i, n in enumerate(tokens_out):
        right.annotate(f"{n:,}", (n, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize="small")
    right.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    right.set_xlabel("tokens")
    right.set_title("Tokens out (training shards)")
    right.margins(x=0.25)
    if not sources:
        left.text(0.5, 0.5, "no sources", ha="center", transform=left.transAxes)
    fig.suptitle(f"mix {report.get('mix', '?')}, seed {report.get('seed', '?')}")
    png = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # CJK source names: boxes, no crash
        canvas.print_png(png)
    return png.getvalue()


def render_html(report: dict[str, Any], png: bytes) -> str:
    """The whole report as one HTML page with the plot inlined as a data URI."""
    sources = report.get("sources", {})
    title = f"dataengine report: mix {report.get('mix', '?')}, seed {report.get('seed', '?')}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary(report),
        f"<img alt='funnel' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>",
        "<h2>Sources</h2>",
        _overview(sources),
    ]
    for name in sources:
        parts.append(f"<h2>Funnel: {_e(name)}</h2>")
        parts.append(_source_funnel(report, name))
        if sources[name].get("licenses"):
            parts.append(f"<h3>Licences of kept code: {_e(name)}</h3>")
            parts.append(_licenses(sources[name]["licenses"]))
        if report.get("examples", {}).get(name, {}).get("rejected"):
            parts.append(f"<h3>Rejected beside kept: {_e(name)}</h3>")
            parts.append(_examples(report["examples"][name]))
        if report.get("code_aware", {}).get(name):
            parts.append(f"<h3>What the code-aware rules change (pipeline.code_aware): {_e(name)}</h3>")
            parts.append(_code_aware(report["code_aware"][name]))
    if report.get("quality_scores"):
        parts += ["<h2>Quality-model scores (kept vs rejected by the cleaning stages)</h2>", _quality(report)]
    parts += ["<h2>Mix shares</h2>", _mix_shares(report), "<h2>Timings</h2>", _timings(report), "</body></html>"]
    return "\n".join(parts) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#f0f0f0}tr.drop td{color:#a33}tr.total td{font-weight:bold}"
    "img{max-width:100%}.bad{color:#c00;font-weight:bold}"
    "table.examples td{vertical-align:top;width:45%}table.examples td:first-child{width:10%}"
    ".doc{margin-bottom:0.8em}.url{font-size:small;color:#555}.detail{font-size:small;color:#a33}"
    "pre{white-space:pre-wrap;max-height:12em;overflow:auto;background:#f8f8f8;margin:0.2em 0;font-size:small}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: Any) -> str:
    """A count with thousands separators, a float with 3 decimals, a dash for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _table(header: list[str], rows: list[tuple[str, list[Any]]]) -> str:
    """``rows`` are ``(css class, cells)``; the first cell is a label, the others numbers."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for cls, cells in rows:
        tds = f"<td>{_e(cells[0])}</td>" + "".join(f"<td class='n'>{_n(c)}</td>" for c in cells[1:])
        body.append(f"<tr class='{cls}'>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary(report: dict[str, Any]) -> str:
    totals = report.get("totals", {})
    items = [
        ("documents in", totals.get("docs_in")),
        ("documents out", totals.get("docs_out")),
        ("held out", totals.get("held_out_docs")),
        ("tokens in", totals.get("tokens_in")),
        ("tokens out", totals.get("tokens_out")),
        ("wall time (s)", report.get("wall_s")),
        ("peak RSS (MB)", report.get("peak_rss_mb")),
        ("workers", report.get("workers")),
    ]
    return _table(["", "value"], [("", [k, v]) for k, v in items])


def _overview(sources: dict[str, Any]) -> str:
    header = ["source", "docs in", "bytes in", "tokens in", "rejected", "held out", "docs out", "tokens out"]
    header += ["unique tokens out", "epochs", "balanced"]
    rows = []
    for name, f in sources.items():
        dropped = sum(f.get("rejected", {}).values())
        balanced = f.get("docs_in", 0) == f.get("docs_out", 0) + f.get("held_out_docs", 0) + dropped
        cells = [name, f.get("docs_in"), f.get("bytes_in"), f.get("tokens_in"), dropped, f.get("held_out_docs")]
        cells += [f.get("docs_out"), f.get("tokens_out"), f.get("unique_tokens_out"), f.get("epochs")]
        rows.append(("" if balanced else "bad", [*cells, "yes" if balanced else "NO"]))
    return _table(header, rows)


def _source_funnel(report: dict[str, Any], name: str) -> str:
    f = report["sources"][name]
    docs_in = f.get("docs_in", 0)

    def pct(docs: int) -> str:
        return f"{100.0 * docs / docs_in:.2f}%" if docs_in else "—"

    rows: list[tuple[str, list[Any]]] = [
        ("total", ["in", f.get("docs_in"), pct(docs_in), f.get("bytes_in"), f.get("tokens_in")])
    ]
    for key in ordered_rejections(report, name):
        docs = f["rejected"][key]
        cells = [
            f"dropped {key}",
            docs,
            pct(docs),
            f.get("rejected_bytes", {}).get(key),
            f.get("rejected_tokens", {}).get(key),
        ]
        rows.append(("drop", cells))
    rows.append(
        (
            "",
            [
                "held out (evaluation)",
                f.get("held_out_docs"),
                pct(f.get("held_out_docs", 0)),
                None,
                f.get("held_out_tokens"),
            ],
        )
    )
    rows.append(
        ("total", ["out (training)", f.get("docs_out"), pct(f.get("docs_out", 0)), None, f.get("unique_tokens_out")])
    )
    table = _table(["step", "docs", "% of in", "bytes", "tokens"], rows)
    note = (
        f"<p>{_n(f.get('tokens_out'))} tokens in the shards from {_n(f.get('unique_tokens_out'))} unique "
        f"tokens: {_n(f.get('epochs'))} epochs.</p>"
    )
    return table + note


def _licenses(licenses: dict[str, dict[str, int]]) -> str:
    """Kept code by SPDX licence, most tokens first, with whether the licence is permissive."""
    total = sum(c["tokens"] for c in licenses.values()) or 1
    rows = [
        ("", [spdx, c["docs"], c["tokens"], f"{c['tokens'] / total:.1%}", "yes" if permissive(spdx) else "no"])
        for spdx, c in sorted(licenses.items(), key=lambda kv: (-kv[1]["tokens"], kv[0]))
    ]
    return _table(["licence (SPDX)", "docs", "tokens", "token share", "permissive"], rows)


def _quality(report: dict[str, Any]) -> str:
    rows = []
    for source, sides in report["quality_scores"].items():
        for side, q in sides.items():
            rows.append(
                ("" if side == "kept" else "drop", [f"{source} {side}", q["docs"], q["p10"], q["p50"], q["p90"]])
            )
    return _table(["documents", "docs", "p10", "median", "p90"], rows)


def _examples(examples: dict[str, Any]) -> str:
    """Each rejection reason's sample documents beside documents of the same source that every rule kept, so a
    threshold can be judged by eye (the full texts are in ``rejects/sample.jsonl`` and ``rejects/kept.jsonl``)."""

    def docs(items: list[dict[str, Any]]) -> str:
        return "".join(
            f"<div class='doc'><div class='url'>{_e(d.get('url') or d['id'])}</div>"
            + (f"<div class='detail'>{_e(d['detail'])}</div>" if d.get("detail") else "")
            + f"<pre>{_e(d['text'])}</pre></div>"
            for d in items
        )

    reasons = sorted(examples["rejected"].items())
    kept = f"<td rowspan='{len(reasons)}'>{docs(examples['kept']) or 'none kept'}</td>"
    rows = [
        f"<tr><td>{_e(reason)}</td><td>{docs(items)}</td>{kept if i == 0 else ''}</tr>"
        for i, (reason, items) in enumerate(reasons)
    ]
    return f"<table class='examples'><tr><th>reason</th><th>rejected</th><th>kept</th></tr>{''.join(rows)}</table>"


def _code_aware(section: dict[str, Any]) -> str:
    """Pages and tokens per verdict with the switch off and on, the pages moved between verdicts, and example
    pages beside what each chain judged: the whole page, or its prose (code blocks masked) or its code blocks."""
    rows = [
        ("", [key, t.get("docs_off"), t.get("docs_on"), f"{t['docs_change']:+,}", t.get("tokens_off"),
              t.get("tokens_on"), f"{t['tokens_change']:+,}"])
        for key, t in section["rules"].items()
    ]  # fmt: skip
    header = ["verdict of the filters", "pages off", "pages on", "change", "tokens off", "tokens on", "change"]
    moves = [("", [f"{c['code_blind']} → {c['code_aware']}", c["docs"], c["tokens"]]) for c in section["changes"]]
    examples = "".join(
        f"<tr><td>{_e(x['code_blind'])} → {_e(x['code_aware'])}<div class='url'>{_e(x['url'])}</div></td>"
        f"<td><pre>{_e(x['whole'])}</pre></td><td><div class='detail'>{_e(x['view'])}</div>"
        f"<pre>{_e(x['seen'])}</pre></td></tr>"
        for x in section["examples"]
    )
    return (
        _table(header, rows)
        + _table(["code_aware: false → true", "pages", "tokens"], moves)
        + "<table class='examples'><tr><th>page</th><th>code_aware: false judged the whole page</th>"
        + f"<th>code_aware: true judged</th></tr>{examples}</table>"
    )


def _mix_shares(report: dict[str, Any]) -> str:
    rows = []
    for name, share in report.get("mix_shares", {}).items():
        target, realised = share.get("target"), share.get("realised")
        diff = realised - target if isinstance(target, float | int) and isinstance(realised, float | int) else None
        rows.append(("", [name, _share(target), _share(realised), _share(diff, signed=True)]))
    return _table(["source", "target", "realised", "difference"], rows)


def _share(value: float | None, signed: bool = False) -> str | None:
    if value is None:
        return None
    return f"{100.0 * value:+.3f}%" if signed else f"{100.0 * value:.3f}%"


def _timings(report: dict[str, Any]) -> str:
    wall = report.get("wall_s") or 0.0
    rows = [
        ("", [step, float(s), f"{100.0 * s / wall:.1f}%" if wall else "—"])
        for step, s in report.get("timings_s", {}).items()
    ]
    return _table(["step", "seconds", "% of wall"], rows)

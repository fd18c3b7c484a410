"""``python -m bench scale``: the whole build at growing corpus sizes, to see what grows with the documents.

A generated corpus of realistic documents — real sentences and code chunks from Debian packages (the sample
corpus's registry), recombined so that filters and near-dedup keep nearly all of them — is built at each size
(default 20k, 100k, 500k documents; ``SCALE_SIZES=20000,50000`` overrides) by ``python -m pipelines.build``
in a subprocess with a fresh output and stage cache.  Per size: wall time, per-stage documents and MB of input
per second per core (``report.json``'s ``timings_s`` against the corpus's documents and text bytes), the
driver's own peak RSS (its VmHWM, read by the driver at exit) and the peak of the whole process tree (PSS of
the driver, Ray's raylet/GCS and every worker, sampled every 0.5 s).  The "peer" of the summary rows is the
target of issue 18: the driver's peak grows by under 64 MB from the smallest to the largest size, and the
wall time per document at the largest size is at most 1.2x that at the middle size.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lxml.html
import yaml

from bench import cost
from bench.harness import RESULTS, Row
from bench.memory import PeakMemory
from dataengine.sources.sample import debian_dir, ensure_packages

DEFAULT_SIZES = (20_000, 100_000, 500_000)
DOC_SHARES = {"web_en": 0.5, "web_zh": 0.2, "code": 0.3}  # of the documents; the mix's token shares are code30's
TOKEN_SHARES = {"code": 0.30, "web_en": 0.49, "web_zh": 0.21}
DOCS_PER_FILE = 500  # one JSONL file is one unit of the read stage
DRIVER_GROWTH_MB = 64.0  # issue 18's targets
TIME_PER_DOC_GROWTH = 1.2
TREE_TARGET_MB, TREE_TARGET_DOCS = 4096.0, 1_000_000
UNTIMED = "rest of the wall time (start-up, report)"
REPORT_KEYS = ("timings_s", "workers", "totals", "sources")
NODES, CORES_PER_NODE = 100, 64  # the cluster of the 15T-token projection

# Where the real text comes from: (Debian package, directory inside it, file suffix).
EN_PAGES = [("python3.11-doc", "usr/share/doc/python3.11/html", ".html"),
            ("postgresql-doc-15", "usr/share/doc/postgresql-doc-15/html", ".html")]  # fmt: skip
ZH_PAGES = [("debian-reference-zh-cn", "usr/share/debian-reference", ".zh-cn.html"),
            ("libreoffice-help-zh-cn", "usr/share/libreoffice/help/zh-CN", ".html")]  # fmt: skip
CODE_TREES = [("libpython3.11-stdlib", "usr/lib/python3.11", ".py"),
              ("libpython3.11-minimal", "usr/lib/python3.11", ".py"),
              ("golang-github-gin-gonic-gin-dev", "usr/share/gocode/src", ".go"),
              ("golang-github-spf13-cobra-dev", "usr/share/gocode/src", ".go")]  # fmt: skip

EN_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
ZH_SPLIT = re.compile(r"(?<=[。！？])")
CJK = re.compile(r"[\u3400-\u9fff]")
SPACES = re.compile(r"\s+")
BLOCK = re.compile(r"\n\s*\n(?=\S|[ \t]+(?:async def|def|class|func) )")
# The driver: ``python -m pipelines.build`` (runpy does what ``-m`` does) that writes its own VmHWM at exit,
# after Ray's shutdown, so the peak of the very last moment is counted too.
DRIVER = """import atexit, runpy, sys
out = sys.argv.pop(1)
def hwm():
    kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))
    open(out, 'w').write(str(kb * 1024))
atexit.register(hwm)
runpy.run_module('pipelines.build', run_name='__main__', alter_sys=True)
"""


@dataclass(frozen=True)
class Pools:
    """The real material documents are made of: English and Chinese sentences, code chunks by extension."""

    en: list[str]
    zh: list[str]
    code: dict[str, list[str]]


def _files(package: str, sub: str, suffix: str) -> list[Path]:
    ensure_packages([package], progress=False)
    base = debian_dir() / "root" / package / sub
    return sorted(p for p in base.rglob(f"*{suffix}") if p.is_file())


def _paragraphs(path: Path) -> list[str]:
    try:
        root = lxml.html.parse(str(path)).getroot()
    except (ValueError, OSError):
        return []
    if root is None:
        return []
    return [SPACES.sub(" ", p.text_content()).strip() for p in root.iter("p")]


def _en_sentences(paragraph: str) -> list[str]:
    return [s for s in EN_SPLIT.split(paragraph) if 40 <= len(s) <= 400 and s[-1] in ".!?" and s.isascii()]


def _zh_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in ZH_SPLIT.split(paragraph) if len(CJK.findall(s)) >= max(8, len(s) // 3)]


def _code_chunks(path: Path) -> list[str]:
    """Blocks of a source file (split at blank lines before an unindented line or a method), 3 to 60 lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    blocks = BLOCK.split(text)
    return [b.strip("\n") for b in blocks if 3 <= b.count("\n") + 1 <= 60 and len(b) <= 4000]


def load_pools() -> Pools:
    """Sentences and chunks of the packages above (fetched once into the sample corpus's cache), deduplicated."""
    en = [s for pkg in EN_PAGES for f in _files(*pkg) for p in _paragraphs(f) for s in _en_sentences(p)]
    zh = [s for pkg in ZH_PAGES for f in _files(*pkg) for p in _paragraphs(f) for s in _zh_sentences(p)]
    code: dict[str, list[str]] = {}
    for package, sub, suffix in CODE_TREES:
        code.setdefault(suffix, []).extend(c for f in _files(package, sub, suffix) for c in _code_chunks(f))
    return Pools(list(dict.fromkeys(en)), list(dict.fromkeys(zh)), {k: list(dict.fromkeys(v)) for k, v in code.items()})


def _rng(seed: int, source: str, index: int) -> random.Random:
    """One generator per document: a document is a pure function of (seed, source, index)."""
    digest = hashlib.sha256(f"{seed}:{source}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def make_document(pools: Pools, source: str, index: int, seed: int = 0) -> dict[str, str]:
    """One JSONL record: 3-8 paragraphs of 2-6 English or 3-8 Chinese sentences, or 3-8 code chunks of one
    language; drawn from pools of tens of thousands, two documents almost never share a long run of text."""
    rng = _rng(seed, source, index)
    if source == "web_en":
        paras = [" ".join(rng.choices(pools.en, k=rng.randint(2, 6))) for _ in range(rng.randint(3, 8))]
        return {"url": f"https://en.scale.invalid/{index:08d}.html", "text": "\n\n".join(paras)}
    if source == "web_zh":
        paras = ["".join(rng.choices(pools.zh, k=rng.randint(3, 8))) for _ in range(rng.randint(3, 8))]
        return {"url": f"https://zh.scale.invalid/{index:08d}.html", "text": "\n\n".join(paras)}
    suffixes = sorted(pools.code)  # a language in proportion to its pool, so no small pool is drawn thin
    suffix = rng.choices(suffixes, weights=[len(pools.code[s]) for s in suffixes])[0]
    chunks = rng.choices(pools.code[suffix], k=rng.randint(3, 8))
    return {"path": f"scale/{index // DOCS_PER_FILE:05d}/{index:08d}{suffix}", "text": "\n\n\n".join(chunks) + "\n"}


def doc_counts(total: int) -> dict[str, int]:
    en, zh = round(total * DOC_SHARES["web_en"]), round(total * DOC_SHARES["web_zh"])
    return {"web_en": en, "web_zh": zh, "code": total - en - zh}


def write_corpus(pools: Pools, total: int, out: Path, seed: int = 0) -> dict[str, Any]:
    """JSONL files per source, ``sources.yaml`` and ``mix.yaml`` (the default pipeline with ``filters: []``, as
    issue 18's figures) under ``out``; returns the documents and text bytes per source and the two YAML paths."""
    docs, text_bytes, specs = doc_counts(total), {}, []
    for source, count in docs.items():
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        text_bytes[source] = 0
        for start in range(0, count, DOCS_PER_FILE):
            lines = []
            for i in range(start, min(start + DOCS_PER_FILE, count)):
                record = make_document(pools, source, i, seed)
                text_bytes[source] += len(record["text"].encode())
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            (folder / f"part-{start // DOCS_PER_FILE:05d}.jsonl").write_text("".join(lines), encoding="utf-8")
        spec: dict[str, Any] = {"name": source, "kind": "jsonl", "paths": [str(folder / "*.jsonl")]}
        if source == "code":
            spec |= {"domain": "code", "url_field": "path"}
        else:
            spec |= {"lang": "en" if source == "web_en" else "zh", "url_field": "url"}
        specs.append(spec)
    sources_yaml, mix_yaml = out / "sources.yaml", out / "mix.yaml"
    sources_yaml.write_text(yaml.safe_dump({"sources": specs}, sort_keys=False), encoding="utf-8")
    mix = {"name": "scale", "sources": str(sources_yaml), "shares": TOKEN_SHARES, "total_tokens": "auto",
           "max_epochs": 4, "held_out": 0.005, "seed": seed, "pipeline": {"filters": []}}  # fmt: skip
    mix_yaml.write_text(yaml.safe_dump(mix, sort_keys=False), encoding="utf-8")
    return {"docs": docs, "text_bytes": text_bytes, "sources_yaml": sources_yaml, "mix_yaml": mix_yaml}


def sizes_from_env(value: str | None) -> list[int]:
    """``SCALE_SIZES`` (comma-separated document counts, at least two, increasing) or the defaults."""
    if not value:
        return list(DEFAULT_SIZES)
    try:
        sizes = [int(v) for v in value.split(",")]
    except ValueError:
        raise ValueError(f"SCALE_SIZES={value!r}: expected comma-separated integers, e.g. 20000,100000") from None
    if len(sizes) < 2 or sizes != sorted(set(sizes)) or sizes[0] < 100:
        raise ValueError(f"SCALE_SIZES={value!r}: expected two or more increasing sizes of at least 100 documents")
    return sizes


@dataclass
class Measured:
    docs: int
    text_mb: float
    wall_s: float
    driver_peak_mb: float
    tree_peak_mb: float
    report: dict[str, Any]


def measure_build(corpus: dict[str, Any], out: Path) -> Measured:
    """One whole build of ``corpus`` into ``out`` (a fresh directory, hence a fresh private stage cache)."""
    hwm_file = out.parent / f"{out.name}.vmhwm"
    cmd = [sys.executable, "-c", DRIVER, str(hwm_file), "--mix", str(corpus["mix_yaml"]),
           "--sources", str(corpus["sources_yaml"]), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    log = out.parent / f"{out.name}.log"  # the build's progress, readable while it runs
    with log.open("w") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=stderr, stderr=stderr)
        try:
            with PeakMemory(proc.pid) as tree:
                proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: the build shuts its Ray down on SIGINT
                proc.send_signal(signal.SIGINT)
                proc.wait()
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"build of {out} failed ({proc.returncode}): {log.read_text()[-3000:]}")
    return Measured(
        docs=sum(corpus["docs"].values()),
        text_mb=sum(corpus["text_bytes"].values()) / 1e6,
        wall_s=wall,
        driver_peak_mb=int(hwm_file.read_text()) / 2**20,
        tree_peak_mb=tree.peak / 2**20,
        report=_report(out / "report.json"),
    )


def _report(path: Path) -> dict[str, Any]:
    """The build's report.json, with the fields this benchmark reads (a rewritten build must keep them)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in REPORT_KEYS if key not in report]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: bench scale reads them to rate the stages")
    return report


def stage_rates(m: Measured) -> dict[str, tuple[float, float]]:
    """stage -> (input documents, input MB) per second per core: each stage's time against the build's whole
    input, so that the cost model can add stages up per TB of input.  The wall time no stage accounts for (Ray's
    start-up, the report step, which ends after report.json is written) is a stage of its own, so they add up."""
    cores, timings = m.report["workers"], dict(m.report["timings_s"])
    timings[UNTIMED] = m.wall_s - sum(timings.values())
    return {
        stage: (m.docs / (seconds * cores), m.text_mb / (seconds * cores))
        for stage, seconds in timings.items()
        if seconds > 0
    }


def rejections(report: dict[str, Any]) -> dict[str, int]:
    """stage:reason -> documents, over all sources: what the generated corpus lost, to check it stays small."""
    total: dict[str, int] = {}
    for source in report["sources"].values():
        for reason, count in source["rejected"].items():
            total[reason] = total.get(reason, 0) + count
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def rows_for(results: list[Measured]) -> list[Row]:
    rows: list[Row] = []
    for m in results:
        n = f"{m.docs:,} docs ({m.text_mb:,.0f} MB)"
        rows += [
            Row(f"{n}: wall time", m.wall_s, "-", None, "s", higher_is_better=False),
            Row(f"{n}: driver peak RSS (VmHWM)", m.driver_peak_mb, "-", None, "MB", higher_is_better=False),
            Row(f"{n}: process-tree peak (PSS)", m.tree_peak_mb, "-", None, "MB", higher_is_better=False),
            Row(f"{n}: documents kept (out / in)", 100 * m.report["totals"]["docs_out"] / m.docs, "-", None, "%"),
        ]
        for stage, (docs_s, mb_s) in stage_rates(m).items():
            rows.append(Row(f"{n}: {stage}", docs_s, "-", None, "docs/s/core"))
            rows.append(Row(f"{n}: {stage}", mb_s, "-", None, "MB/s/core"))
    small, middle, large = results[0], results[-2], results[-1]
    rows.append(Row(f"driver peak at {large.docs:,} docs", large.driver_peak_mb,
                    f"target: {small.docs:,}-doc peak + {DRIVER_GROWTH_MB:.0f} MB",
                    small.driver_peak_mb + DRIVER_GROWTH_MB, "MB", higher_is_better=False))  # fmt: skip
    rows.append(Row(f"wall time per doc at {large.docs:,} docs", 1e3 * large.wall_s / large.docs,
                    f"target: {TIME_PER_DOC_GROWTH}x that at {middle.docs:,} docs",
                    TIME_PER_DOC_GROWTH * 1e3 * middle.wall_s / middle.docs, "ms/doc",
                    higher_is_better=False))  # fmt: skip
    if large.docs >= TREE_TARGET_DOCS:  # the whole build's peak bounds near-dedup's
        rows.append(Row(f"process-tree peak, whole build, {large.docs:,} docs", large.tree_peak_mb,
                        "target: near-dedup at 1M docs", TREE_TARGET_MB, "MB", higher_is_better=False))  # fmt: skip
    return rows + cost_rows(large)


def cost_rows(m: Measured) -> list[Row]:
    """The cost model (bench/cost.py) fed with the rates of one size (the largest: the least start-up in them)."""
    rates = {stage: mb_s for stage, (_, mb_s) in stage_rates(m).items()}
    rows = [Row(f"core-hours per TB of input text: {stage}", cost.core_hours_per_tb(rate), "-", None, "core-h/TB",
                higher_is_better=False) for stage, rate in rates.items()]  # fmt: skip
    dump = cost.project(rates, cost.CC_DUMP_TEXT_TB, NODES, CORES_PER_NODE)
    extract = {engine: cost.extraction_core_hours(cost.CC_DUMP_HTML_TB, rate)
               for engine, rate in cost.extraction_rates(RESULTS / "extract.json").items()}  # fmt: skip
    with_extract = dump["total_core_hours"] + extract["trafilatura"]
    corpus_hours = with_extract * cost.DUMPS_FOR_15T_TOKENS / (NODES * CORES_PER_NODE)
    low, high = cost.CC_NET_CORE_HOURS_PER_DUMP
    html = f"{cost.CC_DUMP_HTML_TB * cost.TB / 2**40:.0f} TiB of HTML"
    return rows + [
        Row(f"one CC dump ({cost.CC_DUMP_TEXT_TB:.0f} TB of text): build stages", dump["total_core_hours"],
            "cc_net per dump (2.5 days x 64 cores)", (low + high) / 2, "core-h", higher_is_better=False),
        *(Row(f"one CC dump ({html}): HTML extraction, {engine}", hours, "-", None, "core-h",
              higher_is_better=False) for engine, hours in extract.items()),
        Row(f"one CC dump ({cost.CC_DUMP_PAGES / 1e9:.2f}B pages): trafilatura + build stages", with_extract,
            "FineWeb datatrove allocation per dump (cap)",
            cost.FINEWEB_BASE_CORE_HOURS_CAP + cost.FINEWEB_DEDUP_CORE_HOURS_CAP, "core-h", higher_is_better=False),
        Row(f"15T tokens ({cost.DUMPS_FOR_15T_TOKENS} dumps) on {NODES} nodes x {CORES_PER_NODE} cores", corpus_hours,
            "-", None, "wall h", higher_is_better=False),
    ]  # fmt: skip


def _warm_models() -> None:
    """Train (once, into the cache) the language-ID and quality models the build uses, outside the timings."""
    from dataengine.filters.lid_train import default_model
    from dataengine.filters.quality_model import default_model as quality_model

    default_model()
    for lang in ("en", "zh"):
        quality_model(lang)


def run() -> list[Row]:
    sizes = sizes_from_env(os.environ.get("SCALE_SIZES"))
    pools = load_pools()
    print(f"pools: {len(pools.en):,} English and {len(pools.zh):,} Chinese sentences, "
          + ", ".join(f"{len(v):,} {k} chunks" for k, v in pools.code.items()), flush=True)  # fmt: skip
    _warm_models()
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"scale-{size}-") as tmp:
            corpus = write_corpus(pools, size, Path(tmp) / "corpus")
            print(f"{size:,} docs: building, progress in {tmp}/out.log", flush=True)
            m = measure_build(corpus, Path(tmp) / "out")
        print(f"{size:,} docs: {m.wall_s:.0f} s, driver {m.driver_peak_mb:.0f} MB, tree {m.tree_peak_mb:.0f} MB, "
              f"rejected {rejections(m.report)}", flush=True)  # fmt: skip
        results.append(m)
    return rows_for(results)

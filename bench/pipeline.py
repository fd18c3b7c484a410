"""The whole pipeline on the default build's crawled WARC files: ours against datatrove's FineWeb-style pipeline.

Input: every k-th page (at most ``BENCH_PIPELINE_PAGES``, default 2,300: every 2nd of 4,552) of the English
sites the default build crawls (the Debian documentation served on 127.0.0.1), copied from the WARC file in its
crawl cache into ``PIECES`` WARC files (untimed; datatrove parallelises over files), each response with Common Crawl's
``WARC-Identified-Payload-Type``.  Both sides read those files with FineWeb's settings:

- ours: the build's own stage list (``pipelines.build.Build``) on them as a ``warc`` source, 2 Ray workers:
  read -> extract (trafilatura) -> language ID (the project's fastText model, ``en`` at 0.65) -> Gopher repetition,
  Gopher quality, FineWeb quality, C4 (FineWeb's thresholds) -> MinHash near-dedup (14 bands x 8 rows, no
  Jaccard check, no line dedup) -> tokenize -> shards.  The stages FineWeb has no counterpart for are off:
  quality model, PII redaction, exact dedup, decontamination.  Pages are judged whole (``code_aware: false``).
- datatrove on ``LocalPipelineExecutor``, 2 workers: WarcReader -> Trafilatura -> LanguageFilter (the same
  fastText model, loaded from disk, never lid.176.bin) -> the same four filter classes with the same thresholds
  -> JsonlWriter; then its 4 MinHash stages (FineWeb's 14 x 8) and DocumentTokenizer with the same tokenizer.json
  (trained beforehand, untimed).  C4 runs last on both sides: datatrove's C4 filter drops lines, which FineWeb's
  example lets its FineWeb filter see; ours only decides, so with C4 last both decide on the same text.

Per core = wall seconds x 2 workers.  Ours: each stage's wall from the build's own timings (Ray Data streams
read, extract and the language tagger together; language decision and filters together); end to end is the
build's wall with Ray's start-up.  datatrove: each executor's wall; its first executor (reader to writer) is split
between the stages by each step's share of the time its ``stats.json`` records.  Every rate counts the pipeline's
input (pages and MB of HTML in the WARC responses) over that stage's core-seconds, so stage ratios are time
ratios.  Decisions: a page is kept when it reaches the tokenizer; both sides' keep/drop are compared per URL.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
from datatrove.pipeline.filters import LanguageFilter
from datatrove.utils.lid import FT176LID
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from bench.corpus import plain_texts
from bench.dedup import datatrove_config
from bench.harness import Row, timed
from bench.memory import TreeCpu
from dataengine.config import (
    DecontamConfig,
    FilterSpec,
    LangIdConfig,
    LineDedupConfig,
    MixConfig,
    NearDedupConfig,
    PipelineConfig,
    QualityModelConfig,
    SourceConfig,
)
from dataengine.filters import build_rule
from dataengine.filters.lid_train import default_model
from dataengine.runtime import ray_session
from dataengine.sources import list_units
from dataengine.sources.sample import sample_sources
from pipelines.build import Build, make_console
from tokenizer.train import train

WORKERS = 2
PAGES = int(os.environ.get("BENCH_PIPELINE_PAGES", 2_300))  # at most, of the 4,552 crawled: every k-th page
PIECES = WORKERS * 16  # WARC files (datatrove parallelises over files, our warc reader too)
LANG_THRESHOLD = 0.65  # FineWeb's LanguageFilter threshold
TOKENIZER_TEXT_BYTES = 5_000_000
# FineWeb's thresholds (datatrove's defaults; C4 keeps lines without terminal punctuation), C4 last
FILTERS = [
    FilterSpec(name="gopher_repetition", domains=["en"]),
    FilterSpec(name="gopher_quality", domains=["en"]),
    FilterSpec(name="fineweb_quality", domains=["en"]),
    FilterSpec(name="c4_quality", domains=["en"], params={"filter_no_terminal_punct": False}),
]
# our stage timings (keys of the build's ``timings_s``) and datatrove's steps/executors, per compared stage
OUR_STAGES = {
    "read+extract+langid": ["read+extract+langid"],
    "filters": ["langid+filters"],
    "near-dedup": ["near_dedup"],
    "tokenize+write": ["tokenizer", "tokenize", "held_out", "mix+write"],
}


# -- input -----------------------------------------------------------------------------------------------------
def crawled_source() -> SourceConfig:
    """The default build's ``web_en`` source (kind ``crawl``): listing its units reuses the cached crawl."""
    return next(s for s in sample_sources() if s.name == "web_en")


def split_warcs(source: SourceConfig, dest: Path, pages: int, pieces: int) -> None:
    """Every k-th crawled page (about ``pages`` of them), its records copied into ``pieces`` WARC files.

    Each response gets the ``WARC-Identified-Payload-Type`` that Common Crawl's records carry (here the HTTP
    Content-Type): without it datatrove's reader asks libmagic, which calls the XHTML pages ``text/xml`` and
    skips them (378 of 569 in one piece).
    """
    units = [u for u in list_units([source]) if u["member"] == "warc"]
    chosen = units[:: -(-len(units) // pages)]
    dest.mkdir(parents=True)
    for i in range(pieces):
        with open(dest / f"{i:03d}.warc.gz", "wb") as out:
            writer = WARCWriter(out, gzip=True)
            for unit in chosen[i * len(chosen) // pieces : (i + 1) * len(chosen) // pieces]:
                with open(unit["path"], "rb") as f:
                    f.seek(unit["offset"])
                    piece = f.read() if unit["end"] < 0 else f.read(unit["end"] - unit["offset"])
                for record in ArchiveIterator(io.BytesIO(piece)):
                    if record.rec_type == "response" and record.http_headers is not None:
                        ctype = record.http_headers.get_header("Content-Type") or ""
                        record.rec_headers.add_header("WARC-Identified-Payload-Type", ctype.split(";")[0].strip())
                    writer.write_record(record)


def responses(folder: Path) -> tuple[set[str], int]:
    """URLs of the HTTP responses in the WARC files, and their payload bytes."""
    urls, size = set(), 0
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response":
                    urls.add(record.rec_headers.get_header("WARC-Target-URI"))
                    size += len(record.content_stream().read())
    return urls, size


# -- CPU time ------------------------------------------------------------------------------------------------
# -- decisions -------------------------------------------------------------------------------------------------
def agreement(universe: set[str], ours: dict[str, str | None], peer_kept: set[str]) -> tuple[float, Counter[str]]:
    """Share of ``universe`` both keep or both drop, and the differing pages by our decision (our reason's stage,
    or ``kept`` where only we keep).  A URL ours never saw counts as dropped by us."""
    differ: Counter[str] = Counter()
    for url in universe:
        reason = ours.get(url, "unseen")
        if (reason is None) != (url in peer_kept):
            differ["kept" if reason is None else reason.split(":")[0]] += 1
    return 1 - sum(differ.values()) / max(1, len(universe)), differ


# -- ours ------------------------------------------------------------------------------------------------------
def our_mix() -> MixConfig:
    """The build's config with FineWeb's settings on ``web_en`` alone, and no stage FineWeb lacks."""
    pipe = PipelineConfig(
        langid=LangIdConfig(min_score=LANG_THRESHOLD),
        quality_model=QualityModelConfig(enabled=False),
        pii=False,
        filters=FILTERS,
        code_aware=False,
        exact_dedup=False,
        near_dedup=NearDedupConfig(threshold=0.0, lines=LineDedupConfig(enabled=False)),
        decontam=DecontamConfig(enabled=False),
    )
    return MixConfig(name="bench-pipeline", shares={"web_en": 1.0}, max_epochs=1.0, pipeline=pipe)


def run_ours(warcs: Path, tokenizer: Path, work: Path) -> tuple[float, dict[str, float], dict]:
    """Wall seconds of Ray's start and the build, its stage timings, and each URL's decision (reason or None)."""
    source = SourceConfig(name="web_en", kind="warc", lang="en", paths=[str(warcs / "*.warc.gz")])
    start = time.perf_counter()
    with ray_session(WORKERS) as cpus:
        build = Build(our_mix(), [source], str(work / "out"), cpus, str(tokenizer), make_console(),
                      str(work / "stages"))  # fmt: skip
        report = build.run()
        seconds = time.perf_counter() - start
    cleaned = next((work / "stages").glob("cleaned-*"))
    table = pads.dataset(cleaned / "docs", format="parquet").to_table(columns=["url", "reject"])
    decisions = dict(zip(table["url"].to_pylist(), table["reject"].to_pylist(), strict=True))
    return seconds, report["timings_s"], decisions


# -- datatrove -------------------------------------------------------------------------------------------------
class OurLID(FT176LID):
    """datatrove's fastText LID class, loading our model from disk instead of downloading lid.176.bin."""

    def __init__(self, model_path: str, languages: list[str]) -> None:
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self) -> Any:
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_path)
        return self._model


class OurLanguageFilter(LanguageFilter):
    """FineWeb's language filter (English above 0.65) on our model."""

    def __new__(cls, *args: Any, **kwargs: Any) -> OurLanguageFilter:
        """Without datatrove's dependency check: it asks for the ``fasttext-numpy2-wheel`` distribution, and this
        project installs the same ``fasttext`` module as ``fasttext-numpy2``."""
        return object.__new__(cls)

    def __init__(self, model_path: str) -> None:
        super().__init__(languages=["en"], language_threshold=LANG_THRESHOLD)
        self.model = OurLID(model_path, ["en"])


def _executor(pipeline: list, tasks: int, logs: Path) -> float:
    """Wall seconds of one LocalPipelineExecutor run with ``WORKERS`` workers."""
    from datatrove.executor import LocalPipelineExecutor

    executor = LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=WORKERS, logging_dir=str(logs))
    return timed(executor.run)[0]


def _step_times(logs: Path) -> list[tuple[str, float]]:
    """(step name, seconds summed over tasks) from an executor's merged ``stats.json``."""
    return [(step["name"], step["time_stats"]["total"]) for step in json.loads((logs / "stats.json").read_text())]


def _jsonl_urls(folder: Path) -> set[str]:
    return {json.loads(line)["metadata"]["url"] for p in folder.glob("*.jsonl.gz") for line in gzip.open(p, "rt")}


def run_datatrove(warcs: Path, tokenizer: Path, work: Path) -> tuple[dict[str, float], set[str]]:
    """Core-seconds per compared stage (and ``end to end``), and the URLs that reach the tokenizer."""
    from datatrove.pipeline.dedup.minhash import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter

    config, logs = datatrove_config(), work / "logs"
    walls = {
        "main": _executor([WarcReader(str(warcs)), Trafilatura(favour_precision=False, deduplicate=False, timeout=10),
                           OurLanguageFilter(str(default_model())),
                           *(build_rule(f, "datatrove").filter for f in FILTERS),
                           JsonlWriter(str(work / "filtered"))], PIECES, logs / "main"),
        "sig": _executor([JsonlReader(str(work / "filtered")),
                          MinhashDedupSignature(str(work / "sigs"), config=config)], PIECES, logs / "sig"),
        "buckets": _executor([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
                             config.num_buckets, logs / "buckets"),
        "cluster": _executor([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)], 1,
                             logs / "cluster"),
        "filter": _executor([JsonlReader(str(work / "filtered")), MinhashDedupFilter(str(work / "remove")),
                             JsonlWriter(str(work / "deduped"))], PIECES, logs / "filter"),
        "tokenize": _executor([JsonlReader(str(work / "deduped")),
                               DocumentTokenizer(str(work / "tokens"), tokenizer_name_or_path=str(tokenizer))],
                              PIECES, logs / "tokenize"),
    }  # fmt: skip
    core = {name: wall * WORKERS for name, wall in walls.items()}
    return _datatrove_stages(core, _step_times(logs / "main")), _jsonl_urls(work / "deduped")


def _datatrove_stages(core: dict[str, float], main_steps: list[tuple[str, float]]) -> dict[str, float]:
    """The first executor's core-seconds split by its steps' time shares (reader, extractor and language ID;
    the four filters; the writer), the MinHash executors together, the tokenizer."""
    total = sum(t for _, t in main_steps) or 1.0
    share = [t / total for _, t in main_steps]
    return {
        "read+extract+langid": core["main"] * sum(share[:3]),
        "filters": core["main"] * sum(share[3 : 3 + len(FILTERS)]),
        "near-dedup": sum(core[k] for k in ("sig", "buckets", "cluster", "filter")),
        "tokenize+write": core["tokenize"],
        "end to end": sum(core.values()),
    }


# -- the run ---------------------------------------------------------------------------------------------------
def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        split_warcs(crawled_source(), work / "warcs", PAGES, PIECES)
        universe, html_bytes = responses(work / "warcs")
        tokenizer = work / "tokenizer.json"
        train(plain_texts(TOKENIZER_TEXT_BYTES)[::2], out=tokenizer)
        with TreeCpu() as ours_cpu:
            ours_wall, timings, decisions = run_ours(work / "warcs", tokenizer, work / "ours")
        with TreeCpu() as peer_cpu:
            peer, peer_kept = run_datatrove(work / "warcs", tokenizer, work / "datatrove")
    ours = {name: sum(timings.get(k, 0.0) for k in keys) * WORKERS for name, keys in OUR_STAGES.items()}
    ours["end to end"] = ours_wall * WORKERS
    ours["end to end, CPU time"], peer["end to end, CPU time"] = ours_cpu.seconds, peer_cpu.seconds
    same, differ = agreement(universe, decisions, peer_kept)
    kept = sum(decisions.get(u, "unseen") is None for u in universe)
    print(f"our stage timings (s): {timings}")
    print(f"datatrove core-seconds: { {k: round(v, 1) for k, v in peer.items()} }")
    for url in sorted(u for u in universe if (decisions.get(u, "unseen") is None) != (u in peer_kept)):
        peer_decision = "keep" if url in peer_kept else "drop"
        print(f"  differs: {url} ours={decisions.get(url, 'unseen')} datatrove={peer_decision}")
    print(f"kept: ours {kept:,}, datatrove {len(peer_kept & universe):,} of {len(universe):,}; differ: {dict(differ)}")
    return rows(ours, peer, len(universe), html_bytes / 1e6, same, differ)


def rows(
    ours: dict[str, float], peer: dict[str, float], pages: int, mb: float, same: float, differ: Counter[str]
) -> list[Row]:
    """Pages/s and MB/s per core for every compared stage and end to end, then the decision agreement."""
    peer_name = "datatrove FineWeb-style, LocalPipelineExecutor"
    out = []
    for stage in ours:
        what = f"{stage}, {pages:,} crawled pages ({mb:.1f} MB HTML), {WORKERS} workers"
        per = "CPU second (process tree)" if "CPU" in stage else "core (wall x workers)"
        out += [
            Row(what, pages / ours[stage], peer_name, pages / peer[stage], f"pages/s per {per}"),
            Row(what, mb / ours[stage], peer_name, mb / peer[stage], f"MB/s per {per}"),
        ]
    differing = ", ".join(f"{k} {v}" for k, v in differ.most_common()) or "none"
    out.append(Row(f"same keep/drop decision per URL ({sum(differ.values())} differ, by our decision: {differing})",
                   same, "datatrove's decisions", 1.0, "share of pages"))  # fmt: skip
    return out

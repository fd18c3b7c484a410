"""The cost model on paper: measured MB/s per core of each build stage -> core-hours per TB of input, projected
for one Common Crawl dump and for a 15T-token corpus on an N-node cluster, beside what peers published.

Every figure from outside this project is a constant below with its source; the only measured inputs are the
per-stage rates of ``python -m bench scale`` and the extraction rates of ``python -m bench extract``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TB = 1e12
# Common Crawl, December 2024 (CC-MAIN-2024-51): 2.64 billion pages, 394 TiB of uncompressed WARC content
# (https://blog.commoncrawl.org/blog/december-2024-crawl-archive-now-available).
CC_DUMP_PAGES = 2.64e9
# Extracted text of one dump: February 2019's WET files (Common Crawl's own text extraction) were 7.62 TiB
# gzip-compressed for 2.9 billion pages (https://commoncrawl.org/blog/february-2019-crawl-archive-now-available);
# assuming gzip's usual ~3x on plain text, ~8 KB of WET text per page, scaled to December 2024's page count.
CC_WET_TB_PER_PAGE = 7.62 * 2**40 * 3 / 2.9e9 / TB
CC_DUMP_TEXT_TB = CC_DUMP_PAGES * CC_WET_TB_PER_PAGE
# FineWeb: 15T GPT-2 tokens from 96 Common Crawl dumps (https://huggingface.co/datasets/HuggingFaceFW/fineweb,
# https://huggingface.co/spaces/HuggingFaceFW/blogpost-fineweb-v1): a 15T-token corpus is ~96 dumps of input.
DUMPS_FOR_15T_TOKENS = 96
# The same dump's HTML: "394 TiB of uncompressed content" (same announcement), which HTML extraction reads.
CC_DUMP_HTML_TB = 394 * 2**40 / TB
# FineWeb's per-dump Slurm allocations in datatrove's examples/fineweb.py (time limits, so upper bounds, not
# measurements): base processing (WARC read, trafilatura, filters) 8000 tasks x 1 CPU x 10 h; MinHash dedup
# 1000 x 5 h signatures + 700 x 3 CPUs x 2 h buckets + 1 x 8 CPUs x 30 h clustering + 1000 x 5 h filter.
FINEWEB_BASE_CORE_HOURS_CAP = 8000 * 10.0
FINEWEB_DEDUP_CORE_HOURS_CAP = 1000 * 5.0 + 700 * 3 * 2.0 + 8 * 30.0 + 1000 * 5.0
# RedPajama-1T ran cc_net (reads WET: no HTML extraction) on five dumps; issue 18 quotes 2-3 days per dump on
# 64 cores. The primary source of that figure was not found; RedPajama's data_prep/cc/README.md runs it on one
# large-memory machine with 20 processes and 5000 shards.
CC_NET_CORE_HOURS_PER_DUMP = (2 * 24 * 64.0, 3 * 24 * 64.0)


def core_hours_per_tb(mb_per_s_per_core: float) -> float:
    """Core-hours one stage spends on a TB of input at this rate (input MB per second per core)."""
    if not mb_per_s_per_core > 0:
        raise ValueError(f"a stage's rate must be positive MB/s per core, got {mb_per_s_per_core}")
    return TB / 1e6 / mb_per_s_per_core / 3600


def project(mb_per_s_per_core: dict[str, float], input_tb: float, nodes: int, cores_per_node: int) -> dict[str, Any]:
    """Core-hours per stage and in all for ``input_tb`` TB of input, and the wall hours on ``nodes`` nodes of
    ``cores_per_node`` cores if every stage scaled linearly (what issue 18's bounded driver is for)."""
    if input_tb <= 0 or nodes < 1 or cores_per_node < 1:
        raise ValueError(
            f"need input_tb > 0, nodes >= 1, cores_per_node >= 1; got {input_tb}, {nodes}, {cores_per_node}"
        )
    hours = {stage: core_hours_per_tb(rate) * input_tb for stage, rate in mb_per_s_per_core.items()}
    total = sum(hours.values())
    return {"core_hours": hours, "total_core_hours": total, "wall_hours": total / (nodes * cores_per_node)}


def extraction_rates(extract_json: Path) -> dict[str, float]:
    """MB of HTML per second per core of each engine, as ``python -m bench extract`` measured them on Debian's
    English documentation pages (per MB, not per page: trafilatura's MB/s held within 0.77-0.87 on three page
    sets whose pages/s ranged 40-321 with page size)."""
    row = next(r for r in json.loads(extract_json.read_text()) if r["what"].startswith("extract Debian English docs")
               and r["unit"] == "MB/s per core (CPU time)")  # fmt: skip
    return {"trafilatura": row["peer_value"], "resiliparse": row["ours"]}


def extraction_core_hours(html_tb: float, mb_per_s_per_core: float) -> float:
    """HTML -> text of ``html_tb`` TB of HTML at a measured single-core extraction rate."""
    return core_hours_per_tb(mb_per_s_per_core) * html_tb

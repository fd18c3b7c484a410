"""The default build, cold and warm, and its costliest stage against datatrove on the same pages.

- cold: a fresh corpus cache (the Debian packages are fetched and unpacked) and a fresh Ray;
- warm: the same command again (cache reused);
- read + extract + filter of the English sample pages: our Ray Data stages vs datatrove's own pipeline
  (JsonlReader -> Trafilatura -> GopherQualityFilter on LocalPipelineExecutor), 2 workers each, same pages,
  same Gopher thresholds.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray.data

from bench.corpus import page_paths, sample_by_name
from bench.harness import Row, timed
from bench.memory import PeakMemory
from dataengine.config import FilterSpec
from dataengine.extract import extract_batch
from dataengine.filters import QualityStage
from dataengine.runtime import ray_session
from dataengine.sources import list_units, read_units

GOPHER = {"max_non_alpha_words_ratio": 0.6}


def _build(out: Path, cache: Path) -> tuple[float, int]:
    """Wall seconds and peak memory (PSS of the driver and every Ray process it started) of one build."""
    env = {**os.environ, "DATAENGINE_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "pipelines.build", "--mix", "code30", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory(proc.pid) as memory:
        _, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"build failed: {stderr[-2000:]}")
    return seconds, memory.peak


def _ours_pages_per_s(workers: int) -> tuple[float, int, int]:
    source = sample_by_name()["web_en"]
    filters = [FilterSpec(name="gopher_quality", domains=["en"], params=GOPHER)]
    with ray_session(workers) as cpus:
        units = list_units([source])

        def go() -> ray.data.Dataset:
            ds = ray.data.from_items(units, override_num_blocks=cpus * 16)
            ds = ds.map_batches(
                read_units,
                fn_kwargs={"sources": {source.name: source}, "max_bytes": 10**7},
                batch_format="pyarrow",
                batch_size=32,
            )
            ds = ds.map_batches(extract_batch, batch_format="pyarrow")
            ds = ds.map_batches(
                QualityStage,
                fn_constructor_kwargs={"filters": filters, "sources": [source]},
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=cpus),
            )
            return ds.materialize()

        seconds, ds = timed(go)
        kept = ds.filter(lambda r: r["reject"] is None).count()
    return len(units) / seconds, len(units), kept


def _datatrove_pages_per_s(workers: int, work: Path) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    pages = page_paths(sample_by_name()["web_en"])
    shards = workers * 8
    (work / "in").mkdir(parents=True)
    for i in range(shards):
        with gzip.open(work / "in" / f"{i:03d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for path in pages[i::shards]:
                html = Path(path).read_bytes().decode("utf-8", "replace")
                f.write(json.dumps({"text": html, "id": path}) + "\n")
    executor = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "in")),
            Trafilatura(favour_precision=False, timeout=10),
            GopherQualityFilter(**GOPHER),
            JsonlWriter(str(work / "out")),
        ],
        tasks=shards,
        workers=workers,
        logging_dir=str(work / "logs"),
    )
    seconds, _ = timed(executor.run)
    kept = sum(1 for p in (work / "out").glob("*.jsonl.gz") for _ in gzip.open(p, "rt"))
    return len(pages) / seconds, kept


def run() -> list[Row]:
    workers = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cold, _ = _build(tmp_path / "cold", tmp_path / "cache")
        warm, peak = _build(tmp_path / "warm", tmp_path / "cache")
        ours, pages, ours_kept = _ours_pages_per_s(workers)
        peer, peer_kept = _datatrove_pages_per_s(workers, tmp_path / "datatrove")
    return [
        Row("default build code30, cold (fetch + build)", cold, "-", None, "s", higher_is_better=False),
        Row("default build code30, warm", warm, "-", None, "s", higher_is_better=False),
        Row("default build code30, warm: peak memory (PSS, all processes)", peak / 2**30, "-", None, "GiB",
            higher_is_better=False),
        Row(f"read+extract+gopher, {pages:,} English pages (kept {ours_kept:,} vs {peer_kept:,})", ours,
            "datatrove Trafilatura+Gopher", peer, "pages/s"),
    ]  # fmt: skip

"""Quality-rule throughput: our quality stage on Ray Data vs datatrove's ``LocalPipelineExecutor``.

Same documents (pages of the embedded sample extracted as the build extracts them, and its code files), same
machine, same run.  English: our default English chain vs datatrove running the same filters with the same
thresholds (Gopher repetition and quality, FineWeb, C4; a ``LambdaFilter`` for the length rule), each on every
core (Ray actors / datatrove tasks over as many JSONL shards); both must keep the same documents.  Chinese
and code chains have no datatrove counterpart (FineWeb-2's Chinese filters need jieba; datatrove has no code
rules), so they are reported alone.  Documents per second per core, wall clock: worker start-up (spaCy,
OpenCC) and the reading around the filters count on both sides, which dominates the short Chinese and code runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LambdaFilter,
)
from datatrove.pipeline.readers import JsonlReader

from bench.corpus import page_paths, sample_by_name
from bench.harness import Row, timed
from dataengine.config import FilterSpec, PipelineConfig, SourceConfig
from dataengine.extract import extract_batch
from dataengine.filters import QualityStage
from dataengine.filters.rules_text import MinLength
from dataengine.runtime import ray_session
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.files import expand

DOCS_PER_DOMAIN = 1_000
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="source_dir", paths=[]),
]


def sample_tables(limit: int) -> dict[str, pa.Table]:
    """Extracted documents per source, every k-th page/file so that each site and repository is represented."""
    sources = sample_by_name()
    rows: dict[str, list[dict]] = {}
    for name in ("web_en", "web_zh"):
        paths = page_paths(sources[name])
        rows[name] = [
            doc_row(source=name, kind="html", url=p, raw=Path(p).read_bytes())
            for p in paths[:: max(1, len(paths) // limit)][:limit]
        ]
    files = [
        (path, os.path.relpath(path, spec.path))
        for spec in sources["code"].path_specs()
        for path in expand(spec.path)
        if os.path.isfile(path) and not os.path.islink(path)
    ]
    rows["code"] = [
        doc_row(source="code", kind="code", url=rel, raw=Path(path).read_bytes(), meta={"path": rel})
        for path, rel in files[:: max(1, len(files) // limit)][:limit]
    ]
    tables = {}
    for name, batch in rows.items():
        table = extract_batch(rows_to_table(batch))
        tables[name] = table.filter(pc.is_null(table["reject"]))
    return tables


def ours(table: pa.Table, filters: list[FilterSpec], cpus: int) -> tuple[float, int]:
    """Seconds and documents kept by the quality stage in an actor pool of ``cpus`` workers."""
    ds = ray.data.from_arrow(table).repartition(cpus * 4).materialize()

    def go() -> int:
        out = ds.map_batches(
            QualityStage,
            fn_constructor_kwargs={"filters": filters, "sources": SOURCES},
            batch_format="pyarrow",
            batch_size=256,
            compute=ray.data.ActorPoolStrategy(size=cpus),
        ).materialize()
        return sum(1 for r in out.select_columns(["reject"]).iter_rows() if r["reject"] is None)

    return timed(go)


def datatrove(texts: list[str], spec: dict[str, FilterSpec], cpus: int) -> tuple[float, int]:
    """Seconds and documents kept by datatrove's executor running the same filters over ``cpus`` shards."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in"
        data.mkdir()
        for shard in range(cpus):
            with open(data / f"{shard:02d}.jsonl", "w", encoding="utf-8") as f:
                for i in range(shard, len(texts), cpus):
                    f.write(json.dumps({"text": texts[i], "id": str(i)}) + "\n")
        min_length = MinLength(**spec["min_length"].params)

        def count(data, rank: int = 0, world_size: int = 1):  # the last step: count what reaches it
            n = sum(1 for _ in data)
            (Path(tmp) / f"kept-{rank}").write_text(str(n))
            return iter(())

        pipeline = [
            JsonlReader(str(data)),
            LambdaFilter(lambda doc: min_length(doc.text) is None),
            GopherRepetitionFilter(**spec["gopher_repetition"].params),
            GopherQualityFilter(**spec["gopher_quality"].params),
            FineWebQualityFilter(**spec["fineweb_quality"].params),
            C4QualityFilter(**spec["c4_quality"].params),
            count,
        ]
        executor = LocalPipelineExecutor(pipeline, tasks=cpus, workers=cpus, logging_dir=str(Path(tmp) / "logs"))
        seconds, _ = timed(executor.run)
        kept = [int((Path(tmp) / f"kept-{r}").read_text()) for r in range(cpus)]
    return seconds, sum(kept)


def run() -> list[Row]:
    tables = sample_tables(DOCS_PER_DOMAIN)
    chain = PipelineConfig().filters
    en = [f for f in chain if "en" in f.domains]
    by_name = {f.name: f for f in en}
    rows = []
    with ray_session() as cpus:
        en_table = tables["web_en"]
        peer_s, peer_kept = datatrove(en_table["text"].to_pylist(), by_name, cpus)
        ours_s, ours_kept = ours(en_table, en, cpus)
        assert ours_kept == peer_kept, (ours_kept, peer_kept)
        n = en_table.num_rows
        rows.append(
            Row(f"English chain, {n:,} pages ({ours_kept:,} kept)", n / ours_s / cpus,
                "datatrove LocalPipelineExecutor, same filters", n / peer_s / cpus, "docs/s/core")
        )  # fmt: skip
        for name, domain in (("web_zh", "zh"), ("code", "code")):
            table = tables[name]
            seconds, kept = ours(table, [f for f in chain if domain in f.domains], cpus)
            rows.append(
                Row(f"{'Chinese' if domain == 'zh' else 'code'} chain, {table.num_rows:,} docs ({kept:,} kept)",
                    table.num_rows / seconds / cpus, "none (no datatrove counterpart)", None, "docs/s/core")
            )  # fmt: skip
    return rows

"""Build a mix: ``python -m pipelines.build --mix code30``.

sources -> read -> extract -> quality rules -> exact dedup -> held-out slice -> tokenizer -> tokenize -> mix
-> shards + manifest + report.  Every step runs on Ray Data; only small per-document columns (ids, token
counts) come back to the driver, to plan the mix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer

from dataengine.atomic import atomic_open, write_json_atomic
from dataengine.config import QUALITY_LANGS, MixConfig, SourceConfig, load_mix, load_sources
from dataengine.dedup.exact import find_duplicates, mark_duplicates
from dataengine.dedup.near import near_dedup
from dataengine.extract import extract_batch
from dataengine.filters import QualityStage
from dataengine.filters.decontam import REASON as DECONTAM_REASON
from dataengine.filters.decontam import STAGE as DECONTAM_STAGE
from dataengine.filters.decontam import build_index, decontaminate_batch
from dataengine.filters.langid import ROUTED as LANGID_ROUTED
from dataengine.filters.langid import STAGE as LANGID_STAGE
from dataengine.filters.langid import LangIdTagger, expected_languages, langid_decide
from dataengine.filters.lid_train import default_model
from dataengine.filters.pii import redact_batch
from dataengine.filters.quality_model import STAGE as QUALITY_STAGE
from dataengine.filters.quality_model import QualityTagger, quality_decide, quality_summary
from dataengine.filters.quality_model import default_model as default_quality_model
from dataengine.mix.plan import MixPlan, is_held_out, order_key, plan_mix
from dataengine.report.funnel import KEPT, SourceFunnel, batch_counts, check_balance, sum_counts
from dataengine.report.render import write_report
from dataengine.runtime import ray_session
from dataengine.schema import set_column, stable_hash
from dataengine.shards.manifest import MANIFEST, write_manifest
from dataengine.shards.writer import ShardWriter, sha256_file, shard_schema
from dataengine.sources import list_units, read_units
from dataengine.tokenize import TokenizeStage
from tokenizer.train import eos_id, train

HELD_OUT = "held_out"
STAGE_ORDER = ["crawl", "read", "extract", LANGID_STAGE, QUALITY_STAGE]
CLEANED_META = "cleaned.json"
TAGGED_META = "tagged.json"
PRIVATE_STAGES = ".stages"  # an output's own stage cache: its cleaned-* entries go when the build completes
REPORT_EXAMPLES = 3  # rejected documents per (source, reason), kept per source, shown in report.html
REPORT_EXAMPLE_CHARS = 400
STAGE_CACHE_VERSION = 3  # bump when a cached stage's code changes what it produces


@dataclass
class Cleaned:
    """What the mix-independent stages report beside the documents (kept with them in the stage cache)."""

    lines_removed: dict[str, dict[str, int]]
    decontamination: dict[str, Any]
    cache: dict[str, Any]


class Build:
    """One build of one mix into one output directory."""

    def __init__(
        self,
        mix: MixConfig,
        sources: list[SourceConfig],
        out: Path,
        cpus: int,
        tokenizer: Path | None = None,
        console: Console | None = None,
        stage_cache: Path | None = None,
        resume: bool = False,
    ) -> None:
        self.mix, self.out, self.cpus = mix, out, cpus
        self.sources = with_mix_licenses(sources, mix.licenses)
        unknown = sorted(set(mix.pipeline.langid.route.values()) - {s.name for s in sources})
        if unknown:
            raise ValueError(f"langid.route names no source {', '.join(unknown)}; sources: {[s.name for s in sources]}")
        self.tokenizer_path = tokenizer
        # without a shared cache, the stages are kept inside the output until the build completes: --resume
        self.private_cache = stage_cache is None
        self.stage_cache = stage_cache if stage_cache is not None else out / PRIVATE_STAGES
        self.resume = resume
        self.console = console or make_console()
        self.pipe = mix.pipeline
        self.timings: dict[str, float] = {}
        self.doc_bytes: dict[str, int] = {}

    # -- the steps -------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        start = time.perf_counter()
        self._prepare_out()
        docs, cleaned = self._cleaned_documents()
        if self.mix.scramble_lines:
            docs = docs.map_batches(
                scramble_lines,
                fn_kwargs={"sources": self.mix.scramble_lines, "held_out": self.mix.held_out},
                batch_format="pyarrow",
            ).materialize()
        with self._step("tokenizer"):
            tokenizer_json = self._tokenizer(docs)
        with self._step("tokenize"):
            docs = docs.map_batches(
                TokenizeStage,
                fn_constructor_kwargs={"tokenizer_json": tokenizer_json},
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
                compute=ray.data.ActorPoolStrategy(size=self.cpus),
            ).materialize()
        with self._step("mix"):
            train_docs = self._training_token_counts(docs)
            plan = plan_mix(train_docs, self.mix.shares, self.mix.total_tokens, self.mix.max_epochs, self.mix.seed)
        with self._step("shards"):
            shards = self._write_shards(docs, plan)
            held_out = self._write_held_out(docs)
        with self._step("report"):
            funnel = self._funnel(docs, plan, train_docs)
            for name, removed in cleaned.lines_removed.items():
                funnel[name].lines_removed = removed
            check_balance(funnel)
            examples = self._write_examples(docs)
            manifest = self._manifest(shards, held_out, plan, tokenizer_json)
            report = self._report(funnel, plan, time.perf_counter() - start)
            report["decontamination"] = cleaned.decontamination
            report["stage_cache"] = cleaned.cache
            report["examples"] = examples
            scores = docs.select_columns(["source", "quality_score", "reject"]).to_arrow_refs()
            report["quality_scores"] = quality_summary(pa.concat_tables(ray.get(scores)))
            write_report(self.out, report)
            write_manifest(self.out, manifest)  # last: its presence marks a complete build
        if self.private_cache:  # the tags stay: a rebuild with other thresholds starts from them
            for entry in self.stage_cache.glob("cleaned-*"):
                shutil.rmtree(entry, ignore_errors=True)
        self._print_summary(report)
        return report

    def _cleaned_documents(self) -> tuple[ray.data.Dataset, Cleaned]:
        """Every document read, filtered, deduplicated and decontaminated: the stages that no mix setting changes.

        With a stage cache they are computed once per (sources, pipeline config, language-ID model) and read
        back by every later build of any mix: the experiment's ladder pays for them once.
        """
        cached = self._stage_cache_dir()
        meta = self._reusable_cleaned_meta(cached)
        if meta is not None:
            with self._step("cleaned documents (stage cache)"):
                docs = ray.data.read_parquet(str(cached / "docs")).materialize()
            self.console.print(f"reused the cleaned documents of {cached}")
            return docs, Cleaned(meta["lines_removed"], meta["decontamination"], {"hit": True, "key": cached.name})
        tagged = self._tagged_documents()
        with self._step("filter"):
            docs = self._filtered_documents(tagged)
        with self._step("exact_dedup"):
            if self.pipe.exact_dedup:
                duplicates = find_duplicates(docs)
                docs = docs.map_batches(mark_duplicates, fn_kwargs={"duplicates": duplicates}, batch_format="pyarrow")
        with self._step("near_dedup"):
            docs, lines_removed = near_dedup(docs, self.pipe.near_dedup, self.sources)
        with self._step("decontam"):
            docs, decontamination = self._decontaminate(docs)
        cleaned = Cleaned(lines_removed, decontamination, {"hit": False, "key": cached.name})
        with self._step("stage cache write"):
            shutil.rmtree(cached, ignore_errors=True)
            docs.write_parquet(str(cached / "docs"))
            meta = {"lines_removed": lines_removed, "decontamination": decontamination}
            write_json_atomic(cached / CLEANED_META, meta)  # last: marks the cache entry complete
        return docs, cleaned

    def _reusable_cleaned_meta(self, cached: Path) -> dict[str, Any] | None:
        """The cache entry's metadata, or None when there is none or its documents were decontaminated without
        tasks (their source unavailable then) that can be had now: those are cleaned again, not reused unchecked."""
        if not (cached / CLEANED_META).exists():
            return None
        meta = json.loads((cached / CLEANED_META).read_text(encoding="utf-8"))
        missed = meta["decontamination"].get("unavailable", {})
        if missed:
            from pretrain.eval.tasks import load_available

            found = missed.keys() - load_available((task, None) for task in missed)[1].keys()
            if found:
                self.console.print(f"the stage cache {cached.name} missed {', '.join(sorted(found))}: recleaning")
                return None
        return meta

    def _tagged_documents(self) -> ray.data.Dataset:
        """Every document read, extracted and tagged by the models (language, quality): no threshold yet.

        Tag first, threshold later: this level of the stage cache depends on the sources, the read limits and
        the models only, so a build that changes a filter threshold, a dedup or decontamination setting reads
        it back instead of extracting and running the models again.  It stays in the output's private cache
        after the build (``OUT/.stages/tagged-*``) for that reason.
        """
        models = {lang: sha256_file(path) for lang, path in self.quality_models.items()}
        cached = self._stage_cache_dir("tagged", {"max_file_bytes": self.pipe.max_file_bytes, "quality": models})
        if (cached / TAGGED_META).exists():
            with self._step("tagged documents (stage cache)"):
                docs = ray.data.read_parquet(str(cached / "docs")).materialize()
            self.console.print(f"reused the tagged documents of {cached}")
            return docs
        with self._step("read+extract+tag"):
            docs = self._read_and_tag()
        with self._step("stage cache write (tags)"):
            shutil.rmtree(cached, ignore_errors=True)
            docs.write_parquet(str(cached / "docs"))
            write_json_atomic(cached / TAGGED_META, {"docs": docs.count()})  # last: marks the entry complete
        return docs

    def _stage_cache_dir(self, level: str = "cleaned", settings: dict[str, Any] | None = None) -> Path:
        """A cache entry of the mix-independent stages, named by a hash of everything that changes them.

        ``cleaned`` depends on the whole pipeline section; ``tagged`` only on the ``settings`` given.
        """
        ignored = {"vocab_size", "tokenizer_sample_bytes", "shard_tokens", "rejects_sample_per_reason", "batch_size"}
        key = {
            "version": STAGE_CACHE_VERSION,
            # a licence choice is a threshold: the tags do not depend on it
            "sources": [s.model_dump(mode="json", exclude={"licenses"} if settings else None) for s in self.sources],
            "pipeline": settings if settings is not None else self.pipe.model_dump(mode="json", exclude=ignored),
            "lid_model": sha256_file(self.lid_model) if self.pipe.langid.enabled else None,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        return self.stage_cache / f"{level}-{digest}"

    def _decontaminate(self, docs: ray.data.Dataset) -> tuple[ray.data.Dataset, dict[str, Any]]:
        """Reject documents holding an evaluation item of the configured suite; report items and drops per task."""
        cfg = self.pipe.decontam
        if not cfg.enabled:
            return docs, {"enabled": False}
        from pretrain.eval.tasks import decontamination_texts, unavailable_lines  # the evaluation owns its items

        texts, unavailable = decontamination_texts(cfg.suite)
        for line in unavailable_lines(unavailable):
            self.console.print(f"[yellow]decontamination (their items are not checked): {line}[/]")
        index = build_index(texts, cfg)
        self.console.print(f"decontamination: {sum(index.items.values()):,} evaluation items, {index.size:,} n-grams")
        docs = docs.map_batches(decontaminate_batch, fn_kwargs={"index": index}, batch_format="pyarrow").materialize()
        dropped: dict[str, int] = {}
        for row in docs.map_batches(_decontam_counts, batch_format="pyarrow").take_all():
            dropped[row["task"]] = dropped.get(row["task"], 0) + row["docs"]
        return docs, {
            "enabled": True,
            "suite": cfg.suite,
            "word_ngram": cfg.word_ngram,
            "char_ngram": cfg.char_ngram,
            "items": index.items,
            "items_too_short": index.skipped,
            "unavailable": unavailable,
            "docs_dropped": dict(sorted(dropped.items())),
        }

    def _read_and_tag(self) -> ray.data.Dataset:
        """Read every unit, extract text, and tag each text document's language and quality (the models' work)."""
        units = list_units(self.sources)
        if not units:
            raise ValueError("the sources list no input files")
        self.console.print(f"[bold]{len(units):,}[/] input units from {len(self.sources)} sources")
        by_name = {s.name: s for s in self.sources}
        blocks = max(self.cpus * 4, min(len(units) // 64, 2000))
        ds = ray.data.from_items(units, override_num_blocks=min(blocks, len(units)))
        ds = ds.map_batches(
            read_units,
            fn_kwargs={"sources": by_name, "max_bytes": self.pipe.max_file_bytes},
            batch_format="pyarrow",
            batch_size=32,
            compute=ray.data.TaskPoolStrategy(size=self.cpus),
        )
        ds = ds.map_batches(
            extract_batch,
            batch_format="pyarrow",
            batch_size=self.pipe.batch_size,
            compute=ray.data.TaskPoolStrategy(size=self.cpus),
        )
        if self.pipe.langid.enabled:
            ds = ds.map_batches(
                LangIdTagger,
                fn_constructor_kwargs={"model_path": str(self.lid_model), "sources": self.sources},
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
                compute=ray.data.ActorPoolStrategy(size=self.cpus),
            )
        if self.quality_models:
            ds = ds.map_batches(
                QualityTagger,
                fn_constructor_kwargs={"model_paths": {lang: str(p) for lang, p in self.quality_models.items()}},
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
                compute=ray.data.ActorPoolStrategy(size=self.cpus),
            )
        return ds.materialize()

    def _filtered_documents(self, tagged: ray.data.Dataset) -> ray.data.Dataset:
        """The thresholds: language and quality-score decisions, quality rules, then PII redaction of what is kept."""
        ds = tagged
        if self.pipe.langid.enabled:
            ds = ds.map_batches(
                langid_decide,
                fn_kwargs={
                    "expected": expected_languages(self.sources),
                    "min_score": self.pipe.langid.min_score,
                    "route": self.pipe.langid.route,
                },
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
            )
        if self.quality_models and self.pipe.quality_model.min_score:
            ds = ds.map_batches(
                quality_decide,
                fn_kwargs={"min_score": self.pipe.quality_model.min_score},
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
            )
        ds = ds.map_batches(
            QualityStage,
            fn_constructor_kwargs={"filters": self.pipe.filters, "sources": self.sources},
            batch_format="pyarrow",
            batch_size=self.pipe.batch_size,
            compute=ray.data.ActorPoolStrategy(size=self.cpus),
        )
        if self.pipe.pii:
            ds = ds.map_batches(
                redact_batch,
                batch_format="pyarrow",
                batch_size=self.pipe.batch_size,
                compute=ray.data.TaskPoolStrategy(size=self.cpus),
            )
        return ds.materialize()

    @cached_property
    def quality_models(self) -> dict[str, Path]:
        """The quality classifier of each text language the sources hold (trained into the cache on first use)."""
        if not self.pipe.quality_model.enabled:
            return {}
        langs = sorted({s.lang.split("-", 1)[0] for s in self.sources if s.lang} & set(QUALITY_LANGS))
        if langs:
            self.console.print(f"quality model: the project's fastText classifiers for {', '.join(langs)}")
        return {lang: default_quality_model(lang) for lang in langs}

    @cached_property
    def lid_model(self) -> Path:
        """The user's fastText model, or the project's own (trained into the cache on first use)."""
        if self.pipe.langid.model:
            path = Path(self.pipe.langid.model)
            if not path.exists():
                raise ValueError(f"language-ID model not found: {path}")
            return path
        self.console.print("language ID: the project's fastText model (trained on first use, about 2 minutes)")
        return default_model()

    def _tokenizer(self, docs: ray.data.Dataset) -> str:
        """The tokenizer as a JSON string: the user's, or one trained on a hash-ordered sample of the mix."""
        dest = self.out / "tokenizer.json"
        if self.tokenizer_path is not None:
            if not self.tokenizer_path.exists():
                raise ValueError(f"--tokenizer: file not found: {self.tokenizer_path}")
            shutil.copyfile(self.tokenizer_path, dest)
            return dest.read_text(encoding="utf-8")
        seed, held = self.mix.seed, self.mix.held_out
        sizes = docs.map_batches(_candidate_sizes, fn_kwargs={"held_out": held}, batch_format="pyarrow")
        by_source: dict[str, list[tuple[int, str, int]]] = {}
        for row in sizes.iter_rows():
            by_source.setdefault(row["source"], []).append(
                (stable_hash(seed, "tok", row["id"]), row["id"], row["bytes"])
            )
        chosen: set[str] = set()
        for source, share in self.mix.shares.items():
            budget = share * self.pipe.tokenizer_sample_bytes
            for _, doc_id, nbytes in sorted(by_source.get(source, [])):
                if budget <= 0:
                    break
                chosen.add(doc_id)
                budget -= nbytes
        sample = docs.map_batches(_select_texts, fn_kwargs={"ids": chosen}, batch_format="pyarrow").take_all()
        texts = [r["text"] for r in sorted(sample, key=lambda r: stable_hash(seed, "tok", r["id"]))]
        self.console.print(f"training tokenizer on {len(texts):,} documents ({sum(map(len, texts)) / 1e6:.1f}M chars)")
        tok = train(texts, self.pipe.vocab_size, dest)
        return tok.to_str()

    def _training_token_counts(self, docs: ray.data.Dataset) -> dict[str, dict[str, int]]:
        """``{source: {id: n_tokens}}`` of the training documents (kept, not held out); sizes go to ``doc_bytes``."""
        counts = docs.map_batches(_train_counts, fn_kwargs={"held_out": self.mix.held_out}, batch_format="pyarrow")
        by_source: dict[str, dict[str, int]] = {s.name: {} for s in self.sources}
        for row in counts.iter_rows():
            by_source[row["source"]][row["id"]] = row["n_tokens"]
            self.doc_bytes[row["id"]] = row["n_bytes"]
        return by_source

    def _write_shards(self, docs: ray.data.Dataset, plan: MixPlan) -> list[dict[str, Any]]:
        copies = {doc_id: takes for p in plan.sources.values() for doc_id, takes in p.copies.items()}
        rows = docs.map_batches(
            _expand_copies, fn_kwargs={"copies": copies, "seed": self.mix.seed}, batch_format="pyarrow"
        ).sort("order")
        writer = ShardWriter(self.out, shard_schema(self._vocab_size()), self.pipe.shard_tokens)
        for batch in rows.iter_batches(batch_size=4096, batch_format="pyarrow"):
            writer.write(batch)
        return writer.close()

    def _write_held_out(self, docs: ray.data.Dataset) -> list[dict[str, Any]]:
        rows = docs.map_batches(_held_out_rows, fn_kwargs={"held_out": self.mix.held_out}, batch_format="pyarrow")
        parts = [b for b in rows.iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows]
        table = pa.concat_tables(parts) if parts else None
        entries = []
        schema = shard_schema(self._vocab_size(), {"text": pa.string(), "lang": pa.string()})
        for source in sorted({s.name for s in self.sources}):
            part = table.filter(pc.equal(table["source"], source)) if table is not None else None
            if part is None or part.num_rows == 0:
                continue
            part = part.sort_by("id")
            writer = ShardWriter(self.out / HELD_OUT, schema, shard_tokens=2**62, prefix=source)
            writer.write(part)
            for entry in writer.close():
                entries.append({**entry, "path": f"{HELD_OUT}/{entry['path']}"})
        return entries

    # -- accounting ------------------------------------------------------------------------------------------
    def _funnel(
        self, docs: ray.data.Dataset, plan: MixPlan, train_docs: dict[str, dict[str, int]]
    ) -> dict[str, SourceFunnel]:
        counts = sum_counts(docs.map_batches(batch_counts, batch_format="pyarrow").take_all())
        funnel = {s.name: SourceFunnel() for s in self.sources}
        held = sum_counts(
            docs.map_batches(
                _held_out_counts, fn_kwargs={"held_out": self.mix.held_out}, batch_format="pyarrow"
            ).take_all()
        )
        for (source, outcome), (n, nbytes, tokens) in counts.items():
            f = funnel[source]
            f.docs_in += n
            f.bytes_in += nbytes
            f.tokens_in += tokens
            if outcome != KEPT:
                f.reject(outcome, n, tokens, nbytes)
        for row in docs.map_batches(_pii_counts, batch_format="pyarrow").take_all():
            redacted = funnel[row["source"]].pii_redacted
            redacted[row["kind"]] = redacted.get(row["kind"], 0) + row["count"]
        languages = docs.map_batches(_language_counts, batch_format="pyarrow").take_all()
        for (source, lang), (n, nbytes, tokens) in sum_counts(languages).items():
            funnel[source].languages[lang] = {"docs": n, "bytes": nbytes, "tokens": tokens}
        for row in docs.map_batches(_routed_counts, batch_format="pyarrow").take_all():
            funnel[row["to"]].routed_in += row["docs"]
        code = [s.name for s in self.sources if s.filter_domain == "code"]
        licenses = docs.map_batches(_license_counts, fn_kwargs={"sources": code}, batch_format="pyarrow").take_all()
        for (source, spdx), (n, nbytes, tokens) in sum_counts(licenses).items():
            funnel[source].licenses[spdx] = {"docs": n, "bytes": nbytes, "tokens": tokens}
        for (source, _), (n, _, tokens) in held.items():
            funnel[source].held_out_docs += n
            funnel[source].held_out_tokens += tokens
        unused = plan.unused(train_docs)
        for source, f in funnel.items():
            src_plan = plan.sources.get(source)
            reason = "mix:over_budget" if src_plan else "mix:not_in_mix"
            dropped = unused[source]
            if dropped:
                tokens = sum(train_docs[source][i] for i in dropped)
                f.reject(reason, len(dropped), tokens, sum(self.doc_bytes[i] for i in dropped))
            f.docs_out = len(train_docs[source]) - len(dropped)
            if src_plan:
                f.unique_tokens_out = sum(train_docs[source][i] for i in src_plan.copies)
                f.tokens_out = src_plan.realised_tokens
                f.epochs = round(src_plan.epochs, 4)
        return funnel

    def _write_examples(self, docs: ray.data.Dataset) -> dict[str, Any]:
        """A few rejected documents per (source, reason) and a few kept ones per source, chosen by hash so the
        sample is stable: ``rejects/sample.jsonl`` and ``rejects/kept.jsonl`` in full (2,000 characters), and
        short excerpts for the report, which shows each rule's rejections beside documents it kept."""
        per_reason = self.pipe.rejects_sample_per_reason
        keys = docs.map_batches(_outcome_keys, batch_format="pyarrow").take_all()
        groups: dict[tuple[str, str | None], list[tuple[int, str]]] = {}
        for row in keys:
            groups.setdefault((row["source"], row["reject"]), []).append((stable_hash("sample", row["id"]), row["id"]))
        chosen = {i for g in groups.values() for _, i in sorted(g)[:per_reason]}
        sample = docs.map_batches(_sample_rows, fn_kwargs={"ids": chosen}, batch_format="pyarrow").take_all()
        sample.sort(key=lambda r: (r["source"], r["reject"] or "", stable_hash("sample", r["id"])))
        (self.out / "rejects").mkdir(exist_ok=True)
        rejected = [r for r in sample if r["reject"] is not None]
        _write_jsonl(self.out / "rejects" / "sample.jsonl", rejected)
        _write_jsonl(self.out / "rejects" / "kept.jsonl", [r for r in sample if r["reject"] is None])
        examples: dict[str, Any] = {}
        for row in sample:
            entry = examples.setdefault(row["source"], {"kept": [], "rejected": {}})
            side = entry["kept"] if row["reject"] is None else entry["rejected"].setdefault(row["reject"], [])
            if len(side) < REPORT_EXAMPLES:
                side.append({"id": row["id"], "url": row["url"], "detail": row["reject_detail"],
                             "text": row["text"][:REPORT_EXAMPLE_CHARS]})  # fmt: skip
        return examples

    def _manifest(self, shards: list[dict], held_out: list[dict], plan: MixPlan, tokenizer_json: str) -> dict[str, Any]:
        tok_path = self.out / "tokenizer.json"
        vocab = self._vocab_size()
        return {
            "config_hash": self.mix.config_hash(),
            "seed": self.mix.seed,
            "tokenizer": {
                "path": tok_path.name,
                "sha256": sha256_file(tok_path),
                "vocab_size": vocab,
                "eos_id": eos_id(Tokenizer.from_str(tokenizer_json)),
                "token_dtype": "uint16" if vocab <= 2**16 else "uint32",
                "trained": self.tokenizer_path is None,
            },
            "langid": self._langid_manifest(),
            "shards": shards,
            "held_out": held_out,
            "mix": {"name": self.mix.name, **_mix_section(plan)},
            "totals": {"rows": sum(s["rows"] for s in shards), "tokens": sum(s["tokens"] for s in shards)},
            "inputs": self._inputs_fingerprint(),
        }

    def _langid_manifest(self) -> dict[str, Any]:
        if not self.pipe.langid.enabled:
            return {"enabled": False}
        model = self.lid_model
        return {"enabled": True, "default_model": not self.pipe.langid.model, "sha256": sha256_file(model)}

    def _inputs_fingerprint(self) -> dict[str, Any]:
        """What the sources were, without absolute paths (so two output dirs of one build compare equal)."""
        blob = json.dumps([s.model_dump(mode="json", exclude={"paths"}) for s in self.sources], sort_keys=True)
        inputs: dict[str, Any] = {
            "sources": [s.name for s in self.sources],
            "sources_sha256": hashlib.sha256(blob.encode()).hexdigest(),
        }
        if self.mix.sources == "sample":
            from dataengine.sources.sample import sample_packages

            inputs["debian_packages"] = sample_packages()
        return inputs

    def _report(self, funnel: dict[str, SourceFunnel], plan: MixPlan, wall: float) -> dict[str, Any]:
        stages = list(STAGE_ORDER)
        for spec in self.pipe.filters:
            if spec.name not in stages:
                stages.append(spec.name)
        stages += ["exact_dedup", "line_dedup", "near_dedup", DECONTAM_STAGE, "mix"]
        sources = {name: vars(f) for name, f in funnel.items()}
        totals = {
            key: sum(f[key] for f in sources.values())
            for key in ("docs_in", "docs_out", "tokens_in", "tokens_out", "held_out_docs")
        }
        shares = _mix_section(plan)["sources"]
        return {
            "mix": self.mix.name,
            "seed": self.mix.seed,
            "stages": stages,
            "sources": sources,
            "totals": totals,
            "mix_shares": {
                n: {"target": s["target_share"], "realised": s["realised_share"]} for n, s in shares.items()
            },
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "workers": self.cpus,
        }

    # -- helpers ---------------------------------------------------------------------------------------------
    def _vocab_size(self) -> int:
        return Tokenizer.from_str((self.out / "tokenizer.json").read_text(encoding="utf-8")).get_vocab_size()

    def _prepare_out(self) -> None:
        """Remove a previous build's outputs (manifest first, so a crash never leaves it looking complete).

        A directory that holds files but no manifest is an interrupted build (or not a build at all): it is
        continued with ``--resume`` and otherwise refused, never mixed with new output.
        """
        if self.out.exists() and not (self.out / MANIFEST).exists() and any(self.out.iterdir()) and not self.resume:
            raise ValueError(
                f"{self.out} holds an incomplete build (no {MANIFEST}): run the same command with --resume to "
                "continue it, or remove the directory"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / MANIFEST).unlink(missing_ok=True)
        for old in self.out.glob("shard-*.arrow"):
            old.unlink()
        for sub in (HELD_OUT, "rejects"):
            shutil.rmtree(self.out / sub, ignore_errors=True)

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        self.console.print(f"[cyan]▶ {name}[/]")
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start

    def _print_summary(self, report: dict[str, Any]) -> None:
        table = Table(title=f"build {report['mix']} → {self.out}", show_lines=False)
        for col in ("source", "docs in", "rejected", "held out", "docs out", "tokens out", "epochs", "share"):
            table.add_column(col, justify="left" if col == "source" else "right")
        for name, f in report["sources"].items():
            share = report["mix_shares"].get(name, {})
            share_txt = f"{share['realised']:.1%} (target {share['target']:.0%})" if share else "-"
            table.add_row(
                name,
                f"{f['docs_in']:,}",
                f"{sum(f['rejected'].values()):,}",
                f"{f['held_out_docs']:,}",
                f"{f['docs_out']:,}",
                f"{f['tokens_out']:,}",
                f"{f['epochs']:.2f}",
                share_txt,
            )
        self.console.print(table)
        for name, f in report["sources"].items():
            top = sorted(f["rejected"].items(), key=lambda kv: -kv[1])[:4]
            if top:
                self.console.print(f"  {name} top rejections: " + ", ".join(f"{k} {v:,}" for k, v in top))
        self.console.print(f"wrote shards, manifest.json, report.json/html, funnel.png in {report['wall_s']:.0f} s")


# -- batch functions (run in Ray workers) ----------------------------------------------------------------------
def _kept(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_null(table["reject"]))


def _split_mask(table: pa.Table, held_out: float) -> list[bool]:
    return [is_held_out(i, held_out) for i in table["id"].to_pylist()]


def _candidate_sizes(table: pa.Table, held_out: float) -> pa.Table:
    kept = _kept(table)
    kept = kept.filter(pa.array([not h for h in _split_mask(kept, held_out)], pa.bool_()))
    nbytes = pc.binary_length(kept["text"].cast(pa.binary()))
    return pa.table({"id": kept["id"], "source": kept["source"], "bytes": nbytes})


def _select_texts(table: pa.Table, ids: set[str]) -> pa.Table:
    chosen = table.filter(pa.array([i in ids for i in table["id"].to_pylist()], pa.bool_()))
    return chosen.select(["id", "text"])


def _train_counts(table: pa.Table, held_out: float) -> pa.Table:
    kept = _kept(table)
    kept = kept.filter(pa.array([not h for h in _split_mask(kept, held_out)], pa.bool_()))
    return kept.select(["id", "source", "n_tokens", "n_bytes"])


def _held_out_rows(table: pa.Table, held_out: float) -> pa.Table:
    kept = _kept(table)
    kept = kept.filter(pa.array(_split_mask(kept, held_out), pa.bool_()))
    return kept.select(["tokens", "source", "id", "text", "lang"])


def _pii_counts(table: pa.Table) -> pa.Table:
    """``(source, kind, count)`` of the redactions recorded in kept documents' metadata."""
    counts: dict[tuple[str, str], int] = {}
    kept = _kept(table)
    for source, meta in zip(kept["source"].to_pylist(), kept["meta"].to_pylist(), strict=True):
        for kind, n in json.loads(meta).get("pii", {}).items():
            counts[(source, kind)] = counts.get((source, kind), 0) + n
    rows = [{"source": s, "kind": k, "count": n} for (s, k), n in sorted(counts.items())]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("source", pa.string()), ("kind", pa.string()), ("count", pa.int64())])
    )


def _language_counts(table: pa.Table) -> pa.Table:
    return batch_counts(_kept(table), by="lang")


def _routed_counts(table: pa.Table) -> pa.Table:
    """Documents ``langid.route`` moved, per source they moved to (their rejection detail starts ``to=SOURCE``)."""
    moved = table.filter(pc.equal(pc.fill_null(table["reject"], ""), LANGID_ROUTED))
    to = pc.struct_field(pc.extract_regex(moved["reject_detail"], r"^to=(?P<to>\S+)"), "to")
    counts = pa.table({"to": to}).group_by("to").aggregate([("to", "count")])
    return pa.table({"to": counts["to"], "docs": counts["to_count"]})


def _license_counts(table: pa.Table, sources: list[str]) -> pa.Table:
    """Kept code documents by the SPDX licence their reader put in meta (``NOASSERTION`` when none)."""
    kept = _kept(table)
    kept = kept.filter(pc.is_in(kept["source"], pa.array(sources, pa.string())))
    spdx = [json.loads(m or "{}").get("license") or "NOASSERTION" for m in kept["meta"].to_pylist()]
    return batch_counts(set_column(kept, "license", pa.array(spdx, pa.string())), by="license")


def _held_out_counts(table: pa.Table, held_out: float) -> pa.Table:
    kept = _kept(table)
    return batch_counts(kept.filter(pa.array(_split_mask(kept, held_out), pa.bool_())))


def _decontam_counts(table: pa.Table) -> pa.Table:
    hit = table.filter(pc.equal(pc.fill_null(table["reject"], ""), DECONTAM_REASON))
    tasks = pc.replace_substring(hit["reject_detail"], "task=", "")
    counts = pa.table({"task": tasks}).group_by("task").aggregate([("task", "count")])
    return pa.table({"task": counts["task"], "docs": counts["task_count"]})


def scramble_lines(table: pa.Table, sources: list[str], held_out: float) -> pa.Table:
    """The placebo: each training document of ``sources`` with its lines in a seeded random order (same tokens,
    no structure).  The held-out slice stays intact, so its bits per byte compare across the ladder."""
    texts = table["text"].to_pylist()
    for i, (doc_id, source) in enumerate(zip(table["id"].to_pylist(), table["source"].to_pylist(), strict=True)):
        if source in sources and texts[i] is not None and not is_held_out(doc_id, held_out):
            lines = texts[i].split("\n")
            order = np.argsort([stable_hash("scramble", doc_id, k) for k in range(len(lines))], kind="stable")
            texts[i] = "\n".join(lines[k] for k in order)
    return set_column(table, "text", pa.array(texts, pa.string()))


def _expand_copies(table: pa.Table, copies: dict[str, list[int]], seed: int) -> pa.Table:
    """One row per copy the mix takes of a document, with its position key; a cut copy keeps a prefix.

    Vectorised over the token buffer (numpy gathers), since this touches every training token.
    """
    rows, takes, orders = [], [], []
    for i, doc_id in enumerate(table["id"].to_pylist()):
        for copy, take in enumerate(copies.get(doc_id, ())):
            rows.append(i)
            takes.append(take)
            orders.append(order_key(seed, doc_id, copy))
    tokens = table["tokens"].combine_chunks()
    starts = tokens.offsets.to_numpy()[rows] if rows else np.zeros(0, np.int64)
    lengths = np.asarray(takes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    values = tokens.values.to_numpy()[gather]
    picked = pa.array(rows, pa.int64())
    return pa.table(
        {
            "tokens": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, tokens.type.value_type)),
            "source": table["source"].take(picked),
            "id": table["id"].take(picked),
            "lang": table["lang"].take(picked),
            "order": pa.array(orders, pa.int64()),
        }
    )


def with_mix_licenses(sources: list[SourceConfig], licenses: str | list[str] | None) -> list[SourceConfig]:
    """The mix's ``licenses:`` given to every code source that sets none of its own."""
    if not licenses:
        return sources
    return [
        s.model_copy(update={"licenses": licenses}) if s.filter_domain == "code" and not s.licenses else s
        for s in sources
    ]


def _outcome_keys(table: pa.Table) -> pa.Table:
    return table.select(["id", "source", "reject"])


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _sample_rows(table: pa.Table, ids: set[str]) -> pa.Table:
    chosen = table.filter(pa.array([i in ids for i in table["id"].to_pylist()], pa.bool_()))
    text = pc.utf8_slice_codeunits(pc.fill_null(chosen["text"], ""), 0, 2000)
    return pa.table(
        {
            "id": chosen["id"],
            "source": chosen["source"],
            "reject": chosen["reject"],
            "reject_detail": chosen["reject_detail"],
            "url": chosen["url"],
            "text": text,
        }
    )


def _mix_section(plan: MixPlan) -> dict[str, Any]:
    realised = plan.realised_shares()
    return {
        "total_tokens": plan.total_tokens,
        "sources": {
            name: {
                "target_share": p.share,
                "realised_share": round(realised[name], 6),
                "target_tokens": p.target_tokens,
                "realised_tokens": p.realised_tokens,
                "available_tokens": p.available_tokens,
                "available_docs": p.available_docs,
                "docs": len(p.copies),
                "epochs": round(p.epochs, 4),
            }
            for name, p in plan.sources.items()
        },
    }


# -- command line ----------------------------------------------------------------------------------------------
def make_console() -> Console:
    """Progress and the summary go to stderr; wide enough for the summary table when output is a log file."""
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=140)


def resolve_sources(spec: str) -> list[SourceConfig]:
    if spec == "sample":
        from dataengine.sources.sample import sample_sources

        return sample_sources()
    return load_sources(spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.build", description="Build a tokenized data mix.")
    parser.add_argument("--mix", required=True, help="a preset (code0, code10, code30, code50) or a mix YAML path")
    parser.add_argument(
        "--sources", help="'sample' (the embedded Debian corpus) or a sources YAML (default: the mix's)"
    )
    parser.add_argument("--out", type=Path, help="output directory (default: out/<mix name>)")
    parser.add_argument("--workers", type=int, help="CPUs to use (default: all of this machine or cluster)")
    parser.add_argument("--ray-address", help="join an existing Ray cluster (e.g. ray://head:10001 or auto)")
    parser.add_argument("--tokenizer", type=Path, help="use this tokenizer.json instead of training one")
    parser.add_argument("--seed", type=int, help="override the mix's seed")
    parser.add_argument("--lid-model", type=Path, help="a fastText language-ID model (lid.176.bin, GlotLID)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted build, reusing its completed stages"
    )
    parser.add_argument(
        "--stage-cache",
        type=Path,
        help="keep the mix-independent stages' output here and reuse it in later builds of any mix",
    )
    args = parser.parse_args(argv)
    console = make_console()
    try:
        mix = load_mix(args.mix)
        if args.seed is not None:
            mix = mix.model_copy(update={"seed": args.seed})
        if args.lid_model:
            langid = mix.pipeline.langid.model_copy(update={"model": str(args.lid_model)})
            mix = mix.model_copy(update={"pipeline": mix.pipeline.model_copy(update={"langid": langid})})
        if args.sources:
            mix = mix.model_copy(update={"sources": args.sources})
        sources = resolve_sources(mix.sources)
        out = args.out or Path("out") / mix.name
        with ray_session(args.workers, args.ray_address) as cpus:
            Build(mix, sources, out, cpus, args.tokenizer, console, args.stage_cache, args.resume).run()
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    except (OSError, ray.exceptions.RayError) as e:
        cause = _os_error(e)
        if cause is None:
            raise
        path = cause.filename  # a Ray worker's OSError carries Ray's retry advice there: not a path
        where = f" ({path})" if isinstance(path, str | os.PathLike) and "\n" not in str(path) else ""
        console.print(f"[red]error:[/] cannot write: {cause.strerror or cause}{where}; the output has no manifest")
        return 1
    return 0


def _os_error(error: BaseException | None) -> OSError | None:
    """The operating-system error (disk full, read-only, not a directory) behind an error, also one raised in a
    Ray worker: those reach the driver wrapped, with the original as ``cause`` or ``__cause__``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        seen.add(id(error))
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())

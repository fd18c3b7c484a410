"""Build a mix: ``python -m pipelines.build --mix code30``.

The build is the list of stages in ``stages()``; ``dataengine.pipeline.run_stages`` applies them on Ray Data.
The driver plans and assembles: it holds the config, per-source totals, the mix's cuts and one metadata row per
shard, never a row per document.  The workers read, tag, decide, deduplicate, tokenize and write the shards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import ray
import ray.data
from rich.console import Console

from dataengine import storage
from dataengine.config import MixConfig, SourceConfig, load_mix, load_sources
from dataengine.dedup.exact import exact_dedup
from dataengine.dedup.near import near_dedup
from dataengine.extract import extract_batch
from dataengine.filters import QualityStage
from dataengine.filters.decontam import decontaminate
from dataengine.filters.langid import LangIdTagger, expected_languages, langid_decide
from dataengine.filters.pii import redact_batch
from dataengine.filters.quality_model import QualityTagger, quality_decide, quality_summary
from dataengine.licenses import with_mix_licenses
from dataengine.models import lid_model, quality_models, sha256_of, shipped
from dataengine.pipeline import Context, Stage, checkpoint, drop_level, run_stages
from dataengine.report.build_report import build_report, print_summary, write_examples
from dataengine.report.code_aware import code_aware_report
from dataengine.report.collect import collect_funnel
from dataengine.report.funnel import check_balance
from dataengine.report.render import write_report
from dataengine.runtime import OBJECT_STORE_HELP, check_writable_by_cluster, os_error, ray_session
from dataengine.shards.manifest import write_manifest
from dataengine.shards.write import build_manifest, held_out_stage, prepare_output, write_stage
from dataengine.sources import check_inputs_on_every_node, list_units, read_units
from dataengine.storage import Target
from dataengine.tokenize import TokenizeStage
from tokenizer.sample import tokenizer_stage

PRIVATE_STAGES = ".stages"  # an output's own stage cache: its cleaned-* entries go when the build completes


def _near_dedup(ds: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    ds, ctx.results["lines_removed"] = near_dedup(ds, ctx.pipe.near_dedup, ctx.sources)
    return ds


def _decontaminate(ds: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    ds, ctx.results["decontamination"] = decontaminate(ds, ctx.pipe.decontam, ctx.console)
    return ds


def _sources(ctx: Context, licences: bool) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json", exclude=None if licences else {"licenses"}) for s in ctx.sources]


def _code_sources(ctx: Context) -> list[str]:
    """Sources whose text documents are code (a The Stack-style dump): extraction leaves their text as it is."""
    return sorted(s.name for s in ctx.sources if s.filter_domain == "code")


def _extract_engines(ctx: Context) -> dict[str, str]:
    """Each source's HTML extraction engine (``extract: trafilatura|resiliparse``)."""
    return {s.name: s.extract for s in ctx.sources}


def _code_page_share(ctx: Context) -> float | None:
    """The quality stage's code-aware setting: None judges whole texts (``pipeline.code_aware: false``)."""
    return ctx.pipe.code_page_share if ctx.pipe.code_aware else None


def stages(extra: list[Stage] | None = None) -> list[Stage]:
    """The build, in order.  ``extra`` stages (an experiment's control) run on the tokenized documents, once the
    held-out slice is chosen."""
    langid_on = lambda c: c.pipe.langid.enabled  # noqa: E731
    return [
        Stage("read", "map", read_units, batch_size=32,
              kwargs=lambda c: {"sources": {s.name: s for s in c.sources}, "max_bytes": c.pipe.max_file_bytes},
              reads=lambda c: [_sources(c, licences=False), c.pipe.max_file_bytes]),
        Stage("extract", "map", extract_batch,
              kwargs=lambda c: {"code_sources": _code_sources(c), "engines": _extract_engines(c)},
              reads=lambda c: [_code_sources(c), _extract_engines(c)]),
        Stage("langid", "tag", LangIdTagger, actors=True, when=langid_on,
              kwargs=lambda c: {"model_path": shipped(c, lid_model(c)), "sources": c.sources},
              reads=lambda c: sha256_of(lid_model(c))),
        Stage("quality_model", "tag", QualityTagger, actors=True, when=lambda c: bool(quality_models(c)),
              kwargs=lambda c: {"model_paths": {k: shipped(c, p) for k, p in quality_models(c).items()}},
              reads=lambda c: {k: sha256_of(p) for k, p in quality_models(c).items()}),
        checkpoint("tagged"),
        Stage("langid", "decide", langid_decide, when=langid_on,
              kwargs=lambda c: {"expected": expected_languages(c.sources), "min_score": c.pipe.langid.min_score,
                                "route": c.pipe.langid.route},
              reads=lambda c: c.pipe.langid.model_dump(mode="json")),
        Stage("quality_model", "decide", quality_decide,
              when=lambda c: bool(quality_models(c)) and bool(c.pipe.quality_model.min_score),
              kwargs=lambda c: {"min_score": c.pipe.quality_model.min_score},
              reads=lambda c: c.pipe.quality_model.model_dump(mode="json")),
        Stage("filters", "decide", QualityStage, actors=True,
              kwargs=lambda c: {"filters": c.pipe.filters, "sources": c.sources, "english_rules": c.pipe.english_rules,
                                "code_page_share": _code_page_share(c)},
              reads=lambda c: [[f.model_dump(mode="json") for f in c.pipe.filters], _sources(c, licences=True),
                               c.pipe.english_rules, _code_page_share(c)]),
        Stage("pii", "map", redact_batch, when=lambda c: c.pipe.pii, reads=lambda c: True),
        Stage("exact_dedup", "global", lambda ds, c: exact_dedup(ds), when=lambda c: c.pipe.exact_dedup,
              reads=lambda c: True),
        Stage("near_dedup", "global", _near_dedup, reads=lambda c: c.pipe.near_dedup.model_dump(mode="json")),
        Stage("decontam", "global", _decontaminate, reads=lambda c: c.pipe.decontam.model_dump(mode="json")),
        checkpoint("cleaned"),
        Stage("tokenizer", "global", tokenizer_stage),
        Stage("tokenize", "map", TokenizeStage, actors=True,
              kwargs=lambda c: {"tokenizer_json": c.objects["tokenizer_json"]}),
        Stage("held_out", "global", held_out_stage),
        *(extra or []),
        Stage("mix+write", "global", write_stage),
    ]  # fmt: skip


def report_stages(ctx: Context) -> list[str]:
    """The funnel's stage order: where each rejection reason's stage sits in the build."""
    names = ["crawl", "read", "extract", "langid", "quality_model", *(f.name for f in ctx.pipe.filters)]
    return list(dict.fromkeys([*names, "exact_dedup", "line_dedup", "near_dedup", "decontam", "mix"]))


class Build:
    """One build of one mix into one output directory."""

    def __init__(
        self, mix: MixConfig, sources: list[SourceConfig], out: Target, cpus: int, tokenizer: Target | None = None,
        console: Console | None = None, stage_cache: Target | None = None, resume: bool = False,
        extra_stages: list[Stage] | None = None,
    ) -> None:  # fmt: skip
        unknown = sorted(set(mix.pipeline.langid.route.values()) - {s.name for s in sources})
        if unknown:
            raise ValueError(f"langid.route names no source {', '.join(unknown)}; sources: {[s.name for s in sources]}")
        # without a shared cache, the stages are kept inside the output until the build completes: --resume
        self.private_cache, self.resume = stage_cache is None, resume
        self.ctx = Context(mix, with_mix_licenses(sources, mix.licenses), cpus, str(out),
                           str(stage_cache) if stage_cache is not None else storage.join(out, PRIVATE_STAGES),
                           console or make_console())  # fmt: skip
        self.ctx.objects["user_tokenizer"] = tokenizer
        self.stages = stages(extra_stages)
        self.extra = [s.name for s in extra_stages or []]

    def run(self) -> dict[str, Any]:
        ctx, mix, start = self.ctx, self.ctx.mix, time.perf_counter()
        check_writable_by_cluster(ctx.out, "--out")
        check_writable_by_cluster(ctx.stage_cache, "--stage-cache")
        prepare_output(ctx.out, self.resume)
        docs = run_stages(self.stages, self._units, ctx)
        with ctx.step("report"):
            plan = ctx.objects["plan"]
            held_out = ctx.objects["held_out_slice"]
            funnel = collect_funnel(docs, plan, held_out, [s.name for s in ctx.sources], _code_sources(ctx))
            for name, removed in ctx.results.get("lines_removed", {}).items():
                funnel[name].lines_removed = removed
            check_balance(funnel)
            report = build_report(mix.name, mix.seed, report_stages(ctx), funnel, plan, ctx.timings,
                                  time.perf_counter() - start, ctx.cpus)  # fmt: skip
            report["decontamination"] = ctx.results.get("decontamination", {"enabled": False})
            report |= {name: ctx.results[name] for name in self.extra if name in ctx.results}  # a control's counts
            levels = ctx.results.get("stage_cache", {})  # per level: reused (hit) or computed
            report["stage_cache"] = {**levels.get("cleaned", {"hit": False}), "levels": levels}
            report["examples"] = write_examples(docs, ctx.out, ctx.pipe.rejects_sample_per_reason)
            report["quality_scores"] = quality_summary(docs)
            if _code_page_share(ctx) is not None:
                report["code_aware"] = code_aware_report(docs, funnel)
            write_report(ctx.out, report)
            used = {name: f.docs_out for name, f in funnel.items()}
            write_manifest(ctx.out, build_manifest(ctx, used))  # last: its presence marks a complete build
        if self.private_cache:  # the tags stay: a rebuild with other thresholds starts from them
            drop_level(ctx.stage_cache, "cleaned")
        print_summary(ctx.console, report, ctx.out)
        return report

    def _units(self) -> ray.data.Dataset:
        units = list_units(self.ctx.sources)
        if not units:
            raise ValueError("the sources list no input files")
        self.ctx.console.print(f"[bold]{len(units):,}[/] input units from {len(self.ctx.sources)} sources")
        check_inputs_on_every_node(units)
        blocks = max(self.ctx.cpus * 4, min(len(units) // 64, 2000))
        return ray.data.from_items(units, override_num_blocks=min(blocks, len(units)))


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
    parser.add_argument("--sources", help="'sample' (the embedded Debian corpus) or a sources YAML (default: mix's)")
    parser.add_argument("--out", help="output directory or s3:// / gs:// URI (default: out/<mix name>)")
    parser.add_argument("--workers", type=int, help="CPUs to use (default: all of this machine or cluster)")
    parser.add_argument("--ray-address", help="join an existing Ray cluster (e.g. ray://head:10001 or auto)")
    parser.add_argument("--object-store-mb", type=int, help=OBJECT_STORE_HELP)
    parser.add_argument("--tokenizer", help="use this tokenizer.json (a path or URI) instead of training one")
    parser.add_argument("--seed", type=int, help="override the mix's seed")
    parser.add_argument("--lid-model", type=Path, help="a fastText language-ID model (lid.176.bin, GlotLID)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted build, reusing its stages")
    parser.add_argument("--stage-cache", help="keep the mix-independent stages here (a path or URI) for later builds")
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
        out = args.out or str(Path("out") / mix.name)
        with ray_session(args.workers, args.ray_address, args.object_store_mb) as cpus:
            Build(mix, sources, out, cpus, args.tokenizer, console, args.stage_cache, args.resume).run()
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    except (OSError, ray.exceptions.RayError) as e:
        cause = os_error(e)
        if cause is None:
            raise
        path = cause.filename  # a Ray worker's OSError carries Ray's retry advice there: not a path
        where = f" ({path})" if isinstance(path, str | os.PathLike) and "\n" not in str(path) else ""
        console.print(f"[red]error:[/] cannot write: {cause.strerror or cause}{where}; the output has no manifest")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

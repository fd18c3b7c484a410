"""A pipeline is a declared list of stages; ``run_stages`` applies them to a Ray Dataset.

Each ``Stage`` says what it is (compare datatrove's ``PipelineStep``, NeMo Curator's ``ProcessingStage``, dolma's
tagger/mixer split):
- ``kind``: *map* (per batch: read, extract, redact, tokenize), *tag* (adds columns, never drops: the models'
  scores), *decide* (fills ``reject`` from columns: thresholds) or *global* (needs the whole dataset: dedup,
  decontamination, the mix, writing); map/tag/decide stages are a batch function or a callable class, which the
  runner applies with ``map_batches``; a global stage is a function ``(dataset, context) -> dataset``;
- ``reads``: the config it depends on, as a function of the context (settings, models' hashes); the stage cache
  key of a level is the hash of what every stage up to it reads, so no list of ignored settings is kept by hand;
- ``cpus``: the (logical) CPUs one of its tasks or actors takes.  Actor pools start with one actor and grow to
  the cluster's CPUs, and model stages take half a CPU per actor, so two chained pools and the read tasks
  before them always find CPUs: no pool waits for CPUs another holds (the "cluster resources are not enough to
  run any task" warning Ray Data gives when two full-size pools chain, which reads as a hang);
- ``cache``: this (global, pass-through) stage marks the end of a stage cache level (``tagged``: tags of the
  models, before any threshold; ``cleaned``: everything no mix setting changes).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import ray.data
from rich.console import Console

from dataengine import storage
from dataengine.config import MixConfig, SourceConfig
from dataengine.runtime import writer_options

Kind = Literal["map", "tag", "decide", "global"]
STAGE_CACHE_VERSION = 7  # bump when a cached stage's code changes what it produces
CACHE_DONE = "done.json"  # written last into a cache entry: marks it complete and names its files
DOCS = "docs"


@dataclass
class Context:
    """What the stages of one build share: its config, its CPUs, where it writes, and what global stages report."""

    mix: MixConfig
    sources: list[SourceConfig]
    cpus: int
    out: str  # a local directory or an object-store URI (``storage``)
    stage_cache: str
    console: Console
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)  # small outputs of global stages (report sections)
    objects: dict[str, Any] = field(default_factory=dict)  # per-build values computed once (models, tokenizer)

    @property
    def pipe(self) -> Any:
        return self.mix.pipeline

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.console.print(f"[cyan]▶ {name}[/]")
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.objects:
            self.objects[key] = make()
        return self.objects[key]


@dataclass(frozen=True)
class Stage:
    name: str
    kind: Kind
    fn: Callable[..., Any]
    kwargs: Callable[[Context], dict[str, Any]] = lambda ctx: {}
    reads: Callable[[Context], Any] = lambda ctx: None
    when: Callable[[Context], bool] = lambda ctx: True
    cpus: float = 0.5
    actors: bool = False  # a callable class, loaded once per actor (a model)
    batch_size: int | None = None  # rows per batch (default: the pipeline's batch_size)
    cache: Literal["tagged", "cleaned"] | None = None

    def apply(self, ds: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
        if self.kind == "global":
            return self.fn(ds, ctx, **self.kwargs(ctx))
        args: dict[str, Any] = {
            "batch_format": "pyarrow",
            "batch_size": self.batch_size or ctx.pipe.batch_size,
            "num_cpus": self.cpus,
        }
        if self.actors:
            pool = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, ctx.cpus))
            args |= {"fn_constructor_kwargs": self.kwargs(ctx), "compute": pool}
        else:
            args["fn_kwargs"] = self.kwargs(ctx)
        return ds.map_batches(self.fn, **args)


def checkpoint(level: Literal["tagged", "cleaned"]) -> Stage:
    """The end of a stage cache level: the documents so far are written to (or read back from) the cache."""
    return Stage(level, "global", lambda ds, ctx: ds, cache=level)


def cache_key(stages: list[Stage], ctx: Context, level: str) -> str:
    """Hash of what the stages up to the end of ``level`` read, and of the sources they read from."""
    upto = next(i for i, s in enumerate(stages) if s.cache == level)
    reads = [[s.name, s.reads(ctx)] for s in stages[: upto + 1] if s.when(ctx)]
    blob = json.dumps({"version": STAGE_CACHE_VERSION, "stages": reads}, sort_keys=True, default=str)
    return f"{level}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def run_stages(stages: list[Stage], start: Callable[[], ray.data.Dataset], ctx: Context) -> ray.data.Dataset:
    """Apply the enabled stages in order, resuming after the last complete stage cache level.

    A level's documents are written as Parquet under ``stage_cache/<level>-<key>/docs`` with ``done.json`` last;
    a later build whose stages up to that level read the same config starts from there.
    """
    active = [s for s in stages if s.when(ctx)]
    levels = [(i, s.cache) for i, s in enumerate(active) if s.cache]
    ds: ray.data.Dataset | None = None
    first = 0
    for i, level in reversed(levels):
        key = cache_key(stages, ctx, level)
        entry = storage.join(ctx.stage_cache, key)
        done = _done(entry)
        if done is not None and _only_named_files(entry, done) and not _stale(done, key, ctx):
            with ctx.step(f"{level} documents (stage cache)"):
                fs, path = storage.resolve(storage.join(entry, DOCS))
                ds = ray.data.read_parquet(path, filesystem=fs).materialize()
            ctx.results.update(done.get("results", {}))
            ctx.results.setdefault("stage_cache", {})[level] = {"hit": True, "key": key}
            ctx.console.print(f"reused the {level} documents of {entry}")
            first = i + 1
            break
    if ds is None:
        ds = start()
    segment: list[str] = []  # map/tag/decide stages applied lazily since the last materialization
    for stage in active[first:]:
        if stage.kind != "global":
            ds = stage.apply(ds, ctx)
            segment.append(stage.name)
            continue
        if segment:  # Ray Data runs a segment's stages together (streaming): they are timed together
            with ctx.step("+".join(segment)):
                ds = ds.materialize()
            segment = []
        if stage.cache:
            key = cache_key(stages, ctx, stage.cache)
            with ctx.step(f"stage cache write ({stage.cache})"):
                _write_entry(ds, storage.join(ctx.stage_cache, key), ctx)
            ctx.results.setdefault("stage_cache", {})[stage.cache] = {"hit": False, "key": key}
        else:
            with ctx.step(stage.name):
                ds = stage.apply(ds, ctx).materialize()
    if segment:
        with ctx.step("+".join(segment)):
            ds = ds.materialize()
    return ds


def _write_entry(ds: ray.data.Dataset, entry: str, ctx: Context) -> None:
    """The documents as Parquet under ``entry/docs``, then ``done.json`` naming the files: a reader takes those
    files only, so objects left by an interrupted write are never read."""
    storage.remove(entry)
    fs, path = storage.resolve(storage.join(entry, DOCS))
    ds.write_parquet(path, filesystem=fs, ray_remote_args=writer_options(entry))
    results = {k: v for k, v in ctx.results.items() if k != "stage_cache"}
    files = storage.list_files(storage.join(entry, DOCS))
    storage.write_json(storage.join(entry, CACHE_DONE), {"files": files, "results": results})


def _done(entry: str) -> dict[str, Any] | None:
    """A cache entry's completion marker, or None when the entry is absent or was never completed."""
    path = storage.join(entry, CACHE_DONE)
    return json.loads(storage.read_text(path)) if storage.exists(path) else None


def _only_named_files(entry: str, done: dict[str, Any]) -> bool:
    """True when every file ``done.json`` names is there; files it does not name (left by a write interrupted
    before the entry was last completed) are removed, so the directory holds exactly the entry's documents.

    The directory is read, not the list of names: Ray Data resolves a long list of paths through fsspec's HTTP
    filesystem check, which needs ``aiohttp``."""
    docs = storage.join(entry, DOCS)
    found = set(storage.list_files(docs))
    if not found >= set(done["files"]):
        return False
    for name in sorted(found - set(done["files"])):
        storage.remove(storage.join(docs, name))
    return True


def _stale(done: dict[str, Any], key: str, ctx: Context) -> bool:
    """An entry decontaminated without evaluation tasks that can be had now is cleaned again, not reused."""
    missed = done.get("results", {}).get("decontamination", {}).get("unavailable", {})
    if not missed:
        return False
    from pretrain.eval.tasks import load_available

    found = missed.keys() - load_available((task, None) for task in missed)[1].keys()
    if found:
        ctx.console.print(f"the stage cache {key} missed {', '.join(sorted(found))}: recleaning")
    return bool(found)


def drop_level(stage_cache: str, level: str) -> None:
    """Remove every entry of one cache level (an output's private ``cleaned-*`` entries once it is complete)."""
    for entry in sorted({name.split("/", 1)[0] for name in storage.list_files(stage_cache)}):
        if entry.startswith(f"{level}-"):
            storage.remove(storage.join(stage_cache, entry))

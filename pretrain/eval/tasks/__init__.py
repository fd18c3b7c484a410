"""The task registry: ``load_task("probe:tracking_code", n=2000, seed=0)``.

Names are ``family:subname`` (``bigbench:<task>[/<subtask>]``, ``probe:<family>_<nl|code>``, ``probe_zh:<family>``,
``gym:<dataset>``) or a single name (``code_exec``, ``humaneval``).  ``TASKS`` lists the curated ones; any
BIG-bench JSON multiple-choice task and any reasoning-gym dataset can be named too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dataengine.atomic import write_json_atomic
from dataengine.cache import cache_dir
from pretrain.eval.tasks import bigbench, code_exec, gym, humaneval, probes, probes_zh
from pretrain.eval.tasks.base import Item, Task

if TYPE_CHECKING:
    from pretrain.eval.suites import Suite

Loader = Callable[[str, int | None, int], Task]

FAMILIES: dict[str, Loader] = {
    "bigbench": bigbench.load,
    "probe": probes.load,
    "probe_zh": probes_zh.load,
    "gym": gym.load,
}
SINGLES: dict[str, Loader] = {"code_exec": code_exec.load, "humaneval": humaneval.load}
OPEN_FAMILIES = ("bigbench:<task>[/<subtask>]", "gym:<dataset>")

TASKS: tuple[str, ...] = (
    *(f"bigbench:{t}" for t in bigbench.CHOSEN),
    *(f"probe:{f}_{s}" for f in probes.FAMILIES for s in ("nl", "code")),
    *(f"probe_zh:{f}" for f in probes_zh.FAMILIES),
    *(f"gym:{d}" for d in gym.CHOSEN),
    *SINGLES,
)


# The loaders' own source names the cached items: a change to any generator invalidates what it generated.
_SOURCES_DIGEST = hashlib.sha256(
    b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))
).hexdigest()[:16]


def load_task(name: str, n: int | None = None, seed: int = 0) -> Task:
    """The task ``name`` with ``n`` items (its default when None: every item of a fixed set, 2,000 generated)
    drawn or generated with ``seed``; the same arguments give the same items on every machine.

    Items are kept in the cache once made (``<cache>/eval_items``), so scoring many checkpoints generates them
    once, and a machine without the generators' dependencies (a GPU box) can score from a carried cache.
    """
    if n is not None and n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    family, sep, sub = name.partition(":")
    if name not in SINGLES and (not sep or family not in FAMILIES or not sub):
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}; or any {', '.join(OPEN_FAMILIES)}")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = cache_dir() / "eval_items" / f"{slug}-n{n or 0}-s{seed}-{_SOURCES_DIGEST}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return Task(**{**data, "items": [Item(**item) for item in data["items"]]})
    task = SINGLES[name](name, n, seed) if name in SINGLES else FAMILIES[family](sub, n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, dataclasses.asdict(task))
    return task


def load_tasks(names: Iterable[tuple[str, int | None]], seed: int = 0) -> list[Task]:
    """Several tasks; the BIG-bench ones are extracted from their source in a single pass first.  A task that
    cannot be had raises (``bigbench.BigBenchUnavailable``): naming it was asking for it."""
    names = list(names)
    bigbench.ensure_extracted(name.partition(":")[2] for name, _ in names if name.startswith("bigbench:"))
    return [load_task(name, n, seed) for name, n in names]


def load_available(names: Iterable[tuple[str, int | None]], seed: int = 0) -> tuple[list[Task], dict[str, str]]:
    """Several tasks as ``load_tasks`` loads them, less those whose source cannot be had (BIG-bench's files when
    neither the cache, ``$DATAENGINE_BIGBENCH`` nor the package index has them): ``(tasks, {name: why})``, so a
    suite runs with a named, counted gap instead of not at all."""
    names = list(names)
    with contextlib.suppress(bigbench.BigBenchUnavailable):  # one pass for what can be had; each task says if not
        bigbench.ensure_extracted(name.partition(":")[2] for name, _ in names if name.startswith("bigbench:"))
    tasks, unavailable = [], {}
    for name, n in names:
        try:
            tasks.append(load_task(name, n, seed))
        except bigbench.BigBenchUnavailable as e:
            unavailable[name] = str(e)
    return tasks, unavailable


def unavailable_lines(unavailable: dict[str, str]) -> list[str]:
    """``load_available``'s gaps for a person: one line per reason, naming its tasks (a refused archive is one
    reason for six tasks, not six messages)."""
    by_reason: dict[str, list[str]] = {}
    for name, why in unavailable.items():
        by_reason.setdefault(why, []).append(name)
    return [f"{', '.join(names)} left out: {why}" for why, names in by_reason.items()]


def decontamination_texts(suite: str | Path | Suite = "default") -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``[(task name, prompt + correct answer)]`` for every evaluation item of ``suite`` (the build drops training
    documents that contain one), and the suite's tasks that could not be had, with why.  Fixed sets (BIG-bench,
    HumanEval) give all their items, not only the suite's sample; generated sets their items at the suite's seed
    and count (few-shot examples are items of the same set, so they are covered)."""
    from pretrain.eval.suites import Suite, load_suite  # suites import this module

    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    tasks, unavailable = load_available(((t.name, None) for t in suite.tasks), seed=suite.seed)
    asked = {t.name: t.n for t in suite.tasks}
    texts = []
    for task in tasks:
        if asked[task.name] is not None and len(task.items) < asked[task.name]:  # a generated set asked larger
            task = load_task(task.name, asked[task.name], suite.seed)
        texts += [(task.name, (item.prompt + item.target).strip()) for item in task.items]
    return texts, unavailable


__all__ = [
    "TASKS",
    "Item",
    "Task",
    "decontamination_texts",
    "load_available",
    "load_task",
    "load_tasks",
    "unavailable_lines",
]

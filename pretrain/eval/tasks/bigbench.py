"""BIG-bench multiple-choice tasks, read from the ``bigbench`` 1.0.0 sdist on PyPI (the benchmark's own files).

The 358 MB sdist is fetched once into ``cache_dir()/bigbench`` (sha256 checked); only the requested tasks'
``task.json`` files are extracted, to ``cache_dir()/bigbench/tasks/<task>[/<subtask>]/``, so a machine that has
those small files needs neither the archive nor a network.  ``$DATAENGINE_BIGBENCH`` names a local copy to extract
from instead: that sdist, or a clone (or archive) of the BIG-bench repository, for when the package index will not
serve the sdist (the one reached here has answered HTTP 403 since 2026-12).  With neither, loading a JSON task
raises :class:`BigBenchUnavailable`, which a suite turns into a named gap rather than a crash.

Prompts are formatted as BIG-bench's ``json_task`` formats them: ``task_prefix`` once, then
``example_input_prefix`` (default ``"\\nQ: "``) + input (+ the choices when ``append_choices_to_input``, default
true) + ``example_output_prefix`` (default ``"\\nA: "``), few-shot examples joined by
``few_shot_example_separator`` (default ``"\\n"``); the choices are the keys of ``target_scores`` and the correct one
the first with the highest score (for ``arithmetic`` and ``dyck_languages`` only the options as long as the answer,
see ``SAME_LENGTH``).

``boolean_expressions`` is a programmatic task (``task.py``) in BIG-bench; its items are generated here exactly as
that file generates them (where it can be had, it is extracted too and its sha256 checked against the version this
port follows).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tarfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.atomic import atomic_path, write_atomic
from dataengine.cache import cache_dir
from dataengine.shards.writer import sha256_file
from pretrain.eval.tasks.base import Item, Task, subsample

SDIST_URL = (
    "https://files.pythonhosted.org/packages/95/f8/c019b3579df548a04cac12342cfcb878e50ddf6cfcd7fddba8cfc721c157/"
    "bigbench-1.0.0.tar.gz"
)
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SOURCE_ENV = "DATAENGINE_BIGBENCH"
MEMBER_ROOT = "bigbench/benchmark_tasks/"  # below the archive's top folder (bigbench-1.0.0/ in the sdist)
BOOLEAN_EXPRESSIONS_SHA256 = "731c747f681b20d40349726c3e2d28792b4309bee0044d9f3c3d99e86b11bded"
_NAME = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)?")
_MEMBER = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)?/task\.(json|py)")

# The curated reasoning tasks: (style, why chosen).  Each has a format and choice set small models can rise above
# chance on by likelihood, and each exercises a skill that code plausibly teaches (state tracking, symbol
# manipulation, matching brackets, step-by-step evaluation).
CHOSEN: dict[str, tuple[str, str]] = {
    "boolean_expressions": (
        "code",
        "Evaluate `True and not (False or True)`-style expressions (Python syntax, True/False): step-by-step "
        "evaluation of nested operators, the skill code most directly exercises.",
    ),
    "arithmetic": (
        "nl",
        "1- to 5-digit addition, subtraction, multiplication and division ('What is 80 plus 29?'), scored against "
        "BIG-bench's numeric options of the answer's length and sign (its word distractors 'banana'/'house' would "
        "make it a format test, shorter numbers a length test); the easy subtasks are within reach of small "
        "models, the hard ones show the slope.",
    ),
    "dyck_languages": (
        "code",
        "Close a sequence of mixed brackets (Dyck words): the stack discipline of every code block; scored among "
        "BIG-bench's options with as many brackets as the answer (4, 16 or 64), so which brackets is the question.",
    ),
    "logical_deduction": (
        "nl",
        "Order 3/5/7 objects from pairwise statements: deductive constraint satisfaction in plain English.",
    ),
    "tracking_shuffled_objects": (
        "nl",
        "Follow a sequence of swaps among 3/5/7 people and name who holds what: variable tracking in English, "
        "the natural-language twin of assignment in code.",
    ),
    "navigate": (
        "nl",
        "Decide whether a list of moves returns to the start: accumulating a state (position, heading) step by step.",
    ),
    "cs_algorithms": (
        "code",
        "Valid-parentheses and longest-common-subsequence questions: algorithmic reasoning on strings, close to "
        "what programs do.",
    ),
}
NUMERIC_ONLY = {"arithmetic"}  # tasks whose choices are scored among the numeric ones only
# tasks whose options differ in length, scored among those as long as the answer: a likelihood prefers short
# options whatever a model knows (a random model put p_norm at 0.03 against a chance of 0.20 on arithmetic).
# Arithmetic items with a negative answer are dropped with it: BIG-bench gave them only positive distractors.
SAME_LENGTH = {"arithmetic", "dyck_languages"}
GENERATED = {"boolean_expressions"}  # programmatic tasks reproduced here: their task.py only verifies the port


class BigBenchUnavailable(ValueError):
    """BIG-bench's task files are not in the cache and cannot be had: no local copy named, the sdist not fetchable."""


_fetch_error: str | None = None  # one download attempt per process: a refused archive is not asked for per task


def sdist_path() -> Path:
    """The sdist in the cache, downloaded (and its sha256 checked) if absent."""
    global _fetch_error
    path = cache_dir() / "bigbench" / SDIST_URL.rsplit("/", 1)[1]
    if path.exists():
        return path
    if _fetch_error is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(path) as partial:
                with urllib.request.urlopen(SDIST_URL, timeout=60) as response, partial.open("wb") as f:
                    shutil.copyfileobj(response, f, length=1 << 20)
                if sha256_file(partial) != SDIST_SHA256:
                    raise ValueError(f"sha256 does not match {SDIST_SHA256}")
            return path
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, a truncated or altered archive
            _fetch_error = f"{type(e).__name__}: {e}"
    raise BigBenchUnavailable(
        f"the bigbench 1.0.0 sdist could not be fetched ({SDIST_URL.rsplit('/', 1)[1]}: {_fetch_error}); set "
        f"{SOURCE_ENV} to a local copy of it or to a clone of the BIG-bench repository"
    )


def tasks_dir() -> Path:
    return cache_dir() / "bigbench" / "tasks"


def _extracted(name: str) -> bool:
    folder = tasks_dir() / name
    return (folder / "task.json").exists() or (folder / "task.py").exists()


def ensure_extracted(names: Iterable[str]) -> None:
    """Extract the task files of ``names`` (``task`` or ``task/subtask``; a task brings its subtasks) that are not
    in the cache yet, in one pass over the source.  Only regular files whose names match the task layout are
    written, each to a path built here under ``tasks_dir()``: nothing in the source decides where a file goes.

    Tasks generated here (``GENERATED``) need no file: when no source can be had they are left to their generator
    (unverified against BIG-bench's ``task.py``) instead of raising."""
    wanted = sorted({n for n in names if not _extracted(_check_name(n))})
    if not wanted:
        return
    try:
        found = _task_files(wanted)
    except BigBenchUnavailable:
        if all(w in GENERATED for w in wanted):
            return
        raise
    missing = [w for w in wanted if not any(rel.startswith(w + "/") for rel in found)]
    if missing:
        raise ValueError(f"BIG-bench has no task {', '.join(missing)} (see {MEMBER_ROOT})")
    root = tasks_dir().resolve()
    # deepest files first: a task's own task.json, the marker of a complete extraction, is written last
    for rel in sorted(found, key=lambda r: -r.count("/")):
        dest = (root / rel).resolve()
        assert dest.is_relative_to(root), dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dest, found[rel])


def _task_files(wanted: list[str]) -> dict[str, bytes]:
    """``{task/[subtask/]task.json|py: bytes}`` of the wanted tasks, from ``$DATAENGINE_BIGBENCH`` (an archive or a
    directory) or else the sdist."""
    local = os.environ.get(SOURCE_ENV)
    source = Path(local) if local else sdist_path()
    if local and not source.exists():
        raise BigBenchUnavailable(f"{SOURCE_ENV}={local} does not exist")
    if source.is_dir():
        candidates = (source, source / "benchmark_tasks", source / MEMBER_ROOT)
        root = next((d for d in candidates if d.name == "benchmark_tasks" and d.is_dir()), None)
        if root is None:
            raise BigBenchUnavailable(f"{SOURCE_ENV}={local} holds no {MEMBER_ROOT} (expected a BIG-bench clone)")
        files = (p for w in wanted for p in (root / w).rglob("task.*") if p.is_file() and not p.is_symlink())
        return {rel: p.read_bytes() for p in files if _wanted(rel := p.relative_to(root).as_posix(), wanted)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(source, "r|*") as tar:
            for member in tar:
                below = member.name.partition("/")[2]
                rel = below.removeprefix(MEMBER_ROOT)
                if member.isfile() and rel != below and _wanted(rel, wanted):
                    found[rel] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BigBenchUnavailable(f"{source}: not a readable BIG-bench archive ({type(e).__name__}: {e})") from e
    return found


def _wanted(rel: str, wanted: list[str]) -> bool:
    folder = rel.rsplit("/", 1)[0]
    return bool(_MEMBER.fullmatch(rel)) and any(folder == w or folder.startswith(w + "/") for w in wanted)


def load(name: str, n: int | None = None, seed: int = 0) -> Task:
    """``bigbench:<name>``: every item of the task (all subtasks), or ``n`` of them sampled with ``seed``."""
    ensure_extracted([name])
    top = name.split("/")[0]
    folder = tasks_dir() / name
    source = f"BIG-bench 1.0.0 sdist (PyPI), benchmark_tasks/{name}"
    if top == "boolean_expressions":
        items, description, fmt = _boolean_expressions(folder), "", {"separator": " . "}
        if not (folder / "task.py").exists():
            source = f"BIG-bench's benchmark_tasks/{name}/task.py, reproduced here (not verified: no task.py here)"
    elif not (folder / "task.json").exists():
        raise ValueError(f"bigbench:{name} is a programmatic task (task.py), not a JSON task; choose a JSON task")
    else:
        items, description, fmt = _json_task(folder, name, top in NUMERIC_ONLY, top in SAME_LENGTH)
    items = subsample(items, n, seed)
    style, why = CHOSEN.get(top, ("nl", ""))
    return Task(
        name=f"bigbench:{name}",
        items=items,
        lang="en",
        style=style,  # type: ignore[arg-type]
        kind="mc",
        description=why or description,
        source=source,
        **fmt,
    )


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad BIG-bench task name {name!r}: expected 'task' or 'task/subtask'")
    return name


def _json_task(
    folder: Path, name: str, numeric_only: bool, same_length: bool
) -> tuple[list[Item], str, dict[str, Any]]:
    """Items of a JSON task; a parent task without examples is the union of its subtasks, each item keeping its
    subtask's preamble and separator (BIG-bench evaluates subtasks separately, with their own formats)."""
    data = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    if data.get("examples"):
        items, fmt = _json_items(data, name, numeric_only, same_length)
        return items, str(data.get("description", "")), fmt
    subtasks = sorted(p.parent for p in folder.glob("*/task.json"))
    if not subtasks:
        raise ValueError(f"bigbench:{name} has neither examples nor subtasks")
    items: list[Item] = []
    for sub in subtasks:
        sub_data = json.loads((sub / "task.json").read_text(encoding="utf-8"))
        sub_items, sub_fmt = _json_items(sub_data, f"{name}/{sub.name}", numeric_only, same_length)
        items += [Item(it.prompt, it.choices, it.answer, {**it.meta, **sub_fmt}) for it in sub_items]
    return items, str(data.get("description", "")), {}


def _json_items(
    data: dict[str, Any], name: str, numeric_only: bool, same_length: bool
) -> tuple[list[Item], dict[str, Any]]:
    examples = data["examples"]
    if not all(len(ex.get("target_scores", {})) >= 2 for ex in examples):
        raise ValueError(f"bigbench:{name} is not multiple choice (its examples lack target_scores)")
    input_prefix = data.get("example_input_prefix", "\nQ: ")
    output_prefix = data.get("example_output_prefix", "\nA: ")
    choice_prefix = data.get("choice_prefix", "\n  choice: ")
    append_choices = data.get("append_choices_to_input", True)
    items, seen = [], set()
    for ex in examples:
        key = json.dumps(ex, sort_keys=True)
        if key in seen:  # BIG-bench drops duplicate examples too
            continue
        seen.add(key)
        scores = {str(k): float(v) for k, v in ex["target_scores"].items()}
        correct = max(scores, key=lambda k: scores[k])  # first of the best, as BIG-bench picks its target
        if same_length:  # options as long as the answer (and of its sign: a BPE merges " -" into one token)
            sign = correct.startswith("-")
            scores = {k: v for k, v in scores.items() if len(k) == len(correct) and k.startswith("-") == sign}
        if numeric_only:
            scores = {k: v for k, v in scores.items() if re.fullmatch(r"-?\d+(\.\d+)?", k.strip())}
        if correct not in scores or len(scores) < 2:
            continue
        text = ex["input"]
        if append_choices:
            permuted = np.random.RandomState(42).permutation(sorted(scores))  # json_task's order (random_seed=42)
            text += choice_prefix + choice_prefix.join(permuted)
        choices = list(scores)
        items.append(Item(input_prefix + text + output_prefix, choices, choices.index(correct), {"group": name}))
    fmt = {"preamble": str(data.get("task_prefix", "")), "separator": data.get("few_shot_example_separator", "\n")}
    return items, fmt


# --- boolean_expressions: BIG-bench's task.py, reproduced (same enumeration, shuffle and selection) ---------------

_BOOL_LENGTHS = tuple(range(1, 9))
_BOOL_TRIALS, _BOOL_SHOTS, _BOOL_SEED = 100, 3, 42


def _boolean_expressions(folder: Path) -> list[Item]:
    """The task's queries: for each expression length 1..8, all valid expressions, sorted, shuffled by one
    ``random.Random(42)`` stream, every 4th of the first 400 (the others were its in-context examples).  When
    BIG-bench's ``task.py`` is at hand it must be the version this port follows."""
    source = folder / "task.py"
    if source.exists() and (digest := hashlib.sha256(source.read_bytes()).hexdigest()) != BOOLEAN_EXPRESSIONS_SHA256:
        raise ValueError(f"{source}: not the boolean_expressions task.py this generator follows (sha256 {digest})")
    rng = random.Random(_BOOL_SEED)
    items = []
    for length in _BOOL_LENGTHS:
        expressions = sorted(_expressions(length))
        rng.shuffle(expressions)
        inputs = expressions[: _BOOL_TRIALS * (_BOOL_SHOTS + 1)]
        trials = min(_BOOL_TRIALS, len(inputs))
        step = len(inputs) // trials
        for i in range(0, trials * step, step):
            text = " ".join(inputs[i])
            value = _eval_bool(inputs[i])
            items.append(Item(f"{text} is ", ["True", "False"], 0 if value else 1, {"group": length}))
    return items


_START = ("True", "False", "not", "(")
_NEXT = {"start": _START, "not": _START, "or": _START, "and": _START, "(": _START, "True": ("or", "and", ")")}
_NEXT["False"] = _NEXT[")"] = _NEXT["True"]
_END = ("True", "False", ")")


def _expressions(length: int, prefix: tuple[str, ...] = ("start",), open_parens: int = 0) -> Iterable[tuple]:
    """Every token sequence of ``length`` over constants, not/and/or and balanced parentheses (task.py's grammar)."""
    if length == 0:
        if open_parens == 0 and prefix[-1] in _END:
            yield prefix[1:]
        return
    for token in _NEXT[prefix[-1]]:
        depth = open_parens + (token == "(") - (token == ")")
        if depth >= 0:
            yield from _expressions(length - 1, (*prefix, token), depth)


def _eval_bool(tokens: tuple[str, ...]) -> bool:
    """Python's value of the expression, by recursive descent (no ``eval``): not > and > or, as in Python."""
    pos = 0

    def atom() -> bool:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "not":
            return not atom()
        if token == "(":
            value = disjunction()
            pos += 1  # ")"
            return value
        return token == "True"

    def conjunction() -> bool:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            value = atom() and value
        return value

    def disjunction() -> bool:
        nonlocal pos
        value = conjunction()
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            value = conjunction() or value
        return value

    return disjunction()

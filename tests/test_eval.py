"""The reasoning evaluation: real task files (BIG-bench sdist, HumanEval, reasoning-gym), generated probes checked
by recomputation and execution, likelihood scoring with real models (count-based, uniform, the debug GPT) and the
``python -m pretrain.eval`` command on a real checkpoint and build output."""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import io
import json
import math
import os
import random
import re
import subprocess
import sys
import tarfile
import threading
import types
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from torch import nn

from pretrain.eval import (
    TASKS,
    Item,
    Task,
    bootstrap,
    bootstrap_samples,
    composite,
    decontamination_texts,
    load_available,
    load_suite,
    load_task,
    load_tasks,
    score_task,
)
from pretrain.eval.scoring import choice_loglikelihoods, encode_pairs, loglikelihoods
from pretrain.eval.tasks import bigbench, unavailable_lines
from pretrain.model import GPT, model_config
from tests.test_inspect import build_output
from tokenizer.train import eos_id

BIGBENCH_NAMES = [
    "boolean_expressions",
    "arithmetic/2_digit_addition",
    "modified_arithmetic/three_digit_addition_control",
]


# -- fixtures ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bigbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache with the tests' tasks extracted in one pass from the real BIG-bench files: the local copy that
    ``$DATAENGINE_BIGBENCH`` names, else the sdist (linked from the shared cache, fetched by our code if absent, and
    removed after, as on a machine without it).  Skipped, saying why, where neither can be had: the package index
    reached here refuses the sdist since 2026-12, and the benchmark's files cannot be committed here."""
    local = os.environ.get(bigbench.SOURCE_ENV)
    try:
        sdist = None if local else bigbench.sdist_path()
    except bigbench.BigBenchUnavailable as e:
        pytest.skip(f"the real BIG-bench files cannot be had here: {e}")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAENGINE_CACHE", str(cache))
        (cache / "bigbench").mkdir()
        if sdist is not None:
            (cache / "bigbench" / sdist.name).symlink_to(sdist)
        bigbench.ensure_extracted(BIGBENCH_NAMES)
        if sdist is not None:
            (cache / "bigbench" / sdist.name).unlink()
    return cache


@pytest.fixture
def offline_bigbench(bigbench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATAENGINE_CACHE", str(bigbench_cache))
    return bigbench_cache


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real build output (code, English, Chinese) with its trained tokenizer and held-out slices."""
    out = tmp_path_factory.mktemp("build")
    build_output(out)
    return out


@pytest.fixture(scope="module")
def tokenizer(build: Path) -> Tokenizer:
    return Tokenizer.from_file(str(build / "tokenizer.json"))


class CountModel(nn.Module):
    """A real count-based language model: next-token logits from counts after the previous ``order`` tokens in the
    training sequences (add-one smoothing, seen continuations boosted), as ``[B, T, V]`` logits."""

    def __init__(self, sequences: list[list[int]], vocab: int, order: int) -> None:
        super().__init__()
        self.vocab, self.order = vocab, order
        self.counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        for seq in sequences:
            for t in range(1, len(seq)):
                self.counts[tuple(seq[max(0, t - order) : t])][seq[t]] += 1

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*idx.shape, self.vocab)
        for b, row in enumerate(idx.tolist()):
            for t in range(len(row)):
                for token, c in self.counts.get(tuple(row[max(0, t + 1 - self.order) : t + 1]), {}).items():
                    logits[b, t, token] = math.log(1 + 100 * c)
        return logits


class Uniform(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*idx.shape, self.vocab)


def run_repl(prompt: str) -> str:
    """What the ``>>>`` lines of a code probe print when executed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec("\n".join(line[4:] for line in prompt.splitlines() if line.startswith(">>> ")), {})
    return out.getvalue().strip()


# -- BIG-bench --------------------------------------------------------------------------------------------------------
def test_bigbench_tasks_come_from_the_real_sdist_and_work_without_it(offline_bigbench: Path) -> None:
    tasks_dir = offline_bigbench / "bigbench" / "tasks"
    assert (tasks_dir / "arithmetic" / "2_digit_addition" / "task.json").exists()
    assert (tasks_dir / "boolean_expressions" / "task.py").exists()
    assert not (offline_bigbench / "bigbench" / "bigbench-1.0.0.tar.gz").exists()  # extracted JSON is enough

    arith, boolean = load_tasks(
        [("bigbench:arithmetic/2_digit_addition", None), ("bigbench:boolean_expressions", None)]
    )
    assert len(arith.items) == 1000 and arith.source.startswith("BIG-bench 1.0.0")
    for item in arith.items:
        a, b = map(int, re.search(r"What is (\d+) plus (\d+)\?", item.prompt).groups())
        assert item.target == str(a + b)
        assert all(re.fullmatch(r"-?\d+", c) for c in item.choices)  # "banana"/"house" are not options
        assert {len(c) for c in item.choices} == {len(item.target)}  # nor numbers likelier for being shorter
        assert item.prompt.startswith("\nQ: ") and item.prompt.endswith("\nA: ")
    assert 1 / 3 <= arith.chance <= 1 / 2  # BIG-bench's 2 or 3 numeric options of the answer's length
    assert len(boolean.items) == 428 and "not verified" not in boolean.source  # checked against the real task.py

    with pytest.raises(ValueError, match="not multiple choice"):
        load_task("bigbench:modified_arithmetic/three_digit_addition_control")


def test_boolean_expressions_are_generated_correct_without_any_bigbench_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(bigbench.SOURCE_ENV, str(tmp_path / "no-bigbench"))
    boolean = load_task("bigbench:boolean_expressions")
    assert len(boolean.items) == 428 and boolean.chance == 0.5 and "not verified" in boolean.source
    for item in boolean.items:
        assert item.target == str(eval(item.prompt.removesuffix(" is ")))  # tokens are True/False/and/or/not/()
    by_length = Counter(item.meta["group"] for item in boolean.items)  # every expression while fewer than 100
    assert (by_length[1], by_length[2], by_length[3]) == (2, 2, 12)  # True; not True; 8 binary, not not, (True)
    with pytest.raises(ValueError, match="bad BIG-bench task name"):
        load_task("bigbench:../../etc")


def test_boolean_expressions_are_exactly_bigbench_task_py_queries(
    offline_bigbench: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run BIG-bench's own task.py (against a stub of its API) and compare the questions it asks with ours."""
    api = types.ModuleType("bigbench.api.task")
    api.Task = object
    api.TaskMetadata = api.ScoreData = lambda *a, **k: (a, k)
    package, api_package = types.ModuleType("bigbench"), types.ModuleType("bigbench.api")
    package.api, api_package.task = api_package, api
    for name, module in (("bigbench", package), ("bigbench.api", api_package), ("bigbench.api.task", api)):
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(
        "bb_boolean", offline_bigbench / "bigbench/tasks/boolean_expressions/task.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Recorder:
        inputs: list[str] = []

        def cond_log_prob(self, inputs: list[str], targets: list[list[str]]) -> list[list[float]]:
            assert all(t == ["True", "False"] for t in targets)
            self.inputs += inputs
            return [[0.0, 0.0]] * len(inputs)

    state = random.getstate()
    try:
        module.BooleanExpressionsTask().evaluate_model(Recorder())
    finally:
        random.setstate(state)
    theirs = [text.rsplit(" . ", 1)[-1] for text in Recorder.inputs]
    assert theirs == [item.prompt for item in load_task("bigbench:boolean_expressions").items]


def write_bigbench_clone(root: Path) -> None:
    """A folder laid out as a clone of the BIG-bench repository, holding two JSON tasks in its format (one with
    subtasks) and a file outside the task layout."""
    tasks = root / "bigbench" / "benchmark_tasks"
    examples = [
        {"input": f"What is {a} plus {b}?", "target_scores": {str(a + b): 1, str(a + b + 1): 0, "house": 0}}
        for a, b in ((12, 30), (25, 17), (40, 44))
    ]
    sub = {"task_prefix": "Add.\n", "examples": examples, "few_shot_example_separator": "\n\n"}
    (tasks / "adding" / "two_digit").mkdir(parents=True)
    (tasks / "adding" / "task.json").write_text(json.dumps({"name": "adding", "description": "sums"}))
    (tasks / "adding" / "two_digit" / "task.json").write_text(json.dumps(sub))
    moves = {"examples": [{"input": "Take 1 step. Turn around. Take 1 step.", "target_scores": {"Yes": 1, "No": 0}}]}
    (tasks / "walking").mkdir()
    (tasks / "walking" / "task.json").write_text(json.dumps({**moves, "example_input_prefix": "\nQ: "}))
    (tasks / "walking" / "README.md").write_text("not a task file")
    (tasks / "writing").mkdir()
    (tasks / "writing" / "task.json").write_text(json.dumps({"examples": [{"input": "Write.", "target": "A poem."}]}))


@pytest.mark.parametrize("layout", ["clone", "archive"])
def test_bigbench_reads_a_local_clone_or_archive_named_by_the_environment(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bigbench_clone(tmp_path / "BIG-bench")
    source = tmp_path / "BIG-bench"
    if layout == "archive":  # as GitHub serves a repository: one top folder, then the tree
        source = tmp_path / "BIG-bench-main.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(tmp_path / "BIG-bench", arcname="BIG-bench-main")
            evil = tarfile.TarInfo("BIG-bench-main/bigbench/benchmark_tasks/../../../escape/task.json")
            evil.size = 2
            tar.addfile(evil, io.BytesIO(b"{}"))
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(bigbench.SOURCE_ENV, str(source))

    adding, walking = load_tasks([("bigbench:adding", None), ("bigbench:walking", None)])
    assert [item.target for item in adding.items] == ["42", "42", "84"]
    assert all("house" in item.prompt for item in adding.items)  # the choices are appended, as json_task does
    assert adding.items[0].meta["preamble"] == "Add.\n" and adding.items[0].meta["separator"] == "\n\n"
    assert walking.items[0].target == "Yes" and walking.items[0].prompt.endswith("\nA: ")
    extracted = sorted(p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*.*"))
    assert [p for p in extracted if not p.startswith("eval_items/")] == [
        "bigbench/tasks/adding/task.json",
        "bigbench/tasks/adding/two_digit/task.json",
        "bigbench/tasks/walking/task.json",
    ]  # task files only, and nothing outside the cache
    with pytest.raises(ValueError, match="not multiple choice"):
        load_task("bigbench:writing")
    assert not (tmp_path / "escape").exists()
    with pytest.raises(ValueError, match="BIG-bench has no task nope"):
        load_task("bigbench:nope")


def test_unreachable_bigbench_is_a_named_gap_in_a_suite_and_an_error_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sdist is refused (a real HTTP 403 from a local server, asked once per process) and no local copy is
    named: a JSON task raises saying how to supply one; a suite leaves it out and names it; boolean_expressions,
    generated here, is still there."""
    refusals = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the handler's API)
            refusals.append(self.path)
            self.send_error(403, "Forbidden")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(bigbench, "SDIST_URL", f"http://127.0.0.1:{server.server_port}/bigbench-1.0.0.tar.gz")
    monkeypatch.setattr(bigbench, "_fetch_error", None)
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(bigbench.SOURCE_ENV, raising=False)
    try:
        with pytest.raises(bigbench.BigBenchUnavailable, match=r"HTTP Error 403.*DATAENGINE_BIGBENCH"):
            load_task("bigbench:navigate")
        names = [("bigbench:navigate", None), ("bigbench:boolean_expressions", None), ("probe:compare_nl", 20)]
        tasks, unavailable = load_available(names)
        assert [t.name for t in tasks] == ["bigbench:boolean_expressions", "probe:compare_nl"]
        assert list(unavailable) == ["bigbench:navigate"] and "403" in unavailable["bigbench:navigate"]
        assert len(tasks[0].items) == 428 and "not verified" in tasks[0].source
        assert refusals == ["/bigbench-1.0.0.tar.gz"]  # one request, not one per task
        twice = {**unavailable, "bigbench:cs_algorithms": unavailable["bigbench:navigate"]}
        why = unavailable["bigbench:navigate"]
        assert unavailable_lines(twice) == [f"bigbench:navigate, bigbench:cs_algorithms left out: {why}"]
        assert not list((tmp_path / "cache" / "bigbench").glob("*.tar.gz*"))  # no partial archive left behind
        monkeypatch.setenv(bigbench.SOURCE_ENV, str(tmp_path / "nowhere"))
        with pytest.raises(bigbench.BigBenchUnavailable, match="nowhere does not exist"):
            load_task("bigbench:navigate")
    finally:
        server.shutdown()


# -- fixed sets and generated probes ----------------------------------------------------------------------------------
def test_humaneval_has_its_164_problems_as_a_bpb_task() -> None:
    task = load_task("humaneval")
    assert len(task.items) == 164 and task.kind == "bpb" and task.chance is None and task.shots == 0
    assert all(len(item.choices) == 1 and "def " in item.prompt for item in task.items)
    assert [item.meta["task_id"] for item in task.items] == [f"HumanEval/{i}" for i in range(164)]
    assert len(load_task("humaneval", n=20, seed=1).items) == 20


@pytest.mark.parametrize("family", ["tracking", "arithmetic", "compare"])
def test_english_probes_are_correct_by_construction_in_both_phrasings(family: str) -> None:
    nl, code = load_task(f"probe:{family}_nl", n=300), load_task(f"probe:{family}_code", n=300)
    assert nl.style == "nl" and code.style == "code" and nl.chance == code.chance
    for a, b in zip(nl.items, code.items, strict=True):
        assert [c.lower() for c in a.choices] == b.choices and a.answer == b.answer  # the same problem
        assert run_repl(b.prompt) == b.target  # the Python phrasing prints the answer
        assert len(set(b.choices)) == len(b.choices) >= 3
        if family == "arithmetic":  # numbers as long as the answer: no choice likelier for its length alone
            assert {len(c) for c in b.choices} == {len(b.target)}
        assert a.prompt.startswith("Question: ") and a.prompt.endswith("\nAnswer: ")
    answers = Counter(item.answer for item in nl.items)
    assert len(answers) >= 3 and max(answers.values()) < 0.4 * len(nl.items)  # the answer's position is random


def test_chinese_probes_are_chinese_and_correct_by_construction() -> None:
    tasks = {name: load_task(f"probe_zh:{name}", n=300) for name in ("arithmetic", "compare", "sequence", "logic")}
    for task in tasks.values():
        assert task.lang == "zh" and all(re.search(r"[\u4e00-\u9fff]", item.prompt) for item in task.items)
    for item in tasks["arithmetic"].items + tasks["sequence"].items:
        assert {len(c) for c in item.choices} == {len(item.target)}
    for item in tasks["arithmetic"].items:
        expr, value = re.match(r"(.+) = (-?\d+)（", item.target).groups()
        assert eval(expr.replace("×", "*")) == int(value)  # the equation is right
        assert value in item.target.split("答：")[1]  # and so is the stated answer
        assert item.prompt.startswith("题目：") and item.prompt.endswith("解：")
    for item in tasks["compare"].items:  # rebuild the order from the pairwise statements
        above: dict[str, set[str]] = defaultdict(set)
        for a, b, word in re.findall(r"(小.)比(小.)(.)", item.prompt):
            (above[a].add(b) if word in "高重大" else above[b].add(a))
        people = set(above) | {p for ps in above.values() for p in ps}
        most = "最高" in item.target or "最重" in item.target or "最大" in item.target
        ranks = {p: _reach(above, p) for p in people}
        best = max(ranks, key=ranks.get) if most else min(ranks, key=ranks.get)
        assert item.target.startswith(best)
    for item in tasks["sequence"].items:
        terms = [int(t) for t in re.findall(r"-?\d+", item.prompt.split("：", 2)[2])]
        assert int(item.target) in _next_terms(terms)
    assert Counter(item.target for item in tasks["logic"].items).keys() == {"是。", "不是。", "不能确定。"}


def _reach(above: dict[str, set[str]], person: str) -> int:
    seen, todo = set(), [person]
    while todo:
        for p in above[todo.pop()] - seen:
            seen.add(p)
            todo.append(p)
    return len(seen)


def _next_terms(terms: list[int]) -> set[int]:
    """The continuations of an arithmetic, geometric or alternating-step sequence."""
    diffs = [b - a for a, b in zip(terms, terms[1:], strict=False)]
    found = set()
    if len(set(diffs)) == 1:
        found.add(terms[-1] + diffs[0])
    if terms[0] and all(b == a * (terms[1] // terms[0]) for a, b in zip(terms, terms[1:], strict=False)):
        found.add(terms[-1] * (terms[1] // terms[0]))
    if len(set(diffs[::2])) == 1 and len(set(diffs[1::2])) == 1:
        found.add(terms[-1] + diffs[len(diffs) % 2])
    return found


def test_code_exec_answers_are_what_the_programs_print() -> None:
    task = load_task("code_exec", n=200)
    assert len(task.items) == 200 and task.chance == 0.25
    for item in random.Random(0).sample(task.items, 25):  # each in its own fresh interpreter
        done = subprocess.run([sys.executable, "-I", "-c", item.meta["program"]], capture_output=True, text=True)
        assert done.stdout.strip() == item.target and item.prompt.endswith("# Output: ")
        assert len(set(item.choices)) == 4


def test_reasoning_gym_items_load_and_the_gym_scores_only_the_answer_correct() -> None:
    import reasoning_gym

    for name in ("basic_arithmetic", "chain_sum", "family_relationships"):
        task = load_task(f"gym:{name}", n=50, seed=3)
        data = reasoning_gym.create_dataset(name, size=50, seed=3)
        assert len(task.items) == 50 and task.source.startswith("reasoning_gym 0.1.25")
        for item, entry in zip(task.items, data, strict=True):
            assert entry["question"].strip() in item.prompt
            scores = [data.score_answer(c, entry) for c in item.choices]
            assert scores[item.answer] == 1.0 and sorted(scores)[-2] < 1.0


@pytest.mark.parametrize(
    "name", ["probe:tracking_code", "probe_zh:arithmetic", "gym:chain_sum", "code_exec", "humaneval"]
)
def test_items_are_deterministic_for_a_seed_and_differ_across_seeds(name: str) -> None:
    a, b, c = load_task(name, n=40, seed=0), load_task(name, n=40, seed=0), load_task(name, n=40, seed=1)
    assert a.items == b.items
    assert a.items != c.items
    rendered = a.render(5, shots=3, seed=0)
    assert rendered == b.render(5, shots=3, seed=0) and rendered.endswith(a.items[5].prompt)
    assert rendered.count(a.items[5].prompt) == 1  # few-shot examples are other items, never the item itself


def test_registry_lists_known_tasks_on_an_unknown_name() -> None:
    assert "probe:tracking_nl" in TASKS and "bigbench:navigate" in TASKS and "humaneval" in TASKS
    for bad in ("nope", "probe:nope_nl", "gym:nope"):
        with pytest.raises(ValueError, match="known"):
            load_task(bad)


def test_default_suite_and_decontamination_texts(tmp_path: Path) -> None:
    suite = load_suite("default")
    assert suite.primary == "reasoning" and suite.composites["reasoning"].metric == "calibrated_margin"
    assert {t.name for t in suite.tasks} <= set(TASKS)
    assert "humaneval" not in suite.composites["reasoning"].tasks
    small = tmp_path / "small.yaml"
    small.write_text(
        "name: small\ntasks: [{name: 'bigbench:boolean_expressions', n: 10}, {name: 'probe:tracking_nl', n: 30}]\n"
    )
    texts, unavailable = decontamination_texts(small)
    assert unavailable == {}  # boolean_expressions is generated here: it needs no BIG-bench file
    # all of a fixed set, not only the suite's sample; a generated set at its default size when asked for fewer
    assert Counter(name for name, _ in texts) == {"bigbench:boolean_expressions": 428, "probe:tracking_nl": 2000}
    assert "True is True" in {text for _, text in texts}
    with pytest.raises(ValueError, match="not in the suite"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: bad\ntasks: [{name: humaneval}]\ncomposites: {x: {tasks: [code_exec]}}\n")
        load_suite(bad)


def test_the_default_composites_load_on_a_fresh_machine_without_bigbench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No BIG-bench copy, an empty cache: every task of the default suite loads (generated, or from pinned packages),
    so its composites are the same on every machine; the JSON tasks stay nameable, and say why they cannot load."""
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DATAENGINE_BIGBENCH", str(tmp_path / "no-bigbench"))
    suite = load_suite("default")
    tasks, unavailable = suite.load(n=8)
    assert unavailable == {}
    loaded = {task.name for task in tasks}
    for spec in suite.composites.values():
        assert set(spec.tasks) <= loaded
    assert all(len(task.items) == 8 for task in tasks if task.name != "bigbench:boolean_expressions")
    assert "bigbench:navigate" in TASKS
    with pytest.raises(bigbench.BigBenchUnavailable):
        load_task("bigbench:navigate")


# -- scoring ----------------------------------------------------------------------------------------------------------
def test_prompt_whitespace_moves_onto_the_continuation(tokenizer: Tokenizer) -> None:
    (ctx,), (cont,), nbytes = encode_pairs(tokenizer, [("Answer: ", "7")], bos_id=eos_id(tokenizer))
    assert ctx[0] == eos_id(tokenizer) and tokenizer.decode(ctx[1:]) == "Answer:"
    assert tokenizer.decode(cont) == " 7" and nbytes.tolist() == [2]


class Unigram(nn.Module):
    """A real unigram language model: the same next-token distribution (add-one smoothed counts of ``sequences``)
    at every position, whatever the context: a model that ignores the question."""

    def __init__(self, sequences: list[list[int]], vocab: int) -> None:
        super().__init__()
        counts = torch.ones(vocab)
        for seq in sequences:
            counts += torch.bincount(torch.tensor(seq), minlength=vocab)
        self.register_buffer("logp", counts.log() - counts.sum().log())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logp.expand(*idx.shape, -1)


@pytest.mark.parametrize("name", ["probe:arithmetic_nl", "probe_zh:compare", "probe:tracking_code"])
def test_a_model_that_knows_the_answers_scores_far_above_the_null(tokenizer: Tokenizer, name: str) -> None:
    task = load_task(name, n=80)
    bos = eos_id(tokenizer)
    pairs = [(task.render(i, shots=0), task.continuations(i)[item.answer]) for i, item in enumerate(task.items)]
    ctx, cont, _ = encode_pairs(tokenizer, pairs, bos)
    knows = CountModel([[*c, *k] for c, k in zip(ctx, cont, strict=True)], tokenizer.get_vocab_size(), order=10_000)
    result = score_task(knows, tokenizer, task, seq_len=512, shots=0, bos_id=bos, batch_size=16)
    assert result.metrics["acc_norm"].value > 0.95 and result.metrics["p_norm"].value > 0.95
    assert result.metrics["p_norm_skill"].value > 0.9
    assert result.primary_metric == "calibrated_margin"
    null = result.null["calibrated_margin"]
    assert result.metrics["calibrated_margin"].lo > null["mean"] + 10 * null["sd"]
    assert result.chance == null["mean"] and abs(null["mean"]) < 3 * null["sd"]  # keys carry no information
    assert result.null["p_norm"]["mean"] == pytest.approx(np.mean(1 / result.items["n_choices"]), abs=0.02)
    uniform = score_task(Uniform(tokenizer.get_vocab_size()), tokenizer, task, seq_len=512, shots=0, bos_id=bos)
    assert result.metrics["bpb"].value < uniform.metrics["bpb"].value
    summary = result.summary()
    assert result.items["p_norm"].shape == (80,) and summary["per_item"]["p_norm"][0] > 0.9
    assert len(summary["per_item"]["calibrated_margin"]) == 80 and summary["null"] == result.null


def test_a_model_that_ignores_the_question_scores_its_null_on_the_calibrated_margin(tokenizer: Tokenizer) -> None:
    """Items whose key is mostly "yes": a unigram model that likes "yes" wins on the raw margin by the answers'
    content alone; its calibrated margin is zero on every item (the question never changes what it prefers)."""
    rng = random.Random(0)
    items = []
    for i in range(60):
        choices = ["yes", "no"] if rng.random() < 0.5 else ["no", "yes"]
        items.append(Item(f"Question: is {i} below {rng.randint(0, 99)}?\nAnswer: ", choices, choices.index("yes")))
    task = Task("yes_bias", items, "en", "nl", "mc", "keys biased towards yes", "this test", shots=2)
    bos = eos_id(tokenizer)
    unigram = Unigram([tokenizer.encode(" yes\n").ids * 50, tokenizer.encode(" no\n").ids], tokenizer.get_vocab_size())
    result = score_task(unigram, tokenizer, task, seq_len=512, bos_id=bos)
    np.testing.assert_allclose(result.items["calibrated_margin"], 0.0, atol=1e-9)
    assert result.null["calibrated_margin"]["mean"] == pytest.approx(0.0, abs=1e-9)
    margin, null = result.metrics["margin"], result.null["margin"]
    assert margin.lo > null["mean"] + 2 * null["sd"] and result.metrics["acc_norm"].value == 1.0
    single = [Item(f"Is {i} even? ", it.choices, it.answer) for i, it in enumerate(items)]
    one_line = Task("one line", single, "en", "nl", "mc", "one-line prompts: examples left", "test", shots=2)
    result = score_task(unigram, tokenizer, one_line, seq_len=512, bos_id=bos)
    np.testing.assert_allclose(result.items["calibrated_margin"], 0.0, atol=1e-9)


def test_a_uniform_model_scores_exactly_its_null(tokenizer: Tokenizer) -> None:
    rng = random.Random(0)
    items = [
        Item(f"Question: {rng.randint(0, 99)} apples?\nAnswer: ", list("0123"), rng.randrange(4)) for _ in range(50)
    ]
    task = Task("digits", items, "en", "nl", "mc", "four one-token choices", "this test")
    result = score_task(Uniform(tokenizer.get_vocab_size()), tokenizer, task, seq_len=64, bos_id=eos_id(tokenizer))
    assert task.chance == 0.25
    assert result.metrics["p_norm"].value == pytest.approx(0.25, abs=1e-9)
    assert result.metrics["acc_norm"].value == pytest.approx(0.25, abs=1e-9)  # four-way ties, shared
    assert result.null["p_norm"] == pytest.approx({"mean": 0.25, "sd": 0.0}, abs=1e-9)
    for metric in ("calibrated_margin", "margin"):
        assert result.metrics[metric].value == pytest.approx(0.0, abs=1e-9) and result.null[metric]["sd"] < 1e-9
    assert composite({"digits": result}, ["digits"]).value == pytest.approx(0.0, abs=1e-9)
    expected_bpb = math.log2(tokenizer.get_vocab_size())  # three tokens over three bytes: " ", the digit, "\n"
    assert result.metrics["bpb"].value == pytest.approx(expected_bpb)


def test_the_question_removed_context_keeps_the_examples_and_the_answer_cue() -> None:
    task = load_task("probe:arithmetic_nl", n=10)
    full, bare = task.render(0, shots=2), task.render_without_question(0, shots=2)
    assert full.endswith(task.items[0].prompt) and bare.endswith("\n\nAnswer: ")
    assert full[: len(bare) - len("Answer: ")] == bare[: -len("Answer: ")]  # the same two solved examples
    single = Task("one line", [Item("1 + 1 is ", ["2", "3"], 0), Item("2 + 2 is ", ["4", "5"], 0)], "en", "nl", "mc",
                  "", "this test", shots=1, separator=" . ")  # fmt: skip
    assert single.render_without_question(0) == "2 + 2 is 4 . "  # one line: all of it is the question


def test_long_inputs_are_truncated_and_windowed_without_changing_a_short_context_model(tokenizer: Tokenizer) -> None:
    rng = random.Random(1)
    texts = ["".join(rng.choice("abc de\n") for _ in range(400)) for _ in range(6)]
    seqs = [e.ids for e in tokenizer.encode_batch(texts)]
    model = CountModel(seqs, tokenizer.get_vocab_size(), order=3)
    contexts, continuations = [np.array(s[:150]) for s in seqs], [np.array(s[150:]) for s in seqs]  # 100+ tokens
    wide = loglikelihoods(model, contexts, continuations, seq_len=1024)
    narrow = loglikelihoods(model, contexts, continuations, seq_len=16, batch_size=3)
    np.testing.assert_allclose(narrow, wide, rtol=1e-6)
    humaneval = load_task("humaneval", n=3)
    result = score_task(Uniform(tokenizer.get_vocab_size()), tokenizer, humaneval, seq_len=32)
    assert set(result.metrics) == {"bpb"} and result.metrics["bpb"].value > 1


class AllLogits(nn.Module):
    """The same GPT seen only through ``forward`` (all [B, T, V] logits), as any other module is scored."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gpt(idx)


def test_gpt_scores_through_the_head_at_scored_positions_only_with_unchanged_results() -> None:
    torch.manual_seed(0)
    gpt = GPT(model_config("debug", vocab_size=300, seq_len=64))
    rng = np.random.default_rng(0)
    contexts = [rng.integers(0, 300, n) for n in (5, 40, 90)]
    continuations = [rng.integers(0, 300, n) for n in (1, 7, 50)]
    ours = loglikelihoods(gpt, contexts, continuations, seq_len=64, batch_size=2)
    full = loglikelihoods(AllLogits(gpt), contexts, continuations, seq_len=64, batch_size=2)
    np.testing.assert_allclose(ours, full, rtol=1e-5)
    x = torch.from_numpy(rng.integers(0, 300, (2, 10)))
    rows, times = torch.tensor([0, 1, 1]), torch.tensor([9, 0, 4])
    torch.testing.assert_close(gpt.logits_at(x, rows, times), gpt(x)[rows, times])


def test_choices_packed_after_one_context_score_as_each_after_it_alone() -> None:
    """The GPT scores an item's choices in one sequence (context once, each choice seeing only it and itself); the
    numbers are those of scoring each choice after the context alone.  Groups too long to pack, and models without
    ``logits_packed``, take the windowed path."""
    torch.manual_seed(0)
    gpt = GPT(model_config("debug", vocab_size=300, seq_len=64))
    rng = np.random.default_rng(0)
    contexts, continuations, sizes = [], [], []
    for length in (1, 5, 30, 59, 63):  # 59 and 63: some choices do not fit after the context
        k = int(rng.integers(2, 5))
        sizes.append(k)
        context = rng.integers(0, 300, length)
        for _ in range(k):
            contexts.append(context)
            continuations.append(rng.integers(0, 300, int(rng.integers(1, 9))))
    packed = choice_loglikelihoods(gpt, contexts, continuations, sizes, seq_len=64, batch_size=2)
    alone = loglikelihoods(gpt, contexts, continuations, seq_len=64, batch_size=2)
    np.testing.assert_allclose(packed, alone, rtol=1e-5)
    np.testing.assert_allclose(
        choice_loglikelihoods(AllLogits(gpt), contexts, continuations, sizes, seq_len=64), alone, rtol=1e-5
    )
    with pytest.raises(ValueError, match="group sizes do not add up"):
        choice_loglikelihoods(gpt, contexts, continuations, [1], seq_len=64)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_items() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.random(100) < 0.6, rng.random(10_000) < 0.6
    a, b = bootstrap(small, seed=1), bootstrap(large, seed=1)
    assert a.lo <= a.value <= a.hi and b.lo <= b.value <= b.hi
    assert (b.hi - b.lo) < (a.hi - a.lo) / 5  # ~ 1 / sqrt(n)
    bits, nbytes = rng.random(500) * 8, rng.integers(1, 10, 500).astype(float)
    ratio = bootstrap(bits, nbytes, seed=2)
    assert ratio.value == pytest.approx(bits.sum() / nbytes.sum()) and ratio.lo < ratio.value < ratio.hi
    np.testing.assert_array_equal(bootstrap_samples(small, seed=5), bootstrap_samples(small, seed=5))  # paired


# -- the command line -------------------------------------------------------------------------------------------------
def test_cli_scores_a_checkpoint_and_adds_held_out_bpb(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pretrain.eval.__main__ import main
    from pretrain.model import GPT, model_config, save_checkpoint

    tokenizer_json = (build / "tokenizer.json").read_text(encoding="utf-8")
    tok = Tokenizer.from_str(tokenizer_json)
    config = model_config("debug", tok.get_vocab_size(), 64)
    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt.pt"
    extra = {"tokenizer": tokenizer_json, "eos_id": eos_id(tok), "metrics": {}}
    save_checkpoint(ckpt, GPT(config), None, 7, {"model": asdict(config), "train": {}}, {}, extra)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: tiny\nseed: 0\ntasks: [{name: 'probe:compare_nl', n: 30}, {name: 'probe_zh:logic', n: 30},"
        " {name: humaneval, n: 5}, {name: 'bigbench:navigate'}]\nprimary: reasoning\ncomposites: {reasoning:"
        " {tasks: ['probe:compare_nl', 'probe_zh:logic', 'bigbench:navigate'], metric: p_norm_skill}}\n"
    )
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))  # BIG-bench's files nowhere to be had
    monkeypatch.setenv("DATAENGINE_BIGBENCH", str(tmp_path / "no-bigbench"))
    out = tmp_path / "eval.json"
    args = ["--ckpt", str(ckpt), "--tasks", str(suite), "--data", str(build), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    captured = capsys.readouterr()
    table = captured.out
    assert "probe:compare_nl" in table and "composite:reasoning" in table and "held-out:web_zh" in table
    assert re.search(r"bigbench:navigate +\(not evaluated: source unavailable\)", table)
    assert "warning: bigbench:navigate left out" in captured.err and "no-bigbench does not exist" in captured.err
    report = json.loads(out.read_text())
    assert report["step"] == 7 and report["suite"] == "tiny"
    logic = report["tasks"]["probe_zh:logic"]
    assert logic["n"] == 30 and logic["primary_metric"] == "calibrated_margin"
    assert logic["chance"] == logic["null"]["calibrated_margin"]["mean"]
    assert logic["null"]["p_norm"]["mean"] == pytest.approx(1 / 3, abs=0.02)  # untrained: keys shuffle to 1/k
    assert len(logic["per_item"]["calibrated_margin"]) == 30
    assert logic["metrics"]["calibrated_margin"]["lo"] <= logic["metrics"]["calibrated_margin"]["hi"]
    assert set(report["tasks"]["humaneval"]["metrics"]) == {"bpb"}
    assert report["composite"]["tasks"] == ["probe:compare_nl", "probe_zh:logic"]
    assert report["composite"]["unavailable"] == ["bigbench:navigate"] and list(report["unavailable"]) == [
        "bigbench:navigate"
    ]
    assert report["held_out"]["web_zh"]["bpb"] > 0

    assert main(["--ckpt", str(ckpt), "--tasks", "probe:nope_nl", "--device", "cpu"]) == 2
    assert "unknown probe" in capsys.readouterr().err
    assert main(["--ckpt", str(ckpt), "--tasks", "bigbench:navigate", "--device", "cpu"]) == 2  # asked for: an error
    assert "error: DATAENGINE_BIGBENCH=" in capsys.readouterr().err

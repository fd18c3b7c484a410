"""The pilot's pre-registration: tasks kept by a rule fixed before the ladder, scored by real models (a count model
that knows the answers, a unigram model that ignores the question); the ladder's refusal without one."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from pipelines.experiment import main
from pipelines.experiment_report import analyse, write_markdown
from pipelines.preregistration import DECISION_RULE, METRIC, composite_of, preregistration, read_preregistration
from pretrain.eval import Item, Task, load_task, score_task
from pretrain.eval.scoring import encode_pairs
from tests.test_eval import CountModel, Unigram
from tests.test_inspect import build_output
from tokenizer.train import eos_id

KNOWN, IGNORED = "probe:arithmetic_nl", "yes_bias"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    out = tmp_path_factory.mktemp("build")
    build_output(out)
    return Tokenizer.from_file(str(out / "tokenizer.json"))


@pytest.fixture(scope="module")
def evaluations(tokenizer: Tokenizer) -> dict[str, Any]:
    """Per-task summaries as ``pretrain.eval`` writes them: a task a model that knows the answers scores, and one
    scored by a model that ignores the question (at its null by construction)."""
    bos = eos_id(tokenizer)
    known = load_task(KNOWN, n=60)
    pairs = [(known.render(i, shots=0), known.continuations(i)[it.answer]) for i, it in enumerate(known.items)]
    ctx, cont, _ = encode_pairs(tokenizer, pairs, bos)
    knows = CountModel([[*c, *k] for c, k in zip(ctx, cont, strict=True)], tokenizer.get_vocab_size(), order=10_000)
    rng = random.Random(0)
    items = []
    for i in range(60):
        choices = ["yes", "no"] if rng.random() < 0.5 else ["no", "yes"]
        items.append(Item(f"Question: is {i} below {rng.randint(0, 99)}?\nAnswer: ", choices, choices.index("yes")))
    ignored = Task(IGNORED, items, "en", "nl", "mc", "keys biased towards yes", "this test", shots=2)
    unigram = Unigram([tokenizer.encode(" yes\n").ids * 50, tokenizer.encode(" no\n").ids], tokenizer.get_vocab_size())
    return {
        KNOWN: score_task(knows, tokenizer, known, seq_len=512, shots=0, bos_id=bos, batch_size=16).summary(),
        IGNORED: score_task(unigram, tokenizer, ignored, seq_len=512, bos_id=bos).summary(),
    }


def _pilot(evaluations: dict[str, Any], seeds: int = 2) -> dict[str, Any]:
    rungs = [{"name": r, "code_share": c, "control": None} for r, c in (("code0", 0.0), ("code50", 0.5))]
    runs = {f"{r['name']}-s{s}": {"rung": r["name"], "seed": s} for s in range(seeds) for r in rungs}
    composite = {"tasks": [KNOWN, IGNORED], "metric": METRIC, "description": "the suite's"}
    evals = {name: [{"ckpt": name, "tasks": evaluations, "composite": composite, "held_out": {}}] for name in runs}
    training = {name: {"tokens": 1000, "tokens_per_s": 1.0} for name in runs}
    return {"rungs": rungs, "runs": runs, "evals": evals, "suite": "default", "baseline": "code0",
            "settings": {}, "training": training}  # fmt: skip


def test_the_pilot_keeps_a_task_a_model_that_knows_beats_and_drops_one_at_its_null(
    evaluations: dict[str, Any], tmp_path: Path
) -> None:
    pilot = {"mixes": ["code0", "code50"], "model": "tiny", "tokens": "500k", "seeds": 2}
    content = preregistration(analyse(**_pilot(evaluations)), pilot, {"mixes": ["code0", "code30"]})
    assert content["tasks"] == [KNOWN] and content["dropped"] == [IGNORED]
    assert content["evidence"][KNOWN]["code0"]["z"] > 2 and content["evidence"][IGNORED]["code50"]["z"] < 2
    assert content["metric"] == METRIC and content["decision_rule"] == DECISION_RULE and content["date"][:2] == "20"
    assert content["pilot"] == pilot and content["suite"] == "default"

    path = tmp_path / "preregistration.json"
    path.write_text(json.dumps(content))
    assert read_preregistration(path, "default") == content
    with pytest.raises(ValueError, match="pre-registers suite 'default', not this ladder's 'other'"):
        read_preregistration(path, "other")
    with pytest.raises(ValueError, match="no pre-registration at .*--pilot.*--no-preregistration"):
        read_preregistration(tmp_path / "none.json", "default")
    path.write_text(json.dumps(content | {"tasks": []}))
    with pytest.raises(ValueError, match="kept no task"):
        read_preregistration(path, "default")

    # the ladder's report tests the pre-registered composite, beside both nulls, and says where it came from
    ladder = _pilot(evaluations) | {"settings": {"preregistration": content}}
    untrained = [[{"tasks": evaluations}]]  # stands in for an untrained model's evaluation: the same shape
    result = analyse(**ladder, composite=composite_of(content), untrained=untrained)
    assert result["composite"]["tasks"] == [KNOWN]
    assert result["untrained"][KNOWN] == pytest.approx(result["results"]["code0"][KNOWN]["mean"])
    summary = write_markdown(result)
    assert "Pre-registered 20" in summary and "composite null (untrained model, same init)" in summary
    assert "| null: shuffled keys | null: untrained |" in summary


def test_the_ladder_refuses_to_run_without_a_pre_registration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--mixes", "code0,code30", "--controls", "", "--seeds", "1", "--out", str(tmp_path / "ladder")]
    assert main(args) == 2
    assert "no pre-registration at" in capsys.readouterr().err
    assert not (tmp_path / "ladder").exists()  # refused before any work

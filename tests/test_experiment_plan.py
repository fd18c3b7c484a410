"""Sizing the ladder's rungs so that every text source is seen the same number of epochs in every rung, and the
refusal of a ladder that would repeat its text too often."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.experiment import Experiment
from pipelines.experiment_plan import RungSize, plan_repetition
from tests.test_inspect import build_output

AVAILABLE = {"web_en": 700_000, "web_zh": 400_000, "code": 300_000}


def _rungs() -> list[RungSize]:
    """code0, code30, code50 (text 70:30 English:Chinese), and code30's ontop control and its text-only twin."""

    def mix(code: float) -> dict[str, float]:
        return {"code": code, "web_en": 0.7 * (1 - code), "web_zh": 0.3 * (1 - code)}

    return [
        RungSize("code0", mix(0.0)),
        RungSize("code30", mix(0.3)),
        RungSize("code50", mix(0.5)),
        RungSize("code30-ontop", mix(0.3), scale=1 / 0.7),
        RungSize("code30-textonly", mix(0.0), scale=1 / 0.7),
    ]


def test_every_rung_sees_each_text_source_the_same_number_of_epochs() -> None:
    plan = plan_repetition(AVAILABLE, _rungs(), train_tokens=2_000_000, max_text_epochs=4, max_code_epochs=4)
    # the text-only twin holds the most English per shard token: 0.7 of its 1/0.7-scaled shards; once through
    assert plan.shard_tokens["code0"] == 700_000 and plan.shard_tokens["code30-textonly"] == 1_000_000
    for source in ("web_en", "web_zh"):
        seen = [plan.epochs[rung][source] for rung in plan.epochs]
        assert max(seen) == pytest.approx(min(seen), rel=1e-6) and seen[0] == pytest.approx(2_000_000 / 700_000)
    assert plan.text_epochs == pytest.approx(2_000_000 / 700_000)
    # code's epochs follow its share (reported, not equalised): code50's shards repeat code, code30's subsample it
    assert plan.epochs["code50"]["code"] == pytest.approx(2_000_000 * 0.5 / 300_000)
    assert plan.epochs["code30"]["code"] == pytest.approx(2_000_000 / 700_000)  # 210k of 300k: like text
    assert "code" not in plan.epochs["code0"] and "code" not in plan.epochs["code30-textonly"]


def test_an_over_repeated_ladder_is_refused_saying_how_much_text_it_needs() -> None:
    # 4 epochs of 20M training tokens: the text-only twin trains 20M / 0.7 tokens, 70% English -> 5M, 30% Chinese
    with pytest.raises(ValueError, match=r"text 28\.6 epochs \(cap 4\): 20,000,000 training tokens need 7,142,858 "
                       r"unique text tokens \(web_en 5,000,000 \(has 700,000\), web_zh 2,142,858"):  # fmt: skip
        plan_repetition(AVAILABLE, _rungs(), train_tokens=20_000_000, max_text_epochs=4, max_code_epochs=4)
    plan = plan_repetition(AVAILABLE, _rungs(), train_tokens=20_000_000, max_text_epochs=30, max_code_epochs=4)
    assert plan.text_epochs < 30


def test_a_forced_shard_budget_that_repeats_text_unequally_is_refused() -> None:
    with pytest.raises(ValueError, match=r"web_en would be seen .* epochs across the rungs .* lower --total-tokens to"):
        plan_repetition(AVAILABLE, _rungs(), 2_000_000, 4, 4, shard_total=2_000_000)
    with pytest.raises(ValueError, match="the reference build has no tokens of code"):
        plan_repetition({"web_en": 10, "web_zh": 10}, _rungs(), 100, 4, 4)


def test_controls_train_the_ladders_text_tokens_plus_code_and_a_text_only_twin(tmp_path: Path) -> None:
    """ontop trains 500k / 0.7 tokens, 500k of them text; its twin as many, all text; the others 500k."""
    args = argparse.Namespace(
        out=tmp_path, mixes=["code0", "code30"], controls=["ontop", "textonly", "scrambled"], reference="code30",
        seeds=1, model="tiny", tokens="500k", device="cpu", eval_every=100, last_evals=1, train_args=[],
    )  # fmt: skip
    ladder = Experiment(args, Console(stderr=True))
    assert {run.name: ladder.run_tokens(run) for run in ladder.runs} == {
        "code0-s0": 500_000,
        "code30-s0": 500_000,
        "code30-ontop-s0": 714_286,
        "code30-textonly-s0": 714_286,
        "code30-scrambled-s0": 500_000,
    }
    twin = next(r for r in ladder.rungs if r.control == "textonly")
    assert twin.code_share == 0.0 and twin.shares() == pytest.approx({"web_en": 0.7, "web_zh": 0.3})


def test_the_experiment_sizes_each_rungs_build_from_the_reference_manifest(tmp_path: Path) -> None:
    """The ladder reads the reference build's available tokens, sizes every rung's mix (the text-only twin without
    code, scaled like ontop), and refuses before training when --tokens would repeat the text too often."""
    args = argparse.Namespace(
        out=tmp_path, mixes=["code0", "code30"], controls=["ontop", "textonly", "scrambled"], reference="code30",
        seeds=1, model="tiny", tokens="1k", device="cpu", eval_every=100, last_evals=1, train_args=[], parallel=1,
        max_text_epochs=4.0, total_tokens=None, sources=None,
    )  # fmt: skip
    ladder = Experiment(args, Console(stderr=True))
    with pytest.raises(ValueError, match="no reference build"):
        ladder.plan()
    build_output(tmp_path / "data" / "_reference")  # a real (small) build output: shards, held-out, manifest
    available = json.loads((tmp_path / "data" / "_reference" / "manifest.json").read_text())["mix"]["sources"]
    plan = ladder.plan()
    shard = plan.shard_tokens["code0"]
    en, zh = available["web_en"]["available_tokens"], available["web_zh"]["available_tokens"]
    assert shard == int(0.7 * min(en / 0.7, zh / 0.3))  # the text-only twin binds: 1/0.7 x code0's text, once
    mixes = {r.name: ladder._rung_mix(r, plan.shard_tokens[r.name]) for r in ladder.rungs}
    assert mixes["code30"].total_tokens == mixes["code30-scrambled"].total_tokens == shard
    stages = {r.name: [s.name for s in ladder.extra_stages(r)] for r in ladder.rungs}
    assert stages["code30-scrambled"] == ["scramble_lines"] and stages["code30"] == []
    assert mixes["code30-ontop"].total_tokens == mixes["code30-textonly"].total_tokens == round(shard / 0.7)
    assert "code" not in mixes["code30-textonly"].shares and mixes["code30-ontop"].shares["code"] == 0.3
    text_epochs = {r: e["web_zh"] for r, e in plan.epochs.items()}
    assert max(text_epochs.values()) == pytest.approx(min(text_epochs.values())) == pytest.approx(1000 / shard)
    build_output(tmp_path / "data" / "code0")  # measured epochs: trained tokens x share / unique tokens held
    runs = [run for run in ladder.runs if run.rung.name == "code0"]
    total = sum(s["realised_tokens"] for s in available.values())
    measured = ladder.measured_epochs(runs, {runs[0].name: {"tokens": 2 * total}})
    assert measured == {"code0": {"code": 2.0, "web_en": 2.0, "web_zh": 2.0}}
    ladder.args.tokens = "100M"
    with pytest.raises(ValueError, match="this ladder would see its text .* epochs .cap 4.: 100,000,000 training"):
        ladder.train()

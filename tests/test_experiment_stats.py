"""The ladder's paired statistics on synthetic per-item scores with a known effect: seed-paired hierarchical
bootstrap, Holm correction, no verdict from one seed, the minimum detectable effect."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.experiment_report import analyse, holm, write_markdown

TASKS = ["task_a", "task_b"]
METRIC = "calibrated_margin"


def _ladder(effects: dict[str, float], seeds: int, items: int = 300, seed: int = 0) -> dict[str, Any]:
    """Evaluations of rungs whose true score is ``effects[rung]`` above the baseline's; every seed index has its own
    offset (its initialisation and data order), shared by all rungs, as paired seeds have; items have their own
    difficulty, shared by all runs; then per-run noise.  The seed offsets (sd 0.05) dwarf the effect (0.03): only
    a paired analysis can see it."""
    rng = np.random.default_rng(seed)
    seed_offset = rng.normal(0, 0.05, seeds)
    difficulty = {t: rng.normal(0, 0.3, items) for t in TASKS}
    runs, evals = {}, {}
    for rung, effect in effects.items():
        for s in range(seeds):
            name = f"{rung}-s{s}"
            runs[name] = {"rung": rung, "seed": s}
            tasks = {
                t: {
                    "primary_metric": METRIC,
                    "per_item": {
                        METRIC: (effect + seed_offset[s] + difficulty[t] + rng.normal(0, 0.1, items)).tolist()
                    },
                    "null": {METRIC: {"mean": 0.0, "sd": 0.01}},
                }
                for t in TASKS
            }
            composite = {"tasks": TASKS, "metric": METRIC, "description": "synthetic"}
            evals[name] = [{"ckpt": name, "tasks": tasks, "composite": composite, "held_out": {}}]
    rungs = [{"name": r, "code_share": 0.1 * i, "control": None} for i, r in enumerate(effects)]
    training = {name: {"tokens": 1000, "tokens_per_s": 1.0} for name in runs}
    repetition = {r: {"web_en": 2.0, "code": 0.5 * i} for i, r in enumerate(effects)}
    return analyse(rungs, runs, evals, "synthetic", "base", {}, training, repetition)


def test_holm_adjusts_known_p_values() -> None:
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})


def test_paired_bootstrap_detects_a_known_effect_and_calls_a_null_one_noise() -> None:
    result = _ladder({"base": 0.0, "better": 0.03, "same": 0.0}, seeds=3)
    better, same = result["vs_baseline"]["better"], result["vs_baseline"]["same"]
    assert better["composite"]["verdict"] == "higher than baseline" and better["composite"]["p"] < 0.01
    assert better["composite"]["ci95"][0] < 0.03 < better["composite"]["ci95"][1]
    assert all(better[t]["verdict"] == "higher than baseline" and better[t]["p_holm"] >= better[t]["p"] for t in TASKS)
    assert (
        same["composite"]["verdict"] == "within noise"
        and same["composite"]["ci95"][0] < 0 < same["composite"]["ci95"][1]
    )
    assert all(same[t]["verdict"] == "within noise" for t in TASKS)
    # the seed offsets make each rung's own interval wide; the paired difference's is narrow
    base = result["results"]["base"]["composite"]
    assert base["ci95"][1] - base["ci95"][0] > 2 * (better["composite"]["ci95"][1] - better["composite"]["ci95"][0])
    assert 0 < better["composite"]["mde"] < 0.03 and better["composite"]["paired_seeds"] == 3
    assert result["results"]["better"]["composite"]["null"] == 0.0
    summary = write_markdown(result)
    assert "minimum detectable effect (80% power)" in summary and "| epochs of web_en in training | 2.00 |" in summary
    task_rows = [line for line in summary.splitlines() if line.startswith("| task_a")]
    assert len(task_rows) == 1 and "higher than baseline" in task_rows[0] and "within noise" in task_rows[0]


def test_one_seed_never_gives_a_verdict_and_more_items_lower_the_detectable_effect() -> None:
    one = _ladder({"base": 0.0, "better": 0.3}, seeds=1)
    assert one["vs_baseline"]["better"]["composite"]["verdict"] == "one seed: no verdict"
    assert all(one["vs_baseline"]["better"][t]["verdict"] == "one seed: no verdict" for t in TASKS)
    few, many = _ladder({"base": 0.0, "x": 0.0}, seeds=3, items=100), _ladder({"base": 0.0, "x": 0.0}, 3, items=1600)
    assert many["vs_baseline"]["x"]["composite"]["mde"] < few["vs_baseline"]["x"]["composite"]["mde"] / 2

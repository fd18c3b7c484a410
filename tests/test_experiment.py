"""The mix ladder end to end through its CLI, as the README runs it, at micro scale (2 mixes + a control, 1 seed)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from pipelines.experiment import Experiment
from pipelines.experiment_report import analyse, write_markdown
from tests.corpus import write_mix

SHARES = {
    "tcode0": {"code": 0.0, "web_en": 0.45, "crawl_en": 0.2, "web_zh": 0.3, "notes_zh": 0.05},
    "tcode50": {"code": 0.5, "web_en": 0.2, "crawl_en": 0.1, "web_zh": 0.15, "notes_zh": 0.05},
}
SUITE = {
    "name": "micro",
    "seed": 0,
    "tasks": [
        {"name": "probe:arithmetic_nl", "n": 24},
        {"name": "probe:arithmetic_code", "n": 24},
        {"name": "probe_zh:compare", "n": 24},
        {"name": "humaneval", "n": 8},
    ],
    "primary": "reasoning",
    "composites": {
        "reasoning": {
            "tasks": ["probe:arithmetic_nl", "probe:arithmetic_code", "probe_zh:compare"],
            "metric": "p_norm_skill",
            "description": "micro test composite",
        }
    },
}


def micro_ladder_command(mixes: list[str], reference: str, controls: str, out: Path, last_evals: int) -> list[str]:
    """The experiment CLI at micro scale (debug model, 4,096 tokens, the micro suite written beside ``out``, one
    seed, no pre-registration), as the README runs it."""
    suite = out.parent / "micro.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    train = ["--seq-len=64", "--batch-size=4", "--num-workers=0", "--eval-tokens=2000", "--log-every=4"]
    return [
        sys.executable, "-m", "pipelines.experiment",
        "--mixes", ",".join(mixes), "--reference", reference, "--controls", controls,
        "--seeds", "1", "--model", "debug", "--tokens", "4096", "--eval-every", "8", "--last-evals", str(last_evals),
        "--suite", str(suite), "--out", str(out), "--workers", "2", "--device", "cpu", "--no-preregistration",
        *[f"--train-arg={a}" for a in train],
    ]  # fmt: skip


def test_micro_ladder_builds_trains_evaluates_and_reports(corpus: Path, tmp_path: Path) -> None:
    held_out = {"held_out_tokens": 3000, "held_out_min_docs": 8}  # by tokens: the slice chosen in the workers
    mixes = [str(write_mix(tmp_path, corpus, name=n, shares=s, **held_out)) for n, s in SHARES.items()]
    out = tmp_path / "ladder"
    cmd = micro_ladder_command(mixes, mixes[1], "scrambled", out, last_evals=2)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]

    result = json.loads((out / "experiment.json").read_text())
    rungs = ["tcode0", "tcode50", "tcode50-scrambled"]
    assert [r["name"] for r in result["rungs"]] == rungs
    assert result["baseline"] == "tcode0" and result["composite"]["tasks"] == SUITE["composites"]["reasoning"]["tasks"]
    for rung in rungs:
        score = result["results"][rung]["composite"]
        assert score["ci95"][0] <= score["mean"] <= score["ci95"][1]
        assert set(result["held_out_bpb"][rung]) >= {"web_en", "code"}
    for rung in rungs[1:]:  # one seed: the difference is reported, never called beyond noise
        assert result["vs_baseline"][rung]["composite"]["verdict"] == "one seed: no verdict"
    assert all(t["params"] > 0 and t["steps"] == 16 for t in result["training"].values())
    for source in ("web_en", "crawl_en", "web_zh", "notes_zh"):  # repetition held equal: every rung, each text source
        seen = [result["repetition"][rung][source] for rung in rungs]
        assert max(seen) <= 1.1 * min(seen), (source, seen)
    assert "code" not in result["repetition"]["tcode0"] and result["repetition"]["tcode50"]["code"] > 0
    assert "epochs of web_en in training" in (out / "summary.md").read_text()
    assert "No pre-registration (--no-preregistration)" in (out / "summary.md").read_text()
    untrained = json.loads((out / "runs" / "untrained-s0" / "ckpt-0.eval.json").read_text())  # same init, 0 steps
    assert untrained["step"] == 0 and set(result["untrained"]) == {*untrained["tasks"], "composite"}
    web_en = result["held_out_bpb"]["tcode0"]["web_en"]
    assert web_en["doc_ci95"][0] < web_en["mean"] < web_en["doc_ci95"][1] and web_en["docs"] > 1
    for name in ("report.html", "reasoning_vs_code.png", "bpb_vs_code.png"):
        assert (out / name).stat().st_size > 1000
    summary = (out / "summary.md").read_text()
    assert summary.splitlines()[0] == "| | tcode0 | tcode50 | tcode50-scrambled |" and summary in done.stderr

    # one tokenizer and one token budget for the whole ladder; the placebo has the same code tokens, shuffled
    manifests = {r: json.loads((out / "data" / r / "manifest.json").read_text()) for r in rungs}
    assert len({m["tokenizer"]["sha256"] for m in manifests.values()}) == 1
    assert len({m["totals"]["tokens"] for m in manifests.values()}) == 1
    assert manifests["tcode50"]["mix"]["sources"]["code"]["realised_tokens"] > 0
    assert "code" not in manifests["tcode0"]["mix"]["sources"]  # a zero share takes no code at all
    slices = {r: [(e["path"], e["sha256"]) for e in m["held_out"]] for r, m in manifests.items()}
    assert slices["tcode0"] == slices["tcode50"] == slices["tcode50-scrambled"]  # one slice, the placebo's too
    held = {e["path"]: e for e in manifests["tcode0"]["held_out"]}["held_out/web_en-00000.arrow"]
    assert held["rows"] >= 8 and held["tokens"] >= 3000
    reports = {r: json.loads((out / "data" / r / "report.json").read_text()) for r in rungs}
    assert all(r["stage_cache"]["hit"] for r in reports.values())  # the cleaning stages ran once, for the reference

    # every phase skips what is complete: a second run does no work and gives the same report
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 to go" in again.stderr and "0 checkpoints to score" in again.stderr
    assert json.loads((out / "experiment.json").read_text())["results"] == result["results"]


def test_summary_table_of_a_recorded_ladder() -> None:
    """The Markdown summary of the committed H100 ladder: one column per rung, the composite's paired comparison
    and verdict, and no seed spread shown for a rung that ran one seed."""
    result = json.loads((Path(__file__).parents[1] / "bench/results/ladder-h100/experiment.json").read_text())
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in write_markdown(result).splitlines()]
    rows = {row[0]: row[1:] for row in cells if len(row) > 1}
    assert rows[""] == ["code0", "code10", "code30", "code50", "code30-ontop", "code30-scrambled"]
    assert rows["seeds"] == ["1", "1", "2", "2", "2", "1"]
    assert rows["verdict vs code0"][:2] == ["baseline", "within noise"]
    assert rows["held-out bits per byte, code"][:3] == ["3.235", "2.899", "2.719 ± 0.021"]
    assert rows["training tokens per run"] == ["6,029,312"] * 6


def test_a_ladder_names_the_composites_missing_tasks_and_refuses_evaluations_of_different_tasks() -> None:
    """Evaluations made where BIG-bench could not be had leave its tasks out; a ladder says so, and will not compare
    them with evaluations that scored other tasks."""
    rng = np.random.default_rng(0)

    def evaluation(ckpt: str, tasks: list[str]) -> dict:
        scored = {t: {"primary_metric": "p_norm", "per_item": {"p_norm": rng.random(50).tolist()}} for t in tasks}
        composite = {"tasks": tasks, "metric": "p_norm", "description": "test", "unavailable": ["bigbench:navigate"]}
        return {"ckpt": ckpt, "tasks": scored, "composite": composite, "held_out": {"code": {"bpb": 3.0}}}

    rungs = [{"name": "code0", "code_share": 0.0}, {"name": "code30", "code_share": 0.3}]
    runs = {"code0-s0": {"rung": "code0", "seed": 0}, "code30-s0": {"rung": "code30", "seed": 0}}
    training = {name: {"tokens": 1000, "tokens_per_s": 10.0} for name in runs}
    both = ["probe:compare_nl", "probe:compare_code"]
    evals = {name: [evaluation(name, both)] for name in runs}
    result = analyse(rungs, runs, evals, "default", "code0", {}, training)
    assert "Not in it, their source being unavailable: bigbench:navigate." in write_markdown(result)

    evals["code30-s0"] = [evaluation("code30-s0", [*both, "bigbench:navigate"])]
    with pytest.raises(ValueError, match="evaluations of code30-s0 scored other tasks than code0-s0"):
        analyse(rungs, runs, evals, "default", "code0", {}, training)


def _ladder(out: Path, tokens: str, parallel: int = 1) -> Experiment:
    args = argparse.Namespace(
        out=out, mixes=["code0", "code30"], controls=["ontop", "scrambled"], reference="code30", seeds=1,
        model="tiny", tokens=tokens, device="cpu", eval_every=100, last_evals=1, train_args=["--seq-len=512"],
        parallel=parallel,
    )  # fmt: skip
    return Experiment(args, Console(stderr=True))


def test_finished_runs_are_recognised_after_a_move_and_never_overwritten_when_settings_changed(tmp_path: Path) -> None:
    old = _ladder(tmp_path / "a", "500k")
    for run in old.runs:
        (old.runs_dir / run.name).mkdir(parents=True)
        cmd = [
            a if a != str(old.run_tokens(run)) else f"{old.run_tokens(run) / 1000:g}k" for a in old._train_command(run)
        ]
        (old.runs_dir / run.name / "done.json").write_text(json.dumps({"cmd": cmd[1:]}))
    moved = _ladder(tmp_path / "b", "0.5M", parallel=4)  # a GPU shared by more runs changes no run's training
    moved.runs_dir = old.runs_dir  # the same finished runs, under another directory, their tokens spelt otherwise
    assert all(moved._trained(run) for run in moved.runs)

    more = _ladder(tmp_path / "a", "1M")
    with pytest.raises(
        ValueError, match="code0-s0, code30-s0, code30-ontop-s0, code30-scrambled-s0 finished with other"
    ):
        more.train()
    assert all((more.runs_dir / run.name / "done.json").exists() for run in more.runs)  # nothing was deleted

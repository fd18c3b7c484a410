"""The build-changing controls: code without comments and the filter ablations, declared like the other controls."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from rich.console import Console

from dataengine.mix.plan import held_out_hash
from dataengine.shards.reader import read_shard
from pipelines.controls import reference_held_out
from pipelines.experiment import Experiment
from tests.corpus import write_mix
from tests.test_experiment import micro_ladder_command
from tests.test_inspect import build_output


def test_filter_controls_change_only_their_filter_setting_and_share_the_reference_slice(tmp_path: Path) -> None:
    args = argparse.Namespace(
        out=tmp_path, mixes=["code0", "code30"], controls=["code-nocomments", "filters-off", "code-aware-off"],
        reference="code30", seeds=1, model="tiny", tokens="1k", device="cpu", eval_every=100, last_evals=1,
        train_args=[], parallel=1, max_text_epochs=4.0, total_tokens=None, sources=None,
    )  # fmt: skip
    ladder = Experiment(args, Console(stderr=True))
    build_output(tmp_path / "data" / "_reference")
    plan = ladder.plan()
    mixes = {r.name: ladder._rung_mix(r, plan.shard_tokens[r.name]) for r in ladder.rungs}
    assert mixes["code30-filters-off"].pipeline.filters == [] and mixes["code30"].pipeline.filters
    assert mixes["code30-code-aware-off"].pipeline.code_aware is False and mixes["code30"].pipeline.code_aware
    assert {m.total_tokens for n, m in mixes.items() if n != "code0"} == {plan.shard_tokens["code30"]}
    stages = {r.name: [s.name for s in ladder.extra_stages(r)] for r in ladder.rungs}
    assert stages["code30-code-nocomments"] == ["strip_comments", "comments_removed"]
    assert stages["code30-filters-off"] == stages["code30-code-aware-off"] == ["reference_held_out"]
    evaluated = {r.name: ladder.held_out_data(r) for r in ladder.rungs}
    assert evaluated["code30-filters-off"] == ladder.reference and evaluated["code30"] == tmp_path / "data" / "code30"
    ref = tmp_path / "data" / "_reference"
    slice_ = reference_held_out(ref, 0.0)
    for entry in json.loads((ref / "manifest.json").read_text())["held_out"]:
        table = pa.ipc.open_stream(pa.OSFile(str(ref / entry["path"]))).read_all()
        for source, doc_id in zip(table["source"].to_pylist(), table["id"].to_pylist(), strict=True):
            assert slice_.contains(source, doc_id) and held_out_hash(doc_id) < slice_.bounds[source]


REF = "tcode30"
# code-aware-off runs the filters-off path (another pipeline setting, the same tag cache and slice) and would add
# a fifth of this test's time; its mix and stages are checked above
CONTROL_RUNGS = [f"{REF}-code-nocomments", f"{REF}-filters-off"]
FILTER_RUNGS = CONTROL_RUNGS[1:]


@dataclass(frozen=True)
class Ladder:
    """One finished micro experiment: its output directory, the reference mix's YAML and the command's wall time."""

    out: Path
    mix: Path
    wall_s: float

    def json(self, *parts: str) -> Any:
        return json.loads(self.out.joinpath(*parts).read_text())


@pytest.fixture(scope="module")
def ladder(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Ladder:
    """The reference rung and the build-changing controls, built, trained, evaluated and reported once through
    the CLI at the micro ladder test's sizes (one seed; one evaluated checkpoint per run)."""
    root = tmp_path_factory.mktemp("controls")
    shares = {"code": 0.3, "web_en": 0.3, "crawl_en": 0.14, "web_zh": 0.21, "notes_zh": 0.05}
    mix = write_mix(root, corpus, name=REF, shares=shares, held_out_tokens=3000, held_out_min_docs=8)
    out = root / "ladder"
    controls = ",".join(c.split("-", 1)[1] for c in CONTROL_RUNGS)
    cmd = micro_ladder_command([str(mix)], str(mix), controls, out, last_evals=1)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-6000:]
    return Ladder(out, mix, time.perf_counter() - start)


def test_controls_end_to_end_each_rung_in_the_report_with_held_out_bits_per_byte(ladder: Ladder) -> None:
    """Every control is trained, evaluated and reported: bits per byte per source and the composite."""
    result = ladder.json("experiment.json")
    assert [r["name"] for r in result["rungs"]] == [REF, *CONTROL_RUNGS]
    for rung in [REF, *CONTROL_RUNGS]:
        score = result["results"][rung]["composite"]
        assert score["ci95"][0] <= score["mean"] <= score["ci95"][1]
        bpb = result["held_out_bpb"][rung]
        assert set(bpb) >= {"code", "web_en", "crawl_en", "web_zh", "notes_zh"}
        assert all(0 < bpb[s]["mean"] < 20 for s in bpb)
    # the comment-free code fills code's share of the same budget: as many training and shard tokens as the reference
    tokens = {run: t["tokens"] for run, t in result["training"].items()}
    assert tokens[f"{CONTROL_RUNGS[0]}-s0"] == tokens[f"{REF}-s0"] > 0
    totals = {r: ladder.json("data", r, "manifest.json")["totals"]["tokens"] for r in (REF, CONTROL_RUNGS[0])}
    assert totals[REF] == totals[CONTROL_RUNGS[0]]


def test_code_nocomments_build_strips_training_code_and_reports_it(ladder: Ladder) -> None:
    """The build's report counts the code documents stripped of comments; its cleaned documents are the
    reference rung's, reused from the stage cache (the stripping comes after the held-out slice)."""
    report = ladder.json("data", CONTROL_RUNGS[0], "report.json")
    removed = report["comments_removed"]
    stripped = {k: v for k, v in removed.items() if k.startswith("code:python:")}
    assert stripped and sum(v["docs"] for v in stripped.values()) > 0
    assert sum(v["chars_removed"] for v in removed.values()) > 0
    assert report["stage_cache"]["hit"] and report["stage_cache"]["levels"]["cleaned"]["hit"]


def test_filters_off_reuses_the_tags_and_cleans_again_without_filters(ladder: Ladder) -> None:
    """filters-off starts from the ``tagged`` cache and computes ``cleaned`` again; its build's config is the
    reference mix with ``pipeline.filters: []``, and no quality filter rejects a document."""
    ref_report = ladder.json("data", REF, "report.json")
    for rung in FILTER_RUNGS:
        levels = ladder.json("data", rung, "report.json")["stage_cache"]["levels"]
        assert levels["tagged"]["hit"] and not levels["cleaned"]["hit"], (rung, levels)
    off = ladder.json("data", f"{REF}-filters-off", "report.json")
    filter_stages = set(ref_report["stages"]) - set(off["stages"])
    assert filter_stages, "the reference build names its quality filters among its stages"
    rejected = {reason.split(":")[0] for s in off["sources"].values() for reason in s["rejected"]}
    assert not rejected & filter_stages  # no document rejected by a quality filter
    ref_rejected = {reason.split(":")[0] for s in ref_report["sources"].values() for reason in s["rejected"]}
    assert ref_rejected & filter_stages  # ... which the reference build's filters do reject

    args = argparse.Namespace(
        out=ladder.out, mixes=[str(ladder.mix)], controls=[c.split("-", 1)[1] for c in CONTROL_RUNGS],
        reference=str(ladder.mix), seeds=1, model="debug", tokens="4096", device="cpu", eval_every=8, last_evals=1,
        train_args=[], parallel=1, max_text_epochs=4.0, total_tokens=None, sources=None,
    )  # fmt: skip
    experiment = Experiment(args, Console(stderr=True))
    plan = experiment.plan()
    mixes = {r.name: experiment._rung_mix(r, plan.shard_tokens[r.name]) for r in experiment.rungs}
    assert mixes[f"{REF}-filters-off"].pipeline.filters == [] and mixes[REF].pipeline.filters
    for rung, mix in mixes.items():  # the manifests record those configs' hashes: built with them
        assert ladder.json("data", rung, "manifest.json")["config_hash"] == mix.config_hash(), rung


def test_every_rung_is_scored_on_the_reference_builds_held_out_documents(ladder: Ladder) -> None:
    """One held-out slice for the whole ladder: the rungs that choose their own choose the reference build's, the
    filter controls are evaluated on the reference build's and never train on its documents."""
    reference = ladder.json("data", "_reference", "manifest.json")
    ref_slice = [(e["path"], e["sha256"]) for e in reference["held_out"]]
    for rung in (REF, CONTROL_RUNGS[0]):
        assert [(e["path"], e["sha256"]) for e in ladder.json("data", rung, "manifest.json")["held_out"]] == ref_slice
    held_ids = {
        i
        for e in reference["held_out"]
        for i in read_shard(ladder.out / "data" / "_reference" / e["path"])["id"].to_pylist()
    }
    for rung in FILTER_RUNGS:
        shards = ladder.json("data", rung, "manifest.json")["shards"]
        trained = {i for s in shards for i in read_shard(ladder.out / "data" / rung / s["path"])["id"].to_pylist()}
        assert trained and not trained & held_ids, rung
    scored = {}
    for rung in [REF, *CONTROL_RUNGS]:
        (ckpt,) = sorted((ladder.out / "runs" / f"{rung}-s0").glob("ckpt-*.eval.json"))
        held = json.loads(ckpt.read_text())["held_out"]
        scored[rung] = {s: (v["docs"], v["docs_total"], v["bytes"]) for s, v in held.items()}
    assert all(s == scored[REF] for s in scored.values()), scored
    print(f"micro controls ladder: {ladder.wall_s:.0f} s wall")

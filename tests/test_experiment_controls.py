"""The build-changing controls: code without comments and the filter ablations, declared like the other controls."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from dataengine.mix.plan import held_out_hash
from pipelines.controls import reference_held_out
from pipelines.experiment import Experiment
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

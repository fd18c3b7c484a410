"""``python -m pretrain.eval --ckpt runs/x/ckpt.pt [--tasks default|SUITE.yaml|name,name] [--data OUT_DIR] ...``

Scores a checkpoint on a suite (or a list of tasks) by likelihood, prints a table (task, metric, value with its
95% CI, the measured null: mean ± sd of the score with shuffled answer keys) and writes JSON: every task's metrics,
nulls and per-item scores, the suite's composite scores and, with ``--data``, bits per byte on each source's
held-out slice of that build.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from dataengine.atomic import write_json_atomic
from pretrain.eval.scoring import Estimate, composite, evaluate
from pretrain.eval.suites import SUITES_DIR, Suite, load_suite
from pretrain.eval.tasks import load_tasks, unavailable_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a checkpoint written by pretrain.train")
    parser.add_argument(
        "--tasks", default="default", help="a suite (default, or a YAML path) or comma-separated task names"
    )
    parser.add_argument("--n", type=int, help="items per task (default: the suite's, or the task's own)")
    parser.add_argument("--shots", type=int, help="few-shot examples for every task (default: the suite's/task's)")
    parser.add_argument("--seed", type=int, help="item and few-shot seed (default: the suite's, else 0)")
    parser.add_argument("--data", type=Path, help="a build's output dir: adds held-out bits per byte per source")
    parser.add_argument("--out", type=Path, help="results JSON (default: next to the checkpoint, <ckpt>.eval.json)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1...")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (at most)")
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"wrote {report['out']}")
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load the checkpoint and tasks, score, add composites and held-out bpb, write the JSON; returns it."""
    import torch
    from tokenizers import Tokenizer

    from pretrain.model import load_checkpoint  # imported here: the task loaders need no model code

    if args.n is not None and args.n <= 0:
        raise ValueError(f"--n must be positive; got {args.n}")
    suite = _suite_or_none(args.tasks)
    if suite is not None and args.seed is not None:
        suite = suite.model_copy(update={"seed": args.seed})
    seed = suite.seed if suite is not None else (args.seed or 0)
    unavailable: dict[str, str] = {}
    if suite is not None:
        tasks, unavailable = suite.load(args.n)
        shots = suite.shots()
        for line in unavailable_lines(unavailable):
            print(f"warning: {line}", file=sys.stderr)
    else:
        tasks = load_tasks(((name.strip(), args.n) for name in args.tasks.split(",") if name.strip()), seed=seed)
        shots = {}
    if args.shots is not None:
        shots = {task.name: args.shots for task in tasks}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model, ckpt = load_checkpoint(args.ckpt, device)
    tokenizer = Tokenizer.from_str(ckpt["tokenizer"])
    seq_len = int(ckpt["config"]["model"]["seq_len"])
    started = time.perf_counter()
    results = evaluate(
        model,
        tokenizer,
        tasks,
        seq_len,
        shots=shots,
        seed=seed,
        bos_id=ckpt.get("eos_id"),
        device=device,
        batch_size=args.batch_size,
        progress=lambda r: print(f"  {r.task}: {r.n} items, {time.perf_counter() - started:.0f} s", file=sys.stderr),
    )
    out = args.out or args.ckpt.with_suffix(".eval.json")
    about = {t.name: {"description": t.description, "source": t.source} for t in tasks}
    report: dict[str, Any] = {
        "ckpt": str(args.ckpt),
        "step": ckpt.get("step"),
        "suite": suite.name if suite else None,
        "seed": seed,
        "device": str(device),
        "seq_len": seq_len,
        "tasks": {name: r.summary() | about[name] for name, r in results.items()},
        "unavailable": unavailable,
        "composites": {},
        "out": str(out),
    }
    if suite is not None:
        for key, spec in suite.composites.items():
            present = [t for t in spec.tasks if t in results]  # a composite over what could be had, gaps named
            if not present:
                continue
            est = composite(results, present, spec.metric, seed=seed)
            nulls = [results[t].null.get(spec.metric, {}).get("mean") for t in present]
            report["composites"][key] = {
                "null": None if None in nulls else float(sum(nulls) / len(nulls)),
                "tasks": present,
                "unavailable": [t for t in spec.tasks if t not in results],
                "metric": spec.metric,
                "description": spec.description,
                **est.as_dict(),
            }
        if suite.primary in report["composites"]:
            report["composite"] = {"name": suite.primary, **report["composites"][suite.primary]}
    if args.data is not None:
        from pretrain.heldout import held_out_bpb

        report["held_out"] = held_out_bpb(model, args.data, device, seq_len=seq_len)
    report["eval_s"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report)
    return report


def format_table(report: dict[str, Any]) -> str:
    """One row per task and metric, then the composites and held-out bits per byte."""
    rows = [("task", "metric", "value", "95% CI", "null (shuffled keys)")]
    for name, info in report["tasks"].items():
        for metric, est in info["metrics"].items():
            null = info.get("null", {}).get(metric)
            cell = "" if null is None else f"{null['mean']:.4f} ± {null['sd']:.4f}"
            rows.append((name, metric, *_cells(Estimate(**est)), cell))
    for key, comp in report.get("composites", {}).items():
        est = Estimate(comp["value"], comp["lo"], comp["hi"])
        null = comp.get("null")
        rows.append((f"composite:{key}", comp["metric"], *_cells(est), "" if null is None else f"{null:.4f}"))
    for source, info in report.get("held_out", {}).items():
        rows.append((f"held-out:{source}", "bpb", f"{info['bpb']:.4f}", "", ""))
    for name in report.get("unavailable", {}):
        rows.append((name, "(not evaluated: source unavailable)", "", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _cells(est: Estimate) -> tuple[str, str]:
    return f"{est.value:.4f}", f"[{est.lo:.4f}, {est.hi:.4f}]"


def _suite_or_none(value: str) -> Suite | None:
    """A suite when ``value`` names one (or is a YAML path); None for a list of task names."""
    if value.endswith((".yaml", ".yml")) or (SUITES_DIR / f"{value}.yaml").exists():
        return load_suite(value)
    return None


if __name__ == "__main__":
    sys.exit(main())

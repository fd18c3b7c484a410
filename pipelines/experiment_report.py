"""The ladder's statistics and report: what the data says about code share and reasoning, with its noise.

Per run and task, a checkpoint's per-item scores are averaged over the run's last few checkpoints.  A rung's
score is the mean over its seeds; its 95% interval comes from a two-level bootstrap (seeds with replacement,
then items with replacement — items are the same in every run, since the probes are seeded).  A rung is
compared with the baseline by a paired bootstrap: one item resample serves both rungs, seeds are resampled
per rung.  A difference counts only when its interval excludes zero *and* it exceeds twice the seed spread
(the pooled standard deviation of per-seed scores); otherwise the report says it is within noise.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.atomic import write_atomic

BOOTSTRAP = 2000
COMPOSITE = "composite"


def item_scores(evaluation: dict[str, Any], task: str, metric: str) -> np.ndarray:
    """One checkpoint's per-item scores of ``task`` under ``metric``."""
    return np.asarray(evaluation["tasks"][task]["per_item"][metric], dtype=np.float64)


def _run_scores(evals: list[dict[str, Any]], task: str, metric: str) -> np.ndarray:
    """Per-item scores averaged over a run's last checkpoints."""
    return np.mean([item_scores(e, task, metric) for e in evals], axis=0)


def _item_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """``[BOOTSTRAP, n]`` counts of each item in each resample (a resample as weights: one matrix product)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP).astype(np.float64)


def _bootstrap(per_seed: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
    """Resampled means of ``per_seed`` [seeds, items]: items by ``weights`` (shared when pairing), then seeds."""
    seeds, n = per_seed.shape
    w = weights if weights is not None else _item_weights(n, rng)
    item_means = w @ per_seed.T / n  # [draws, seeds]
    pick = rng.integers(0, seeds, size=(len(w), seeds))
    return np.take_along_axis(item_means, pick, axis=1).mean(axis=1)


def analyse(
    rungs: list[dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    evals: dict[str, list[dict[str, Any]]],
    suite: str,
    baseline: str,
    settings: dict[str, Any],
    training: dict[str, dict[str, Any]],
    seed: int = 0,
) -> dict[str, Any]:
    """``experiment.json``: per rung and task the mean, interval, seed spread, and the paired test vs baseline."""
    first = next(iter(evals.values()))[0]
    differ = sorted({run for run, es in evals.items() for e in es if e["tasks"].keys() != first["tasks"].keys()})
    if differ:  # e.g. BIG-bench's files reached some evaluations and not others: the rungs would not compare
        raise ValueError(
            f"evaluations of {', '.join(differ)} scored other tasks than {first['ckpt']}; "
            "re-evaluate them with the same task sources (delete their .eval.json files)"
        )
    composite = first["composite"]  # {"tasks": [...], "metric": ..., "description": ...} fixed by the suite
    tasks = dict(first["tasks"])
    rng = np.random.default_rng(seed)
    by_rung = {r["name"]: sorted(n for n, run in runs.items() if run["rung"] == r["name"]) for r in rungs}

    def per_seed(rung: str, task: str, metric: str) -> np.ndarray:
        return np.stack([_run_scores(evals[run], task, metric) for run in by_rung[rung]])

    def composite_per_seed(rung: str) -> list[np.ndarray]:
        return [per_seed(rung, t, composite["metric"]) for t in composite["tasks"]]

    results: dict[str, dict[str, Any]] = {}
    for rung in by_rung:
        results[rung] = {}
        for task, info in tasks.items():
            metric = info["primary_metric"]
            results[rung][task] = _summary(per_seed(rung, task, metric), metric, rng)
        parts = composite_per_seed(rung)
        results[rung][COMPOSITE] = _composite_summary(parts, composite["metric"], rng)
    comparisons = {
        rung: {
            task: _paired(
                per_seed(rung, task, tasks[task]["primary_metric"]),
                per_seed(baseline, task, tasks[task]["primary_metric"]),
                rng,
            )
            for task in tasks
        }
        | {COMPOSITE: _paired_composite(composite_per_seed(rung), composite_per_seed(baseline), rng)}
        for rung in by_rung
        if rung != baseline
    }
    held_out = {
        rung: {
            key: _spread([e[-1]["held_out"][key]["bpb"] for e in (evals[run] for run in by_rung[rung])])
            for key in first.get("held_out", {})
        }
        for rung in by_rung
    }
    return {
        "settings": settings,
        "suite": suite,
        "composite": composite,
        "baseline": baseline,
        "rungs": rungs,
        "runs": runs,
        "tasks": {t: {k: v for k, v in info.items() if k != "per_item"} for t, info in tasks.items()},
        "results": results,
        "vs_baseline": comparisons,
        "held_out_bpb": held_out,
        "training": training,
        "method": __doc__.strip(),
    }


def _spread(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def _score(seed_means: np.ndarray, draws: np.ndarray, metric: str) -> dict[str, Any]:
    """Mean over seeds, bootstrap 95% interval, seed spread."""
    return {
        "metric": metric,
        "mean": float(seed_means.mean()),
        "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
        "seed_sd": float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0,
        "per_seed": [float(v) for v in seed_means],
    }


def _summary(per_seed: np.ndarray, metric: str, rng: np.random.Generator) -> dict[str, Any]:
    return _score(per_seed.mean(axis=1), _bootstrap(per_seed, rng), metric) | {"items": int(per_seed.shape[1])}


def _composite_summary(parts: list[np.ndarray], metric: str, rng: np.random.Generator) -> dict[str, Any]:
    draws = np.mean([_bootstrap(p, rng) for p in parts], axis=0)
    return _score(np.mean([p.mean(axis=1) for p in parts], axis=0), draws, metric)


def _verdict(diffs: np.ndarray, point: float, spread: float) -> dict[str, Any]:
    low, high = float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))
    beyond_noise = (low > 0 or high < 0) and abs(point) > 2 * spread
    if beyond_noise:
        verdict = "higher than baseline" if point > 0 else "lower than baseline"
    else:
        verdict = "within noise"
    return {"diff": point, "ci95": [low, high], "seed_spread": spread, "verdict": verdict}


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return 0.0
    return float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))


def _paired(rung: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    weights = _item_weights(rung.shape[1], rng)  # one item resample for both rungs: the pairing
    diffs = _bootstrap(rung, rng, weights) - _bootstrap(base, rng, weights)
    return _verdict(diffs, float(rung.mean() - base.mean()), _pooled_sd(rung.mean(axis=1), base.mean(axis=1)))


def _paired_composite(rung: list[np.ndarray], base: list[np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
    diffs, points, spreads_r, spreads_b = [], [], [], []
    for r, b in zip(rung, base, strict=True):
        weights = _item_weights(r.shape[1], rng)
        diffs.append(_bootstrap(r, rng, weights) - _bootstrap(b, rng, weights))
        points.append(r.mean() - b.mean())
        spreads_r.append(r.mean(axis=1))
        spreads_b.append(b.mean(axis=1))
    spread = _pooled_sd(np.mean(spreads_r, axis=0), np.mean(spreads_b, axis=0))
    return _verdict(np.mean(diffs, axis=0), float(np.mean(points)), spread)


# -- rendering -------------------------------------------------------------------------------------------------
def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_reasoning(result: dict[str, Any]) -> bytes:
    """Composite reasoning score vs code share, with 95% intervals; controls as separate markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ladder = [r for r in result["rungs"] if r["control"] is None]
    controls = [r for r in result["rungs"] if r["control"] is not None]
    for group, style, label in ((ladder, "o-", "ladder (fixed total tokens)"), (controls, "s", None)):
        for r in group if label is None else [None]:
            rows = [r] if r is not None else group
            xs = [100 * x["code_share"] for x in rows]
            s = [result["results"][x["name"]][COMPOSITE] for x in rows]
            ys = [v["mean"] for v in s]
            err = [[v["mean"] - v["ci95"][0] for v in s], [v["ci95"][1] - v["mean"] for v in s]]
            ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=4, label=label or r["name"])
    ax.set_xlabel("code share of training tokens (%)")
    ax.set_ylabel(f"composite: {result['composite']['metric']}")
    ax.set_title("reasoning vs code share (mean over seeds, 95% CI)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def plot_bpb(result: dict[str, Any]) -> bytes:
    """Held-out bits per byte per domain vs code share, with seed standard deviations: the ladder as lines, each
    control as its own marker in the domain's colour, nudged right of its code share so the bars stay apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ladder = [r for r in result["rungs"] if r["control"] is None]
    controls = [r for r in result["rungs"] if r["control"] is not None]
    keys = sorted({k for r in ladder for k in result["held_out_bpb"][r["name"]] if "/" not in k})
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key in keys:
        xs = [100 * r["code_share"] for r in ladder]
        vals = [result["held_out_bpb"][r["name"]][key] for r in ladder]
        line = ax.errorbar(xs, [v["mean"] for v in vals], yerr=[v["sd"] for v in vals], fmt="o-", capsize=4, label=key)
        for i, control in enumerate(controls):
            v = result["held_out_bpb"][control["name"]][key]
            x = 100 * control["code_share"] + 1.5 * (i + 1)
            marker = "s^Dv"[i % 4]
            label = control["name"] if key == keys[0] else None
            ax.errorbar(x, v["mean"], yerr=v["sd"], fmt=marker, mfc="none", color=line[0].get_color(), capsize=3)
            if label:  # one grey legend entry per control, whatever the domain
                ax.plot([], [], marker, mfc="none", color="grey", label=label)
    ax.set_xlabel("code share of training tokens (%)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title("bits per byte per domain vs code share (mean ± seed sd)")
    ax.legend()
    ax.grid(alpha=0.3)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _fmt(s: dict[str, Any]) -> str:
    return f"{s['mean']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}] (sd {s['seed_sd']:.4f})"


def write_html(result: dict[str, Any], out: Path) -> None:
    """``report.html`` (self-contained) plus the two plots as PNG files beside it."""
    pngs = {"reasoning_vs_code.png": plot_reasoning(result), "bpb_vs_code.png": plot_bpb(result)}
    for name, data in pngs.items():
        write_atomic(out / name, data)
    rungs = [r["name"] for r in result["rungs"]]
    tasks = [COMPOSITE, *result["tasks"]]
    head = "".join(f"<th>{html.escape(r)}</th>" for r in rungs)
    rows = []
    for task in tasks:
        info = result["tasks"].get(task, {})
        chance = info.get("chance")
        label = f"{task}<br><small>{html.escape(str(result['results'][rungs[0]][task]['metric']))}"
        label += f"; chance {chance:.3f}</small>" if chance is not None else "</small>"
        cells = []
        for rung in rungs:
            cell = _fmt(result["results"][rung][task])
            cmp = result["vs_baseline"].get(rung, {}).get(task)
            if cmp:
                cell += f"<br><small>Δ {cmp['diff']:+.4f} [{cmp['ci95'][0]:+.4f}, {cmp['ci95'][1]:+.4f}]: "
                cell += f"<b>{cmp['verdict']}</b></small>"
            cells.append(f"<td>{cell}</td>")
        rows.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    bpb_rows = "".join(
        f"<tr><th>{html.escape(k)}</th>"
        + "".join(
            f"<td>{result['held_out_bpb'][r][k]['mean']:.4f} ± {result['held_out_bpb'][r][k]['sd']:.4f}</td>"
            for r in rungs
        )
        + "</tr>"
        for k in sorted(result["held_out_bpb"][rungs[0]])
    )
    imgs = "".join(
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in pngs.items()
    )
    comp = result["composite"]
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>mix ladder</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;font-size:13px;vertical-align:top}}img{{max-width:48%}}</style></head><body>
<h1>Mix ladder: reasoning vs code share</h1>
<p>Settings: {html.escape(str(result["settings"]))}</p>
<p>Composite (fixed before the ladder ran, by suite <code>{html.escape(result["suite"])}</code>):
{html.escape(comp.get("description", ""))} — metric <code>{html.escape(comp["metric"])}</code> over
{html.escape(", ".join(comp["tasks"]))}.{html.escape(_unavailable_note(comp))}</p>
{imgs}
<h2>Scores (mean over seeds [95% CI] (seed sd)); Δ vs {html.escape(result["baseline"])}</h2>
<table><tr><th>task</th>{head}</tr>{"".join(rows)}</table>
<h2>Held-out bits per byte (mean ± seed sd)</h2><table><tr><th>slice</th>{head}</tr>{bpb_rows}</table>
<h2>Method</h2><pre>{html.escape(result["method"])}</pre></body></html>"""
    write_atomic(out / "report.html", doc)


def write_markdown(result: dict[str, Any]) -> str:
    """The headline table of ``summary.md``, ready to paste into a paper or a README: per rung the seeds, the
    training tokens, the composite score with its paired comparison and verdict, HumanEval and held-out bits per
    byte (seed mean ± sd), and training throughput."""
    rungs = [r["name"] for r in result["rungs"]]
    base = result["baseline"]
    comp = result["composite"]

    def seeds(rung: str) -> int:
        return sum(run["rung"] == rung for run in result["runs"].values())

    def composite(rung: str) -> str:
        s = result["results"][rung][COMPOSITE]
        cell = f"{s['mean']:.4f}" + (f" ± {s['seed_sd']:.4f}" if len(s["per_seed"]) > 1 else "")
        cmp = result["vs_baseline"].get(rung, {}).get(COMPOSITE)
        return cell if cmp is None else f"{cell} (Δ {cmp['diff']:+.4f} [{cmp['ci95'][0]:+.4f}, {cmp['ci95'][1]:+.4f}])"

    def verdict(rung: str) -> str:
        cmp = result["vs_baseline"].get(rung, {}).get(COMPOSITE)
        return "baseline" if cmp is None else cmp["verdict"]

    def mean_sd(s: dict[str, Any]) -> str:
        """Seed mean ± seed sd; one seed has no spread to show."""
        n, sd = (len(s["per_seed"]), s["seed_sd"]) if "per_seed" in s else (s["n"], s["sd"])
        return f"{s['mean']:.3f}" + (f" ± {sd:.3f}" if n > 1 else "")

    def trained_tokens(rung: str) -> str:
        tokens = [t["tokens"] for name, t in result["training"].items() if result["runs"][name]["rung"] == rung]
        return f"{np.mean(tokens):,.0f}" if tokens else "—"

    def throughput(rung: str) -> str:
        rates = [t["tokens_per_s"] for name, t in result["training"].items() if result["runs"][name]["rung"] == rung]
        return f"{np.mean(rates):,.0f}" if rates else "—"

    rows = [
        ("code share", [f"{100 * r['code_share']:.0f}%" for r in result["rungs"]]),
        ("seeds", [str(seeds(r)) for r in rungs]),
        ("training tokens per run", [trained_tokens(r) for r in rungs]),
        (f"{COMPOSITE} `{comp['metric']}` (Δ vs {base} [95% CI])", [composite(r) for r in rungs]),
        (f"verdict vs {base}", [verdict(r) for r in rungs]),
    ]
    if "humaneval" in result["tasks"]:
        rows.append(("HumanEval bits per byte", [mean_sd(result["results"][r]["humaneval"]) for r in rungs]))
    for key in sorted(k for k in result["held_out_bpb"][rungs[0]] if "/" not in k):
        rows.append((f"held-out bits per byte, {key}", [mean_sd(result["held_out_bpb"][r][key]) for r in rungs]))
    rows.append(("training tokens/s (mean over runs)", [throughput(r) for r in rungs]))
    lines = [f"| | {' | '.join(rungs)} |", "|---" * (len(rungs) + 1) + "|"]
    lines += [f"| {label} | {' | '.join(cells)} |" for label, cells in rows]
    note = (
        f"Composite: {comp.get('description', '')} ({comp['metric']}, {len(comp['tasks'])} tasks; 0 = chance)."
        f"{_unavailable_note(comp)} "
        "Scores are means over seeds ± seed sd; a difference is called only when its paired-bootstrap interval "
        "excludes zero and it exceeds twice the seed spread."
    )
    return "\n".join([*lines, "", note]) + "\n"


def _unavailable_note(composite: dict[str, Any]) -> str:
    """The suite's composite tasks that no evaluation could score (their source unavailable), said in the report."""
    missing = composite.get("unavailable", [])
    return f" Not in it, their source being unavailable: {', '.join(missing)}." if missing else ""

"""The ladder's statistics and report: what the data says about code share and reasoning, with its noise.

Per run and task, a checkpoint's per-item scores are averaged over the run's last few checkpoints.  The primary
metric of a multiple-choice task is its calibrated margin (``pretrain.eval.scoring``); each score is shown beside
its measured nulls, never beside 1/k: the same items with shuffled answer keys (averaged over the rung's runs), and
the untrained model of the same size (each seed's initialisation, zero steps; one evaluation per seed, shared by
every rung).  The composite is the pre-registered one (``pipelines.preregistration``: the tasks a pilot found
measurable, fixed before the ladder ran), or the suite's own when the ladder ran with ``--no-preregistration``,
which the report says.

Seeds are paired across rungs: seed index s trains every rung from the same initialisation and data-order seed.
A rung is compared with the baseline on the seeds both ran, by a hierarchical paired bootstrap: every draw
resamples seed indices and items jointly (the same seeds and the same items for both rungs and, in a composite, the
same seeds for every task), and averages the per-seed, per-item differences.  Its two-sided p-value is twice the
smaller tail of the drawn differences beyond zero; the per-task p-values of a comparison are Holm-corrected across
tasks (the composite, fixed before the ladder ran, is the one primary test and is not).  A difference is called
("higher/lower than baseline") only when at least two seeds are paired and its (corrected) p-value is below 0.05;
one seed never gives a verdict, since item noise alone cannot speak for a different training run.  The minimum
detectable effect of a comparison is (z(0.975) + z(0.8)) times its bootstrap standard error: the difference this run
(its seeds and items) would detect four times in five.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.atomic import write_atomic
from pretrain.heldout import WITH_CODE

BOOTSTRAP = 2000
COMPOSITE = "composite"
ALPHA = 0.05
MDE_Z = 1.959964 + 0.841621  # two-sided 5% test, 80% power


def item_scores(evaluation: dict[str, Any], task: str, metric: str) -> np.ndarray:
    """One checkpoint's per-item scores of ``task`` under ``metric``."""
    return np.asarray(evaluation["tasks"][task]["per_item"][metric], dtype=np.float64)


def _run_scores(evals: list[dict[str, Any]], task: str, metric: str) -> np.ndarray:
    """Per-item scores averaged over a run's last checkpoints."""
    return np.mean([item_scores(e, task, metric) for e in evals], axis=0)


def _item_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """``[BOOTSTRAP, n]`` counts of each item in each resample (a resample as weights: one matrix product)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP).astype(np.float64)


def _seed_picks(seeds: int, rng: np.random.Generator) -> np.ndarray:
    """``[BOOTSTRAP, seeds]`` seed indices drawn with replacement."""
    return rng.integers(0, seeds, size=(BOOTSTRAP, seeds))


def hierarchical_bootstrap(
    per_seed: list[np.ndarray], rng: np.random.Generator, picks: np.ndarray | None = None
) -> np.ndarray:
    """Resampled means of an (unweighted) average over tasks of ``[seeds, items]`` score arrays: every draw picks
    seeds with replacement, the same for every task (``picks`` given: shared with another call), then each task's
    items with replacement.  Of per-seed differences between two rungs, it is the paired bootstrap."""
    seeds = per_seed[0].shape[0]
    if any(part.shape[0] != seeds for part in per_seed):
        raise ValueError("every task of a bootstrap needs the same seeds")
    pick = _seed_picks(seeds, rng) if picks is None else picks
    draws = np.zeros(len(pick))
    for part in per_seed:
        item_means = _item_weights(part.shape[1], rng) @ part.T / part.shape[1]  # [draws, seeds]
        draws += np.take_along_axis(item_means, pick, axis=1).mean(axis=1)
    return draws / len(per_seed)


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error across the tests given)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    adjusted, running = {}, 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p_values[key]))
        adjusted[key] = running
    return adjusted


def paired_test(rung: list[np.ndarray], base: list[np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
    """Paired comparison of two rungs on the same seed indices (rows) and items: mean difference, 95% interval,
    two-sided bootstrap p-value, standard error and minimum detectable effect."""
    diffs = [r - b for r, b in zip(rung, base, strict=True)]
    draws = hierarchical_bootstrap(diffs, rng)
    point = float(np.mean([d.mean() for d in diffs]))
    tail = min(np.mean(draws <= 0), np.mean(draws >= 0))
    se = float(draws.std(ddof=1))
    return {
        "diff": point,
        "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
        "p": float(min(1.0, max(2 * tail, 1 / BOOTSTRAP))),
        "se": se,
        "mde": MDE_Z * se,
        "paired_seeds": int(rung[0].shape[0]),
    }


def _verdict(test: dict[str, Any], p: float) -> str:
    if test["paired_seeds"] < 2:
        return "one seed: no verdict"
    if p >= ALPHA:
        return "within noise"
    return "higher than baseline" if test["diff"] > 0 else "lower than baseline"


def analyse(
    rungs: list[dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    evals: dict[str, list[dict[str, Any]]],
    suite: str,
    baseline: str,
    settings: dict[str, Any],
    training: dict[str, dict[str, Any]],
    repetition: dict[str, dict[str, float]] | None = None,
    seed: int = 0,
    composite: dict[str, Any] | None = None,
    untrained: list[list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """``experiment.json``: per rung and task the mean, interval, standard error, seed spread and null; the paired
    tests vs the baseline; the epochs each rung's training saw of each source (``repetition``).  ``composite``
    (tasks, metric, description) replaces the suite's (a pre-registration); ``untrained`` holds each seed's
    evaluations of its untrained model, whose per-task means are reported as a second null."""
    first = next(iter(evals.values()))[0]
    differ = sorted({run for run, es in evals.items() for e in es if e["tasks"].keys() != first["tasks"].keys()})
    if differ:  # e.g. BIG-bench's files reached some evaluations and not others: the rungs would not compare
        raise ValueError(
            f"evaluations of {', '.join(differ)} scored other tasks than {first['ckpt']}; "
            "re-evaluate them with the same task sources (delete their .eval.json files)"
        )
    composite = composite or first["composite"]  # {"tasks": [...], "metric": ..., "description": ...}
    tasks = dict(first["tasks"])
    unscored = [t for t in composite["tasks"] if t not in tasks]
    if unscored:
        raise ValueError(f"the composite's tasks {', '.join(unscored)} were not scored by the evaluations")
    rng = np.random.default_rng(seed)
    by_rung = {r["name"]: {run["seed"]: n for n, run in runs.items() if run["rung"] == r["name"]} for r in rungs}

    def per_seed(rung: str, task: str, metric: str, seeds: list[int] | None = None) -> np.ndarray:
        chosen = sorted(by_rung[rung]) if seeds is None else seeds
        return np.stack([_run_scores(evals[by_rung[rung][s]], task, metric) for s in chosen])

    def null_of(rung: str, task: str, metric: str) -> float | None:
        nulls = [e["tasks"][task].get("null", {}).get(metric) for n in by_rung[rung].values() for e in evals[n]]
        return None if not nulls or None in nulls else float(np.mean([x["mean"] for x in nulls]))

    def summary(rung: str, names: list[str], metric: str) -> dict[str, Any]:
        parts = [per_seed(rung, t, metric) for t in names]
        seed_means = np.mean([p.mean(axis=1) for p in parts], axis=0)
        draws = hierarchical_bootstrap(parts, rng)
        nulls = [null_of(rung, t, metric) for t in names]
        return {
            "metric": metric,
            "mean": float(seed_means.mean()),
            "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
            "se": float(draws.std(ddof=1)),
            "seed_sd": float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0,
            "per_seed": [float(v) for v in seed_means],
            "null": None if None in nulls else float(np.mean(nulls)),
            "items": int(sum(p.shape[1] for p in parts)),
        }

    results = {
        rung: {t: summary(rung, [t], info["primary_metric"]) for t, info in tasks.items()}
        | {COMPOSITE: summary(rung, composite["tasks"], composite["metric"])}
        for rung in by_rung
    }
    comparisons: dict[str, dict[str, Any]] = {}
    for rung in by_rung:
        if rung == baseline:
            continue
        paired = sorted(set(by_rung[rung]) & set(by_rung[baseline]))
        if not paired:
            continue  # no seed index in common: nothing to pair
        tests = {
            t: paired_test([per_seed(rung, t, m, paired)], [per_seed(baseline, t, m, paired)], rng)
            for t, m in ((t, info["primary_metric"]) for t, info in tasks.items())
        }
        for t, p_holm in holm({t: test["p"] for t, test in tests.items()}).items():
            tests[t] |= {"p_holm": p_holm, "verdict": _verdict(tests[t], p_holm)}
        metric = composite["metric"]
        primary = paired_test(
            [per_seed(rung, t, metric, paired) for t in composite["tasks"]],
            [per_seed(baseline, t, metric, paired) for t in composite["tasks"]],
            rng,
        )
        comparisons[rung] = tests | {COMPOSITE: primary | {"verdict": _verdict(primary, primary["p"])}}
    held_out = {
        rung: {
            key: _held_out_spread([evals[run][-1]["held_out"][key] for run in by_rung[rung].values()])
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
        "repetition": repetition or {},
        "held_out_bpb": held_out,
        "untrained": _untrained_scores(untrained or [], tasks, composite),
        "training": training,
        "method": __doc__.strip(),
    }


def _untrained_scores(
    untrained: list[list[dict[str, Any]]], tasks: dict[str, Any], composite: dict[str, Any]
) -> dict[str, float]:
    """Per task (primary metric) and for the composite, the untrained models' mean score over seeds and items."""
    if not untrained:
        return {}

    def mean(task: str, metric: str) -> float:
        return float(np.mean([_run_scores(evals, task, metric).mean() for evals in untrained]))

    scores = {t: mean(t, info["primary_metric"]) for t, info in tasks.items()}
    scores[COMPOSITE] = float(np.mean([mean(t, composite["metric"]) for t in composite["tasks"]]))
    return scores


def _spread(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def _held_out_spread(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Held-out bits per byte over a rung's runs (mean, seed sd), with the documents scored and their bootstrap
    95% interval over documents (averaged over runs): how much the slice itself can tell apart."""
    out: dict[str, Any] = _spread([e["bpb"] for e in entries])
    cis = [e["bpb_ci95"] for e in entries if e.get("bpb_ci95")]
    if cis:
        out["doc_ci95"] = [float(np.mean([c[0] for c in cis])), float(np.mean([c[1] for c in cis]))]
    if "docs" in entries[0]:
        out["docs"] = int(entries[0]["docs"])
    return out


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
        label = f"{task}<br><small>{html.escape(str(result['results'][rungs[0]][task]['metric']))}</small>"
        cells = []
        for rung in rungs:
            score = result["results"][rung][task]
            cell = _fmt(score)
            if score.get("null") is not None:
                cell += f"<br><small>null {score['null']:.4f}</small>"
            if task in result.get("untrained", {}):
                cell += f"<br><small>untrained {result['untrained'][task]:.4f}</small>"
            cmp = result["vs_baseline"].get(rung, {}).get(task)
            if cmp:
                cell += f"<br><small>Δ {cmp['diff']:+.4f} [{cmp['ci95'][0]:+.4f}, {cmp['ci95'][1]:+.4f}]"
                p = cmp.get("p_holm", cmp.get("p"))
                cell += f", p {p:.3g}, MDE {cmp['mde']:.4f}" if p is not None and "mde" in cmp else ""
                cell += f": <b>{cmp['verdict']}</b></small>"
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
    sources = sorted({src for r in rungs for src in result.get("repetition", {}).get(r, {})})
    epoch_rows = "".join(
        f"<tr><th>{html.escape(src)}</th>" + "".join(f"<td>{_epochs(result, r, src)}</td>" for r in rungs) + "</tr>"
        for src in sources
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
<p>Composite (suite <code>{html.escape(result["suite"])}</code>):
{html.escape(comp.get("description", ""))} — metric <code>{html.escape(comp["metric"])}</code> over
{html.escape(", ".join(comp["tasks"]))}.{html.escape(_unavailable_note(comp))}
{html.escape(preregistration_note(result.get("settings", {})))}</p>
{imgs}
<h2>Scores (mean over seeds [95% CI] (seed sd), measured null); Δ vs {html.escape(result["baseline"])}
(paired seeds and items; p Holm-corrected across tasks, except the composite's)</h2>
<table><tr><th>task</th>{head}</tr>{"".join(rows)}</table>
<h2>Held-out bits per byte (mean ± seed sd)</h2><table><tr><th>slice</th>{head}</tr>{bpb_rows}</table>
<h2>Epochs of each source seen in training</h2><table><tr><th>source</th>{head}</tr>{epoch_rows}</table>
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

    def null(rung: str) -> str:
        value = result["results"][rung][COMPOSITE].get("null")
        return "—" if value is None else f"{value:.4f}"

    def verdict(rung: str) -> str:
        cmp = result["vs_baseline"].get(rung, {}).get(COMPOSITE)
        if cmp is None:
            return "baseline" if rung == base else "no seed paired"
        return cmp["verdict"] + (f" (p {cmp['p']:.3g})" if "p" in cmp else "")

    def mde(rung: str) -> str:
        cmp = result["vs_baseline"].get(rung, {}).get(COMPOSITE)
        return "—" if cmp is None or "mde" not in cmp else f"{cmp['mde']:.4f} ({cmp['paired_seeds']} seeds)"

    def mean_sd(s: dict[str, Any]) -> str:
        """Seed mean ± seed sd; one seed has no spread to show."""
        n, sd = (len(s["per_seed"]), s["seed_sd"]) if "per_seed" in s else (s["n"], s["sd"])
        return f"{s['mean']:.3f}" + (f" ± {sd:.3f}" if n > 1 else "")

    def held_out_cell(s: dict[str, Any]) -> str:
        ci = s.get("doc_ci95")
        return mean_sd(s) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

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
    ]
    for src in sorted({src for r in rungs for src in result.get("repetition", {}).get(r, {})}):
        rows.append((f"epochs of {src} in training", [_epochs(result, r, src) for r in rungs]))
    rows += [
        (f"{COMPOSITE} `{comp['metric']}` (Δ vs {base} [95% CI])", [composite(r) for r in rungs]),
        (f"{COMPOSITE} null (shuffled answer keys)", [null(r) for r in rungs]),
    ]
    if COMPOSITE in result.get("untrained", {}):
        untrained = f"{result['untrained'][COMPOSITE]:.4f}"
        rows.append((f"{COMPOSITE} null (untrained model, same init)", [untrained] * len(rungs)))
    rows += [
        (f"verdict vs {base}", [verdict(r) for r in rungs]),
    ]
    if any("mde" in c.get(COMPOSITE, {}) for c in result["vs_baseline"].values()):
        rows.append(("minimum detectable effect (80% power)", [mde(r) for r in rungs]))
    if "humaneval" in result["tasks"]:
        rows.append(("HumanEval bits per byte", [mean_sd(result["results"][r]["humaneval"]) for r in rungs]))
    for key in sorted(k for k in result["held_out_bpb"][rungs[0]] if "/" not in k or k.endswith(f"/{WITH_CODE}")):
        docs = result["held_out_bpb"][rungs[0]][key].get("docs")
        label = f"held-out bits per byte, {key}" + (f" ({docs} docs; [95% CI over documents])" if docs else "")
        rows.append((label, [held_out_cell(result["held_out_bpb"][r][key]) for r in rungs]))
    rows.append(("training tokens/s (mean over runs)", [throughput(r) for r in rungs]))
    lines = [f"| | {' | '.join(rungs)} |", "|---" * (len(rungs) + 1) + "|"]
    lines += [f"| {label} | {' | '.join(cells)} |" for label, cells in rows]
    note = (
        f"Composite: {comp.get('description', '')} ({comp['metric']}, {len(comp['tasks'])} tasks)."
        f"{_unavailable_note(comp)} {preregistration_note(result.get('settings', {}))} "
        "Scores are means over seeds ± seed sd, beside their measured null. A difference is called only when at "
        "least two seeds are paired with the baseline's and its hierarchical paired bootstrap (seeds and items "
        "resampled jointly) gives p < 0.05; per-task verdicts (experiment.json, report.html) are Holm-corrected."
    )
    return "\n".join([*lines, "", note, "", *_task_table(result)]) + "\n"


def _task_table(result: dict[str, Any]) -> list[str]:
    """Per task: its primary metric's null and the baseline's score, then each rung's paired difference from the
    baseline with its minimum detectable effect and Holm-corrected verdict (where the evaluations carry them)."""
    base = result["baseline"]
    others = [r["name"] for r in result["rungs"] if r["name"] in result["vs_baseline"]]
    if not others or not all("mde" in result["vs_baseline"][r].get(COMPOSITE, {}) for r in others):
        return []
    untrained = result.get("untrained", {})
    lines = [
        f"| task (metric) | null: shuffled keys | null: untrained | {base} | "
        f"{' | '.join(f'{r}: Δ (MDE), verdict' for r in others)} |",
        "|---" * (len(others) + 4) + "|",
    ]
    for task in result["tasks"]:
        score = result["results"][base][task]
        null = "—" if score.get("null") is None else f"{score['null']:.4f}"
        null += " | " + ("—" if task not in untrained else f"{untrained[task]:.4f}")
        cells = []
        for rung in others:
            cmp = result["vs_baseline"][rung][task]
            p = cmp.get("p_holm", cmp["p"])
            cells.append(f"{cmp['diff']:+.4f} ({cmp['mde']:.4f}), {cmp['verdict']} (p {p:.2g})")
        lines.append(f"| {task} ({score['metric']}) | {null} | {score['mean']:.4f} | {' | '.join(cells)} |")
    return lines


def _epochs(result: dict[str, Any], rung: str, source: str) -> str:
    value = result.get("repetition", {}).get(rung, {}).get(source)
    return "—" if value is None else f"{value:.2f}"


def preregistration_note(settings: dict[str, Any]) -> str:
    """Where the composite came from: the pilot that fixed it before the ladder ran, or no pre-registration (nothing
    for a ladder reported before pre-registrations existed)."""
    if "preregistration" not in settings:
        return ""
    prereg = settings["preregistration"]
    if prereg is None:
        return (
            "No pre-registration (--no-preregistration): the composite is the suite's own, not fixed by a pilot, "
            "so its verdict is exploratory."
        )
    pilot = prereg["pilot"]
    return (
        f"Pre-registered {prereg['date']} by a pilot ({', '.join(pilot['mixes'])}, model {pilot['model']}, "
        f"{pilot['tokens']} tokens, {pilot['seeds']} seeds): {prereg['decision_rule']}"
    )


def _unavailable_note(composite: dict[str, Any]) -> str:
    """The suite's composite tasks that no evaluation could score (their source unavailable), said in the report."""
    missing = composite.get("unavailable", [])
    return f" Not in it, their source being unavailable: {', '.join(missing)}." if missing else ""

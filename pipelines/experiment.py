"""The mix ladder: does more code in pretraining make a model reason better?

``python -m pipelines.experiment --mixes code0,code10,code30,code50 --seeds 3 --model tiny --tokens 50M``

1. build: one output per rung, all with one tokenizer (trained once, by the reference mix), each sized so that
   every text source is seen the same number of epochs in every rung's training (``pipelines.experiment_plan``:
   a rung with less text takes a smaller unique sample of it, never more passes over it); a ladder that would see
   its text more than ``--max-text-epochs`` times is refused, saying how many unique text tokens it needs.  The
   mix-independent stages are shared through a stage cache.  Controls: ``ontop`` (the reference rung's code
   share added on top of the code-free rung's text: it trains ``--tokens / (1 - code share)`` tokens, as many of
   them text as the ladder's runs), ``textonly`` (its compute-matched twin: as many tokens as ``ontop``, all text,
   so that "code's cost is displaced text" is tested, not assumed) and ``scrambled`` (the reference rung with the
   lines of every code document shuffled: the same code tokens, no structure), ``code-nocomments`` (the reference
   rung's code without comments and docstrings, same token budget) and the filter controls ``filters-off`` and
   ``code-aware-off`` (the reference rung built with ``pipeline.filters: []`` or ``pipeline.code_aware: false``
   from the same tag cache, evaluated on the reference build's held-out slice); see ``pipelines.controls``;
2. train: ``python -m pretrain.train`` for every (rung, seed), ``--parallel`` of them at once (small models
   share one GPU well); seed index s gives every rung the same initialisation and data-order seed (paired);
3. eval: ``python -m pretrain.eval`` on the last few checkpoints of every run (their scores are averaged);
4. report: ``experiment.json`` and ``report.html`` with plots (see ``pipelines.experiment_report``), with the
   epochs each rung saw of each source, each task's nulls (shuffled answer keys; the untrained model of each seed,
   its initialisation saved at step 0 and evaluated once) and the pre-registered composite's paired test.

``--pilot`` first: the same phases for ``--pilot-mixes`` (code0 and code50) under ``OUT/pilot``, then the
pre-registration ``OUT/preregistration.json`` (``pipelines.preregistration``: the tasks measurable at this size,
the metric, model, tokens, seeds, decision rule and date).  The ladder refuses to run without one, unless
``--no-preregistration`` (its report then says the composite was not fixed in advance).

Every phase skips what is already complete, so an interrupted experiment continues where it stopped and the
phases can run on different machines (build on a CPU box, train and evaluate on a GPU one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pipelines.experiment_plan import CODE, RepetitionPlan, RungSize, plan_repetition
from pipelines.preregistration import PILOT_MIXES, PREREGISTRATION, composite_of, preregistration, read_preregistration
from pretrain.train import parse_tokens

PHASES = ("build", "train", "eval", "report")
UNTRAINED = "untrained"  # runs/untrained-s<seed>: each seed's initialised model, zero steps
PIPELINE_CONTROLS: dict[str, dict[str, Any]] = {  # control -> the pipeline settings its build changes
    "filters-off": {"filters": []},
    "code-aware-off": {"code_aware": False},
}
CONTROLS = ("ontop", "textonly", "scrambled", "code-nocomments", *PIPELINE_CONTROLS)


@dataclass(frozen=True)
class Rung:
    """One point of the ladder: a mix preset, its code share, the control it is (if any), and its training tokens
    as a multiple of ``--tokens`` (``scale``; its shards are scaled alike, so its text epochs stay the ladder's)."""

    name: str
    mix: str
    code_share: float
    control: str | None = None
    scale: float = 1.0

    def shares(self) -> dict[str, float]:
        """The token shares its build mixes: the mix's own; the text-only twin's without code, renormalised."""
        from dataengine.config import load_mix

        shares = load_mix(self.mix).shares
        if self.control == "textonly":
            text = 1.0 - shares.get(CODE, 0.0)
            return {s: v / text for s, v in shares.items() if s != CODE}
        return dict(shares)


@dataclass(frozen=True)
class Run:
    rung: Rung
    seed: int

    @property
    def name(self) -> str:
        return f"{self.rung.name}-s{self.seed}"


def plan_rungs(mixes: list[str], controls: list[str], reference: str) -> list[Rung]:
    """The ladder's rungs, then the controls (built around the reference mix)."""
    from dataengine.config import load_mix

    loaded = {m: load_mix(m) for m in [*mixes, reference]}
    rungs = [Rung(loaded[m].name, m, loaded[m].shares.get(CODE, 0.0)) for m in mixes]
    ref = loaded[reference]
    code = ref.shares.get(CODE, 0.0)
    for control in controls:
        if control not in CONTROLS:
            raise ValueError(f"unknown control {control!r}; known: {', '.join(CONTROLS)}")
        if control in ("ontop", "textonly") and not 0 < code < 1:
            raise ValueError(f"the {control} control needs a reference mix with some code and some text")
        scale = 1.0 / (1.0 - code) if control in ("ontop", "textonly") else 1.0
        rungs.append(Rung(f"{ref.name}-{control}", reference, 0.0 if control == "textonly" else code, control, scale))
    if len({r.name for r in rungs}) != len(rungs):
        raise ValueError("two rungs share a mix name; give each mix its own name")
    return rungs


class Experiment:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args, self.console = args, console
        self.pilot: bool = getattr(args, "pilot", False)
        self.root: Path = args.out / "pilot" if self.pilot else args.out
        self.data, self.runs_dir = self.root / "data", self.root / "runs"
        self.reference = args.out / "data" / "_reference"  # the pilot's and the ladder's: one tokenizer
        mixes, controls = (list(args.pilot_mixes), []) if self.pilot else (args.mixes, args.controls)
        self.rungs = plan_rungs(mixes, controls, args.reference)
        self.runs = [Run(r, s) for s in range(args.seeds) for r in self.rungs]  # seed-major: every rung early
        self.untrained = [] if self.pilot else [self.runs_dir / f"{UNTRAINED}-s{s}" for s in range(args.seeds)]

    # -- build ------------------------------------------------------------------------------------------------
    def build(self) -> None:
        """Reference build first (tokenizer + available tokens), then every rung at its planned size."""
        from dataengine.config import load_mix
        from dataengine.runtime import ray_session
        from pipelines.build import Build, resolve_sources

        ref_mix = load_mix(self.args.reference)
        sources = resolve_sources(self.args.sources or ref_mix.sources)
        cache = self.args.out / "stages"  # shared by the pilot and the ladder
        with ray_session(self.args.workers, self.args.ray_address, self.args.object_store_mb) as cpus:
            ref_out = self.reference
            if not (ref_out / "manifest.json").exists():
                self.console.rule(f"reference build ({ref_mix.name}): tokenizer and token counts")
                Build(ref_mix, sources, ref_out, cpus, None, self.console, cache, resume=True).run()
            plan = self.plan()
            self.console.print(f"shard tokens per rung: {plan.shard_tokens}")
            self.console.print(f"epochs per source in training: {_rounded(plan.epochs)}")
            tokenizer = ref_out / "tokenizer.json"
            for rung in self.rungs:
                mix = self._rung_mix(rung, plan.shard_tokens[rung.name])
                out = self.data / rung.name
                if (out / "manifest.json").exists() and _manifest(out)["config_hash"] == mix.config_hash():
                    self.console.print(f"[green]✓[/] {rung.name}: built already")
                    continue
                self.console.rule(f"build {rung.name}")
                extra = self.extra_stages(rung)
                Build(mix, sources, out, cpus, tokenizer, self.console, cache, resume=True, extra_stages=extra).run()

    def plan(self) -> RepetitionPlan:
        """Every rung's shard size and the epochs its training sees of each source, from the reference build's
        available tokens; refuses a ladder whose text would repeat more than ``--max-text-epochs``."""
        from dataengine.config import load_mix

        ref_out = self.reference
        if not (ref_out / "manifest.json").exists():
            raise ValueError(f"no reference build in {ref_out}: run the build phase first")
        available = {name: s["available_tokens"] for name, s in _manifest(ref_out)["mix"]["sources"].items()}
        return plan_repetition(
            available,
            [RungSize(r.name, r.shares(), r.scale) for r in self.rungs],
            parse_tokens(self.args.tokens),
            self.args.max_text_epochs,
            load_mix(self.args.reference).max_epochs,
            self.args.total_tokens,
        )

    def extra_stages(self, rung: Rung) -> list[Any]:
        """The stages a rung adds to the build: the scrambled control's placebo (code lines shuffled), code without
        its comments, and a filter control's use of the reference build's held-out slice."""
        from dataengine.config import load_mix
        from pipelines.controls import reference_held_out, reference_held_out_stage, strip_comments_stages
        from pipelines.placebo import scramble_stage

        if rung.control == "scrambled":
            return [scramble_stage([CODE])]
        if rung.control == "code-nocomments":
            return strip_comments_stages([CODE])
        if rung.control in PIPELINE_CONTROLS:
            return [reference_held_out_stage(reference_held_out(self.reference, load_mix(rung.mix).held_out))]
        return []

    def held_out_data(self, rung: Rung) -> Path:
        """The build whose held-out slice a rung is evaluated on: its own, or the reference build's for a filter
        control (whose own slice holds the documents its filters keep)."""
        return self.reference if rung.control in PIPELINE_CONTROLS else self.data / rung.name

    def _rung_mix(self, rung: Rung, total: int) -> Any:
        from dataengine.config import load_mix

        mix = load_mix(rung.mix)
        update: dict[str, Any] = {"name": rung.name, "total_tokens": total, "shares": rung.shares()}
        if rung.control in PIPELINE_CONTROLS:
            update["pipeline"] = mix.pipeline.model_copy(update=PIPELINE_CONTROLS[rung.control])
        if self.args.sources:
            update["sources"] = self.args.sources
        return mix.model_copy(update=update)

    def measured_epochs(self, runs: list[Run], training: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
        """Per rung and source, the epochs its runs' training saw (mean over runs): tokens trained times the
        source's share of the shards, over the unique tokens the shards hold of it (from the rung's manifest)."""
        out: dict[str, dict[str, float]] = {}
        for rung in {run.rung.name: run.rung for run in runs}.values():
            sources = _manifest(self.data / rung.name)["mix"]["sources"]
            shard_total = sum(s["realised_tokens"] for s in sources.values())
            trained = [training[run.name]["tokens"] for run in runs if run.rung == rung]
            out[rung.name] = {
                name: round(
                    sum(trained) / len(trained) * s["realised_tokens"] / shard_total
                    / min(s["realised_tokens"], s["available_tokens"]),
                    3,
                )
                for name, s in sorted(sources.items())
                if s["realised_tokens"] > 0
            }  # fmt: skip
        return out

    # -- train ------------------------------------------------------------------------------------------------
    def train(self) -> None:
        changed = [run.name for run in self.runs if self._trained(run) is None]
        if changed:
            raise ValueError(
                f"{', '.join(changed)} finished with other training settings than this command's (tokens, model, "
                f"train args); give the experiment a new --out, or delete those runs under {self.runs_dir} to "
                "train them again"
            )
        todo = [run for run in self.runs if not self._trained(run)]
        if todo:
            self.plan()  # refuses an over-repeated ladder before any training
        self.console.print(f"train: {len(self.runs) - len(todo)} of {len(self.runs)} runs done; {len(todo)} to go")
        with ThreadPoolExecutor(max_workers=self.args.parallel) as pool:
            for _ in pool.map(self._train_one, todo):
                pass
        for seed, out in enumerate(self.untrained):
            if not _checkpoints(out):
                self._save_untrained(seed, out)

    def _save_untrained(self, seed: int, out: Path) -> None:
        """Seed ``seed``'s initialised model, saved at step 0 by the training command itself (``--stop-at 0``): the
        same size, initialisation and tokenizer as every rung's run of that seed, never trained."""
        cmd = [*self._train_command(Run(self.rungs[0], seed)), "--stop-at", "0"]
        cmd[cmd.index("--out") + 1] = str(out)
        shutil.rmtree(out, ignore_errors=True)
        log = out.parent / f"{out.name}.train.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_child_env())
        if proc.returncode != 0 or not _checkpoints(out):
            raise RuntimeError(f"saving the untrained model of seed {seed} failed (exit {proc.returncode}); see {log}")
        self.console.print(f"[green]✓[/] saved the untrained model of seed {seed}")

    def run_tokens(self, run: Run) -> int:
        """Training tokens of a run: ``--tokens`` times its rung's scale (``ontop`` trains as many text tokens as
        the ladder's runs plus its code share on top; ``textonly`` as many tokens as ``ontop``, all text)."""
        return round(parse_tokens(self.args.tokens) * run.rung.scale)

    def _trained(self, run: Run) -> bool | None:
        """Whether the run is done with the settings this command would train it with; None when it finished
        with other ones (more tokens, another model, ...), which is never silently skipped nor overwritten."""
        done = self.runs_dir / run.name / "done.json"
        if not done.exists():
            return False
        recorded = _training_settings(json.loads(done.read_text())["cmd"])
        return True if recorded == _training_settings(self._train_command(run)[1:]) else None

    def _train_command(self, run: Run) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pretrain.train",
            "--data",
            str(self.data / run.rung.name),
            "--model",
            self.args.model,
            "--tokens",
            str(self.run_tokens(run)),
            "--seed",
            str(run.seed),
            "--out",
            str(self.runs_dir / run.name),
            "--device",
            self.args.device,
            "--eval-every",
            str(self.args.eval_every),
            "--ckpt-every",
            str(self.args.eval_every),
            "--keep-checkpoints",
            str(self.args.last_evals),
            "--gpu-share",
            f"{1 / self.args.parallel:.6g}",  # runs trained at once share the GPU: MFU of each run's share
            *self.args.train_args,
        ]

    def _train_one(self, run: Run) -> None:
        out = self.runs_dir / run.name
        resume = (out / "ckpt.pt").exists()
        if out.exists() and not resume:
            for stale in out.iterdir():  # started but never checkpointed: start afresh
                stale.unlink()
        cmd = self._train_command(run)
        if resume:
            cmd.append("--resume")
        start = time.perf_counter()
        log = out.parent / f"{run.name}.train.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_child_env())
        if proc.returncode != 0:
            raise RuntimeError(f"training {run.name} failed (exit {proc.returncode}); see {log}")
        done = {"run": run.name, "wall_s": round(time.perf_counter() - start, 1), "cmd": cmd[1:]}
        (out / "done.json").write_text(json.dumps(done, indent=2) + "\n")
        self.console.print(f"[green]✓[/] trained {run.name} in {done['wall_s']:.0f} s")

    # -- eval -------------------------------------------------------------------------------------------------
    def eval(self) -> None:
        todo = [
            (run.rung, ckpt)
            for run in self.runs
            for ckpt in _checkpoints(self.runs_dir / run.name)[-self.args.last_evals :]
            if not _eval_path(ckpt).exists()
        ]
        todo += [(self.rungs[0], c) for out in self.untrained for c in _checkpoints(out) if not _eval_path(c).exists()]
        self.console.print(f"eval: {len(todo)} checkpoints to score")
        with ThreadPoolExecutor(max_workers=self.args.parallel) as pool:
            for _ in pool.map(lambda job: self._eval_one(*job), todo):
                pass

    def _eval_one(self, rung: Rung, ckpt: Path) -> None:
        cmd = [
            sys.executable,
            "-m",
            "pretrain.eval",
            "--ckpt",
            str(ckpt),
            "--tasks",
            self.args.suite,
            "--data",
            str(self.held_out_data(rung)),
            "--device",
            self.args.device,
            "--out",
            str(_eval_path(ckpt)),
            *self.args.eval_args,
        ]
        log = ckpt.with_suffix(".eval.log")
        with log.open("w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_child_env())
        if proc.returncode != 0:
            raise RuntimeError(f"evaluating {ckpt} failed (exit {proc.returncode}); see {log}")
        self.console.print(f"[green]✓[/] evaluated {ckpt.parent.name} {ckpt.name}")

    # -- report -----------------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """``experiment.json``, ``report.html`` and ``summary.md``; of a pilot, the pre-registration instead."""
        from dataengine.atomic import write_atomic, write_json_atomic
        from pipelines.experiment_report import write_html, write_markdown

        if self.pilot:
            return self.preregister()
        prereg = self.preregistration()
        untrained = [
            [json.loads(_eval_path(c).read_text()) for c in _checkpoints(out) if _eval_path(c).exists()]
            for out in self.untrained
        ]
        result = self.analyse(
            composite=None if prereg is None else composite_of(prereg),
            untrained=[e for e in untrained if e],
            settings=_settings(self.args) | {"preregistration": prereg},
        )
        write_json_atomic(self.root / "experiment.json", result)
        write_html(result, self.root)
        summary = write_markdown(result)
        write_atomic(self.root / "summary.md", summary)
        self.console.print(summary, markup=False, highlight=False, soft_wrap=True)
        self.console.print(f"wrote {self.root / 'experiment.json'}, report.html and summary.md")
        return result

    def preregistration(self) -> dict[str, Any] | None:
        """The ladder's pre-registration (None with ``--no-preregistration``); refuses a ladder without one."""
        if self.args.no_preregistration:
            return None
        return read_preregistration(self.args.preregistration or self.args.out / PREREGISTRATION, self.args.suite)

    def preregister(self) -> dict[str, Any]:
        """The pilot's decision, written as the ladder's pre-registration (``pipelines.preregistration``)."""
        from dataengine.atomic import write_json_atomic

        result = self.analyse(settings=_settings(self.args) | {"pilot": True})
        write_json_atomic(self.root / "experiment.json", result)
        pilot = {
            "mixes": [r.name for r in self.rungs],
            "model": self.args.model,
            "tokens": self.args.tokens,
            "seeds": self.args.seeds,
            "train_args": self.args.train_args,
            "eval_args": self.args.eval_args,
        }
        ladder = {"mixes": self.args.mixes, "controls": self.args.controls, "reference": self.args.reference}
        content = preregistration(result, pilot, ladder)
        path = self.args.preregistration or self.args.out / PREREGISTRATION
        write_json_atomic(path, content)
        for task, rungs in content["evidence"].items():
            zs = ", ".join(f"{rung} {e['z']:+.1f} SE" for rung, e in rungs.items())
            self.console.print(f"{'[green]kept' if task in content['tasks'] else '[red]dropped'}[/] {task}: {zs}")
        self.console.print(f"wrote {path}: {len(content['tasks'])} of {len(content['evidence'])} tasks kept")
        return content

    def analyse(self, settings: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``experiment_report.analyse`` over the finished runs' last evaluations (``kwargs``: its options)."""
        from pipelines.experiment_report import analyse

        evals = {
            run.name: [
                json.loads(_eval_path(c).read_text())
                for c in _checkpoints(self.runs_dir / run.name)
                if _eval_path(c).exists()
            ]
            for run in self.runs
        }
        missing = sorted(name for name, e in evals.items() if not e)
        if len(missing) == len(evals):
            raise ValueError("no evaluations yet: run the train and eval phases first")
        if missing:
            self.console.print(f"[yellow]reporting without {len(missing)} unfinished runs: {', '.join(missing)}")
        runs = [run for run in self.runs if run.name not in missing]
        evals = {run.name: evals[run.name][-self.args.last_evals :] for run in runs}
        rungs = [r for r in self.rungs if any(run.rung == r for run in runs)]
        training = {run.name: _training_summary(self.runs_dir / run.name) for run in runs}
        result = analyse(
            rungs=[asdict(r) for r in rungs],
            runs={run.name: {"rung": run.rung.name, "seed": run.seed} for run in runs},
            evals=evals,
            suite=self.args.suite,
            baseline=rungs[0].name,
            settings=settings,
            training=training,
            repetition=self.measured_epochs(runs, training),
            **kwargs,
        )
        result["missing_runs"] = missing
        return result


def _rounded(epochs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {rung: {s: round(e, 2) for s, e in by_source.items()} for rung, by_source in epochs.items()}


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def _checkpoints(run_dir: Path) -> list[Path]:
    """The run's kept checkpoints, oldest first (``ckpt-<step>.pt``)."""
    return sorted(run_dir.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def _eval_path(ckpt: Path) -> Path:
    return ckpt.with_suffix(".eval.json")


def _training_summary(run_dir: Path) -> dict[str, Any]:
    """Size, throughput and final loss of a run (its ``summary.json``)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    keys = ("model", "params", "steps", "tokens", "final_loss", "tokens_per_s", "mfu", "device")
    return {k: summary.get(k) for k in keys}


def _training_settings(cmd: list[str]) -> list[str]:
    """A training command without what does not change the model it trains (where its files live, the device,
    resuming) and with its token count normalised (``500k`` is ``500000``), so that an experiment moved to another
    directory or machine is still recognised as done."""
    ignored_values, ignored_flags = {"--data", "--out", "--device", "--gpu-share"}, {"--resume"}
    kept: list[str] = []
    args = iter(cmd[2:])  # past "-m pretrain.train"
    for arg in args:
        if arg in ignored_values:
            next(args)
        elif arg == "--tokens":
            kept += [arg, str(parse_tokens(next(args)))]
        elif arg not in ignored_flags:
            kept.append(arg)
    return kept


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("mixes", "controls", "reference", "seeds", "model", "tokens", "suite", "last_evals", "total_tokens")
    keys = (*keys, "max_text_epochs")
    return {k: getattr(args, k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.experiment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixes", default="code0,code10,code30,code50", help="the ladder; the first is the baseline")
    parser.add_argument(
        "--controls", default="ontop,textonly,scrambled", help="controls around --reference ('' for none)"
    )
    parser.add_argument("--reference", default="code30", help="mix whose tokenizer all rungs share; controls' mix")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="tiny", help="pretrain size (debug, tiny, small, base, auto)")
    parser.add_argument("--tokens", default="50M", help="training tokens per run (ontop: / (1 - code share))")
    parser.add_argument(
        "--total-tokens",
        type=parse_tokens,
        help="shard tokens of a ladder rung (default: the largest that holds "
        "every text source once; controls scale it)",
    )
    parser.add_argument(
        "--max-text-epochs", type=float, default=4.0, help="refuse a ladder whose training repeats its text more"
    )
    parser.add_argument("--suite", default="default", help="evaluation suite of pretrain.eval")
    parser.add_argument("--eval-every", type=int, default=200, help="steps between checkpoints/evaluations")
    parser.add_argument("--last-evals", type=int, default=3, help="average the scores of this many last checkpoints")
    parser.add_argument("--out", type=Path, default=Path("experiments/ladder"))
    parser.add_argument("--sources", help="'sample' (default: the mixes') or a sources YAML")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    parser.add_argument("--parallel", type=int, default=1, help="runs trained/evaluated at once")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, help="CPUs for the builds")
    parser.add_argument("--ray-address", help="build on an existing Ray cluster")
    parser.add_argument("--object-store-mb", type=int, help="cap the builds' Ray object store (MB); spills beyond")
    parser.add_argument("--train-arg", dest="train_args", action="append", default=[], help="passed to train")
    parser.add_argument("--eval-arg", dest="eval_args", action="append", default=[], help="passed to eval")
    parser.add_argument(
        "--pilot", action="store_true", help="train --pilot-mixes under OUT/pilot and write the pre-registration"
    )
    parser.add_argument("--pilot-mixes", default=",".join(PILOT_MIXES), help="the pilot's rungs (the ladder's ends)")
    parser.add_argument(
        "--preregistration", type=Path, help=f"the pre-registration file (default: OUT/{PREREGISTRATION})"
    )
    parser.add_argument(
        "--no-preregistration", action="store_true", help="run the ladder without one (its report says so)"
    )
    args = parser.parse_args(argv)
    args.pilot_mixes = [m for m in args.pilot_mixes.split(",") if m]
    args.mixes = [m for m in args.mixes.split(",") if m]
    args.controls = [c for c in args.controls.split(",") if c]
    phases = [p for p in args.phases.split(",") if p]
    console = Console(stderr=True)
    try:
        unknown = set(phases) - set(PHASES)
        if unknown:
            raise ValueError(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
        if args.seeds < 1 or not args.mixes:
            raise ValueError("need at least one mix and one seed")
        experiment = Experiment(args, console)
        if not args.pilot:
            experiment.preregistration()  # refused before any work when there is none
        for phase in PHASES:
            if phase in phases:
                getattr(experiment, phase)()
    except (ValueError, RuntimeError) as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a GPT on a build output: ``python -m pretrain.train --data out/code30 --model tiny --tokens 200M``.

One file, read top to bottom: settings (``TrainConfig``: flags, or a YAML file of defaults that flags override),
then ``train``: distributed setup, data, model, optimizer, the loop (gradient accumulation, clipping, bf16 autocast
and ``torch.compile`` on CUDA), logging, held-out evaluation and checkpoints.

The run directory (``--out``, default ``runs/<data>-<model>-s<seed>``) holds

* ``metrics.jsonl``: a ``start`` record, ``train`` records every ``--log-every`` steps (loss overall, per source
  and per ``source/language`` such as ``code/python`` or ``web_en/en``; lr, grad norm, tokens/s, MFU), ``eval``
  records (held-out bits per byte per source and per language) every ``--eval-every`` steps and at the end, and a
  final ``summary`` record (also written to ``summary.json``);
* ``ckpt.pt``: one checkpoint, replaced atomically every ``--ckpt-every`` steps and at the end (so at the end it
  is the final model); ``--keep-checkpoints N`` also keeps the newest N of them as ``ckpt-<step>.pt``.

``--resume`` continues from ``ckpt.pt`` exactly: model, optimizer, step (the schedule is a pure function of the
step), loader position and RNG; records after the checkpoint's step are dropped from ``metrics.jsonl`` first, so
the file reads as one uninterrupted run.  Settings that change what is computed must match the checkpoint's.

Throughput and MFU in the summary leave out the first steps of each invocation (up to 10: compilation, the
loader's first reads), and every figure leaves out time spent evaluating and checkpointing.  Distributed:
``torchrun --nproc-per-node 8 -m pretrain.train ...`` (nccl on CUDA, gloo on CPU); rank 0 logs and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel

from pretrain.data import data_info, train_loader
from pretrain.heldout import held_out_bpb
from pretrain.model import (
    GPT,
    SIZES,
    TOKENS_PER_PARAM,
    choose_size,
    model_config,
    non_embedding_params,
    save_checkpoint,
)

CHECKPOINT = "ckpt.pt"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TIMING_WARMUP_STEPS = 10
# Dense bf16 tensor-core peak per GPU (datasheets), matched against torch.cuda.get_device_name in this order.
# dense bf16 peak by device name, the most specific first: H100 PCIe, NVL and SXM differ (NVIDIA's datasheets)
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("A100", 312e12),
)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_tokens(value: int | str) -> int:
    """``200M`` -> 200_000_000; ``1.5B``, ``50k``, ``1e6`` and plain integers too."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"token count {value!r}: expected a number with an optional k/M/B/T suffix, e.g. 200M")
    return round(float(match[1]) * _SUFFIX[match[2].lower()])


def setting(default: Any, help: str) -> Any:
    """A ``TrainConfig`` field whose help text is its ``--help`` line."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every setting of a run; field names are the flags (``seq_len`` is ``--seq-len``) and the YAML keys."""

    data: str = setting("", "a build output directory")
    out: str = setting("", "the run directory (default: runs/<data name>-<model>-s<seed>)")
    model: str = setting("auto", "a name in pretrain.model.SIZES, or auto: Chinchilla's ~20 tokens per parameter")
    tokens: int = setting(0, "training tokens (all ranks); steps = tokens / tokens per step, rounded up")
    seq_len: int = setting(1024, "tokens per training sequence")
    batch_size: int = setting(32, "sequences per micro-batch per rank")
    grad_accum: int = setting(1, "micro-batches per optimizer step")
    lr: float = setting(1e-3, "peak learning rate")
    min_lr: float = setting(1e-4, "final learning rate")
    warmup_steps: int | None = setting(None, "linear warmup steps (default: 2% of the steps, at least 1)")
    schedule: str = setting("cosine", "cosine (to min_lr) or wsd (warmup, stable, then linear decay to min_lr)")
    decay_frac: float = setting(0.2, "wsd: share of the steps spent decaying")
    weight_decay: float = setting(0.1, "on 2-D weights only (matmuls and the embedding), not on norm gains")
    beta1: float = setting(0.9, "AdamW beta1")
    beta2: float = setting(0.95, "AdamW beta2")
    grad_clip: float = setting(1.0, "max global grad norm; 0 = no clipping")
    seed: int = setting(0, "model init and data order")
    max_steps: int | None = setting(None, "caps the steps (the schedule follows the cap): for tests and quick looks")
    stop_at: int | None = setting(None, "stop at this step with a checkpoint, schedule unchanged; --resume continues")
    device: str = setting("auto", "auto, cpu or cuda")
    compile: bool | None = setting(None, "torch.compile the model (default: on CUDA)")
    num_workers: int = setting(2, "DataLoader worker processes")
    log_every: int = setting(10, "steps between train records")
    eval_every: int = setting(1000, "steps between held-out evaluations; 0 = only at the end")
    eval_tokens: int = setting(1_000_000, "held-out tokens per source per evaluation; 0 = the whole slice")
    ckpt_every: int = setting(1000, "steps between checkpoints; 0 = only at the end (and at --stop-at)")
    keep_checkpoints: int = setting(0, "also keep the last N checkpoints as ckpt-<step>.pt (to average evaluations)")
    resume: bool = setting(False, "continue the run in --out from its ckpt.pt")
    gpu_share: float = setting(1.0, "share of the GPU this run has (1/N when N runs share one): MFU is of that share")

    def __post_init__(self) -> None:
        self.tokens, self.eval_tokens = parse_tokens(self.tokens), parse_tokens(self.eval_tokens)
        if not self.data:
            raise ValueError("--data is required (a build output directory)")
        if self.tokens <= 0:
            raise ValueError("--tokens is required and must be positive (e.g. 200M)")
        if self.model != "auto" and self.model not in SIZES:
            raise ValueError(f"unknown --model {self.model!r}; known: auto, {', '.join(SIZES)}")
        if self.schedule not in ("cosine", "wsd"):
            raise ValueError(f"unknown --schedule {self.schedule!r}; known: cosine, wsd")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown --device {self.device!r}; known: auto, cpu, cuda")
        if min(self.seq_len, self.batch_size, self.grad_accum, self.log_every) < 1:
            raise ValueError("--seq-len, --batch-size, --grad-accum and --log-every must be >= 1")
        if not 0 < self.decay_frac <= 1:
            raise ValueError(f"--decay-frac must be in (0, 1]; got {self.decay_frac}")
        if not 0 < self.gpu_share <= 1:
            raise ValueError(f"--gpu-share must be in (0, 1]; got {self.gpu_share}")


# Settings that may change between an interrupted run and its --resume: they do not change what is computed.
# (``data`` may move: the loader itself refuses a state saved for other shards.)
OPERATIONAL = {"data", "out", "stop_at", "device", "compile", "num_workers", "log_every", "eval_every"}
OPERATIONAL |= {"eval_tokens", "ckpt_every", "keep_checkpoints", "resume", "gpu_share"}


def config_from(args_or_config: TrainConfig | Mapping[str, Any] | Sequence[str]) -> TrainConfig:
    """A ``TrainConfig`` from itself, a mapping of its fields, or command-line arguments."""
    if isinstance(args_or_config, TrainConfig):
        return args_or_config
    if isinstance(args_or_config, Mapping):
        return TrainConfig(**_known_keys(dict(args_or_config), "train()"))
    return parse_args(list(args_or_config))


def _known_keys(values: dict[str, Any], where: str) -> dict[str, Any]:
    values = {k.replace("-", "_"): v for k, v in values.items()}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown settings {unknown}; known: {', '.join(sorted(known))}")
    return values


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Flags over ``--config file.yaml`` over the defaults."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    known, _ = first.parse_known_args(argv)
    parser = argparse.ArgumentParser(prog="python -m pretrain.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML file of defaults (keys are the flag names); flags override it")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        shown = f.default is not None and f.default != "" and not isinstance(f.default, bool)
        help = f.metadata["help"] + (f" (default: {f.default})" if shown else "")
        help = help.replace("%", "%%")  # argparse formats help with %
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=help)
        elif f.name == "compile":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help)
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            kind = str if f.name in ("tokens", "eval_tokens") else kind  # suffixes: 200M
            parser.add_argument(flag, type=kind, default=f.default, help=help)
    if known.config:
        path = Path(known.config)
        if not path.is_file():
            raise ValueError(f"--config {path}: no such file")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {path}: expected a mapping of settings")
        parser.set_defaults(**_known_keys(loaded, f"--config {path}"))
    values = vars(parser.parse_args(argv))
    values.pop("config")
    return TrainConfig(**values)


def lr_at(step: int, cfg: TrainConfig, total_steps: int, warmup_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine or warmup-stable-decay."""
    if step < warmup_steps:
        return cfg.lr * (step + 1) / warmup_steps
    if cfg.schedule == "cosine":
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)
    decay_steps = max(1, round(cfg.decay_frac * total_steps))
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return cfg.lr
    return cfg.lr + (cfg.min_lr - cfg.lr) * (step - decay_start + 1) / decay_steps


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak FLOP/s of one GPU, for MFU; None on CPU or a GPU not in the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


@dataclass
class Clock:
    """Seconds of training: wall time minus evaluation and checkpointing, measured after the GPU has caught up."""

    device: torch.device
    start: float = 0.0
    paused: float = 0.0

    def __post_init__(self) -> None:
        self.start = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def now(self) -> float:
        self._sync()
        return time.perf_counter() - self.start - self.paused

    @contextmanager
    def pause(self) -> Iterator[None]:
        self._sync()
        began = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - began


def _distributed(device_flag: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether this call started the process group) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device_flag == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    use_cuda = device_flag == "cuda" or (device_flag == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        started = True
    return rank, world, device, started


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def train(args_or_config: TrainConfig | Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """Run (or resume) one training run; returns its summary (final loss, steps, tokens/s, MFU, run dir, ...)."""
    cfg = config_from(args_or_config)
    rank, world, device, started = _distributed(cfg.device)
    try:
        return _train(cfg, rank, world, device)
    finally:
        if started:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    master = rank == 0

    def log(message: str) -> None:
        if master:
            print(message, flush=True)

    # -- what to train, for how long -------------------------------------------------------------------------
    info = data_info(cfg.data)
    size = cfg.model
    if size == "auto":
        size = choose_size(cfg.tokens, info.vocab_size)
        sizes = [n for n in SIZES if n != "debug"]
        counts = ", ".join(f"{n} {non_embedding_params(model_config(n, info.vocab_size, 1)) / 1e6:.1f}M" for n in sizes)
        log(
            f"--model auto: {cfg.tokens:,} tokens / {TOKENS_PER_PARAM} tokens per parameter (Chinchilla) = "
            f"{cfg.tokens / TOKENS_PER_PARAM / 1e6:.1f}M non-embedding parameters; nearest in log space of "
            f"({counts}): {size}"
        )
    gpt_config = model_config(size, info.vocab_size, cfg.seq_len)
    tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum * world
    total_steps = -(-cfg.tokens // tokens_per_step)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    warmup_steps = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, round(0.02 * total_steps))
    run_cfg = TrainConfig(**{**asdict(cfg), "model": size})  # "auto" resolved, as the checkpoint records it

    # -- run directory: new, or resumed from its checkpoint ---------------------------------------------------
    run_dir = Path(cfg.out or f"runs/{Path(cfg.data).resolve().name}-{size}-s{cfg.seed}")
    ckpt_path, metrics_path = run_dir / CHECKPOINT, run_dir / METRICS
    checkpoint = None
    if cfg.resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: {ckpt_path} does not exist; nothing to resume")
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        _check_same_run(checkpoint["config"]["train"], run_cfg)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    _barrier(world)  # every rank has looked before rank 0 writes
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            _truncate_metrics(metrics_path, checkpoint["step"])

    # -- model, optimizer, data -------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere and later
    model = GPT(gpt_config).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=device.type == "cuda",
    )
    loader = train_loader(cfg.data, cfg.seq_len, cfg.batch_size, cfg.seed, cfg.num_workers, device.type == "cuda")
    step, evals, last_train = 0, [], None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        loader.load_state_dict(checkpoint["loader"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if device.type == "cuda" and "cuda" in checkpoint["rng"]:
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"])
        step = checkpoint["step"]
        evals, last_train = checkpoint["metrics"]["evals"], checkpoint["metrics"]["train"]
        del checkpoint
    use_compile = cfg.compile if cfg.compile is not None else device.type == "cuda"
    train_model: torch.nn.Module = torch.compile(model) if use_compile else model
    if world > 1:
        train_model = DistributedDataParallel(train_model, device_ids=[device.index] if device.type == "cuda" else None)
    sources, langs = loader.packed.sources, loader.packed.langs
    flops_per_token = model.flops_per_token(cfg.seq_len)
    peak = peak_flops(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def record(entry: dict[str, Any]) -> None:
        if master:  # opened per record (they are rare), so no handle outlives an exception
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def checkpoint_now() -> None:
        if master:
            save_checkpoint(
                ckpt_path,
                model,
                optimizer,
                step,
                {"model": asdict(gpt_config), "train": asdict(run_cfg)},
                loader.state_dict(),
                {
                    "tokenizer": info.tokenizer_json,
                    "eos_id": info.eos_id,
                    "metrics": {"train": last_train, "evals": evals},
                },
            )
            if cfg.keep_checkpoints:
                _keep_last(ckpt_path, step, cfg.keep_checkpoints)
        _barrier(world)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(
        f"{size}: {model.num_params():,} parameters | {cfg.tokens:,} tokens / ({cfg.batch_size} x {cfg.seq_len} x "
        f"{cfg.grad_accum} accum x {world} ranks = {tokens_per_step:,} tokens per step) = "
        f"{-(-cfg.tokens // tokens_per_step):,} steps"
        + (f", capped at {total_steps:,}" if cfg.max_steps else "")
        + f" | {cfg.schedule} lr {cfg.lr:g} -> {cfg.min_lr:g}, warmup {warmup_steps} | {device_name}"
        + (", bf16" if device.type == "cuda" else ", fp32")
        + (", compiled" if use_compile else "")
        + f" | {run_dir}"
        + (f" | resumed at step {step}" if cfg.resume else "")
    )
    record(
        {
            "kind": "start",
            "step": step,
            "model": size,
            "params": model.num_params(),
            "tokens_per_step": tokens_per_step,
            "total_steps": total_steps,
            "warmup_steps": warmup_steps,
            "world_size": world,
            "device": device_name,
            "compile": use_compile,
            "resumed": cfg.resume,
            "config": asdict(run_cfg),
        }
    )

    # -- the loop ---------------------------------------------------------------------------------------------
    first_step = step
    stop = total_steps if cfg.stop_at is None else min(total_steps, cfg.stop_at)
    timing_skip = min(TIMING_WARMUP_STEPS, (stop - first_step) // 2)
    clock = Clock(device)
    last_log = (clock.now(), step)
    timed_from = last_log if timing_skip == 0 else None
    batches = iter(loader)
    model.train()
    if step == stop == 0:  # --stop-at 0: the initialised model alone, saved (an experiment's untrained-model null)
        checkpoint_now()
    while step < stop:
        lr = lr_at(step, cfg, total_steps, warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        log_now = (step + 1) % cfg.log_every == 0 or step + 1 == total_steps  # not at --stop-at: as uninterrupted
        step_loss = torch.zeros((), device=device)
        by_source = torch.zeros(2, len(sources), dtype=torch.float64, device=device)  # summed loss, tokens
        by_lang = torch.zeros(2, len(sources) * len(langs), dtype=torch.float64, device=device)  # (source, lang)
        for micro in range(cfg.grad_accum):
            batch = next(batches)  # compact dtypes cross to the device, widened there
            tokens = batch["tokens"].to(device, non_blocking=True).long()
            source = batch["sources"][:, 1:].to(device, non_blocking=True).long()  # the source of each target token
            x, y = tokens[:, :-1], tokens[:, 1:].masked_fill(source < 0, -1)  # -1: padding, ignored
            if world > 1:  # all-reduce gradients only on the last micro-batch
                train_model.require_backward_grad_sync = micro == cfg.grad_accum - 1
            with autocast:
                losses = train_model(x, y)
            loss = losses.sum() / (y >= 0).sum().clamp(min=1)
            (loss / cfg.grad_accum).backward()
            step_loss += loss.detach() / cfg.grad_accum
            if log_now:
                real = source >= 0
                ids = source[real]
                by_source[0].index_add_(0, ids, losses.detach()[real].double())
                by_source[1].index_add_(0, ids, torch.ones_like(ids, dtype=torch.float64))
                lang = batch["langs"][:, 1:].to(device, non_blocking=True).long()  # -1: none or padding
                tagged = real & (lang >= 0)
                pairs = source[tagged] * len(langs) + lang[tagged]
                by_lang[0].index_add_(0, pairs, losses.detach()[tagged].double())
                by_lang[1].index_add_(0, pairs, torch.ones_like(pairs, dtype=torch.float64))
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if timed_from is None and step - first_step == timing_skip:
            timed_from = (clock.now(), step)

        if log_now:
            if world > 1:
                dist.all_reduce(step_loss)
                dist.all_reduce(by_source)
                dist.all_reduce(by_lang)
                step_loss /= world
            now = clock.now()
            tokens_per_s = (step - last_log[1]) * tokens_per_step / max(now - last_log[0], 1e-9)
            last_log = (now, step)
            sums, counts = by_source.tolist()
            lang_sums, lang_counts = by_lang.tolist()
            pair_names = [f"{s}/{lang}" for s in sources for lang in langs]
            last_train = {
                "kind": "train",
                "step": step,
                "tokens": step * tokens_per_step,
                "loss": step_loss.item(),
                "loss_by_source": {s: sums[i] / counts[i] for i, s in enumerate(sources) if counts[i]},
                "loss_by_lang": {n: lang_sums[i] / lang_counts[i] for i, n in enumerate(pair_names) if lang_counts[i]},
                "lr": lr,
                "grad_norm": grad_norm.item(),
                "tokens_per_s": tokens_per_s,
                "mfu": flops_per_token * tokens_per_s / (peak * world * cfg.gpu_share) if peak else None,
            }
            record(last_train)
            log(_train_line(last_train, total_steps))

        if step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0):
            with clock.pause():
                if master:
                    result = held_out_bpb(model, cfg.data, device, cfg.eval_tokens or None, cfg.seq_len)
                    evals.append({"kind": "eval", "step": step, "tokens": step * tokens_per_step, "held_out": result})
                    record(evals[-1])
                    log(_eval_line(evals[-1]))
                _barrier(world)
        if step == stop or (cfg.ckpt_every and step % cfg.ckpt_every == 0):
            with clock.pause():
                checkpoint_now()
    del batches  # stops the loader's workers

    # -- summary ----------------------------------------------------------------------------------------------
    end = clock.now()
    if timed_from is not None and step > timed_from[1]:
        tokens_per_s = (step - timed_from[1]) * tokens_per_step / max(end - timed_from[0], 1e-9)
    else:
        tokens_per_s = None
    summary = {
        "run_dir": str(run_dir),
        "model": size,
        "params": model.num_params(),
        "steps": step,
        "total_steps": total_steps,
        "complete": step == total_steps,
        "tokens": step * tokens_per_step,
        "final_loss": last_train["loss"] if last_train else None,
        "tokens_per_s": tokens_per_s,
        "mfu": flops_per_token * tokens_per_s / (peak * world * cfg.gpu_share) if peak and tokens_per_s else None,
        "timed_steps": step - timed_from[1] if tokens_per_s else 0,
        "held_out": evals[-1]["held_out"] if evals else None,
        "device": device_name,
        "world_size": world,
    }
    if master:
        if summary["complete"] and step > first_step:
            record({"kind": "summary", **summary})
            (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        rate = f"{tokens_per_s:,.0f} tokens/s" if tokens_per_s else "no timed steps"
        mfu = f", MFU {summary['mfu']:.1%}" if summary["mfu"] else ""
        state = "done" if summary["complete"] else f"stopped at step {step} of {total_steps} (--resume continues)"
        log(f"{state}: {rate}{mfu} over the last {summary['timed_steps']} steps (warm-up steps excluded) | {run_dir}")
    return summary


def _check_same_run(saved: Mapping[str, Any], now: TrainConfig) -> None:
    """A resumed run must compute what the interrupted one would have: refuse changed settings that matter."""
    changed = [
        f"{k}={saved.get(k)!r} -> {v!r}" for k, v in asdict(now).items() if k not in OPERATIONAL and saved.get(k) != v
    ]
    if changed:
        raise ValueError(f"--resume with different settings ({', '.join(changed)}); rerun with the original ones")


def _keep_last(ckpt_path: Path, step: int, keep: int) -> None:
    """Hard-link the fresh checkpoint as ``ckpt-<step>.pt`` (no copy: ``ckpt.pt`` is replaced by rename, never
    rewritten in place) and delete all but the newest ``keep`` of them."""
    kept = ckpt_path.with_name(f"ckpt-{step}.pt")
    kept.unlink(missing_ok=True)
    os.link(ckpt_path, kept)
    steps = sorted(int(p.stem.split("-")[1]) for p in ckpt_path.parent.glob("ckpt-*.pt"))
    for old in steps[:-keep]:
        ckpt_path.with_name(f"ckpt-{old}.pt").unlink()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records written after the checkpoint's step (the resumed run writes them again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _train_line(r: dict[str, Any], total_steps: int) -> str:
    per_source = " ".join(f"{s} {v:.3f}" for s, v in r["loss_by_source"].items())
    mfu = f" | mfu {r['mfu']:.1%}" if r["mfu"] is not None else ""
    return (
        f"step {r['step']:>{len(str(total_steps))}}/{total_steps} | loss {r['loss']:.4f} | {per_source} | "
        f"lr {r['lr']:.2e} | gnorm {r['grad_norm']:.2f} | {r['tokens_per_s']:,.0f} tok/s{mfu}"
    )


def _eval_line(r: dict[str, Any]) -> str:
    scores = " ".join(f"{k} {v['bpb']:.3f}" for k, v in r["held_out"].items())
    return f"eval step {r['step']} | held-out bits per byte: {scores}"


def main(argv: list[str] | None = None) -> int:
    try:
        train(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

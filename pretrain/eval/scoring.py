"""Likelihood scoring of tasks: no generation, only the log-probability a model gives each choice after the prompt.

Tokenization (the BPE boundary): as lm-evaluation-harness does, whitespace at the end of the prompt is moved to the
front of the continuation (``"Answer: " + "7"`` is scored as ``"Answer:" + " 7"``), because a byte-level BPE
attaches a space to the word after it.  Then, unlike lm-eval (which encodes prompt + continuation together and
takes the tail), the prompt and the continuation are encoded *separately* and concatenated: every choice of an item
is scored after exactly the same context tokens, and the scored tokens are exactly the continuation's.  The
context starts with the end-of-text token when one is given (documents start after it in training), and is cut
from the left so that it fits the model's ``seq_len``; a continuation longer than that is scored in windows.
Our GPT scores an item's choices in one packed sequence (``choice_loglikelihoods``): the same numbers, the
context encoded once per item.
A multiple-choice answer is scored together with the text that ends it in the few-shot format (a line break,
or " ." for BIG-bench's boolean_expressions; ``Task.continuations``), so that a choice which is a prefix of another
("4" and "49", "]" and "] }") does not win merely by being shorter.

Metrics of a multiple-choice task, per item, each with a bootstrap 95% CI over items (``lpb``: a choice's log2
probability per UTF-8 byte, as scored):

- ``calibrated_margin`` (the primary metric): ``margin`` minus the same margin scored with the question removed
  from the context (``Task.render_without_question``: the same few-shot examples and answer cue; the same scored
  text, byte for byte), DCPMI-style.  It moves only when the question changes the model's preference: a model
  that prefers some answers whatever the question (a unigram model; a small model that likes round numbers)
  scores 0 on every item, exactly;
- ``margin``: ``lpb`` of the correct choice minus the mean ``lpb`` of the distractors (bits per byte, continuous,
  so it moves at scales where accuracy is still flat: DataDecide 2025);
- ``bpb``: bits per byte of the correct choice as scored, its end included (total bits / total UTF-8 bytes);
- ``p_norm``: normalised probability of the correct choice, softmax over the choices' total log-probabilities;
- ``p_norm_skill``: ``(p_norm - 1/k) / (1 - 1/k)`` for k choices;
- ``acc_norm``: accuracy when choices are ranked by log-probability per byte (lm-eval's acc_norm by bytes);
  ties are shared (a tie of k including the answer counts 1/k).

Every choice metric has a measured null (``TaskResult.null``): its mean and standard deviation over the same items
scored with shuffled answer keys (each item's key drawn uniformly among its choices, ``N_NULL`` times), which is
what "chance" means in every table.  The shuffle keeps whatever the model prefers regardless of the key; only
the link between the key and the model's preference is broken.

A ``bpb`` task (HumanEval) reports ``bpb`` of its reference only.  Per-item arrays stay in ``TaskResult.items``
(and in ``TaskResult.summary()``) for paired comparisons: ``bootstrap_samples`` with the same seed resamples the
same items, so the difference of two models' samples is a paired bootstrap.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from pretrain.eval.tasks.base import Task

MAX_BATCH_TOKENS = 16384  # model input tokens per forward pass (a module without logits_at gives all their logits)
N_BOOT = 1000
N_NULL = 500  # answer-key shuffles of the measured null
LN2 = math.log(2)
CHOICE_METRICS = ("calibrated_margin", "margin", "p_norm", "p_norm_skill", "acc_norm")
PER_ITEM = (*CHOICE_METRICS, "bpb", "bits", "bytes")  # per-item arrays written to JSON


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap 95% confidence interval."""

    value: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi}


@dataclass
class TaskResult:
    """Scores of one task; ``items`` holds per-item arrays (``bits``, ``bytes`` and ``bpb`` of the correct choice;
    for multiple choice also every metric of ``CHOICE_METRICS`` and every choice's ``loglik`` and ``loglik_noq``
    (question removed) flattened, with ``n_choices``); ``null`` the measured null of each choice metric."""

    task: str
    kind: str
    lang: str
    style: str
    n: int
    shots: int
    metrics: dict[str, Estimate]
    items: dict[str, np.ndarray] = field(repr=False)
    null: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def primary_metric(self) -> str:
        return "calibrated_margin" if self.kind == "mc" else "bpb"

    @property
    def chance(self) -> float | None:
        """The measured null of the primary metric (None for a bits-per-byte task, which has none)."""
        null = self.null.get(self.primary_metric)
        return None if null is None else null["mean"]

    def summary(self, per_item: bool = True) -> dict[str, Any]:
        """JSON-ready: counts, the measured null, every metric with its CI and, with ``per_item``, the per-item
        scores (5 significant digits) that paired comparisons across models need."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "lang": self.lang,
            "style": self.style,
            "n": self.n,
            "shots": self.shots,
            "chance": self.chance,
            "null": self.null,
            "primary_metric": self.primary_metric,
            "metrics": {name: est.as_dict() for name, est in self.metrics.items()},
        }
        if per_item:
            keys = [k for k in PER_ITEM if k in self.items]
            out["per_item"] = {k: [float(f"{v:.5g}") for v in self.items[k].tolist()] for k in keys}
        return out


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def encode_pairs(
    tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], bos_id: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Context and continuation token ids of each (prompt, continuation) pair, and the UTF-8 bytes scored (the
    continuation with the prompt's trailing whitespace moved onto it).  Pairs with the same prompt share one
    context array, so the choices of an item cost one context in memory."""
    moved: dict[str, tuple[str, str]] = {}
    for prompt, _ in pairs:
        if prompt not in moved:
            stripped = prompt.rstrip()
            moved[prompt] = (stripped, prompt[len(stripped) :])
    prefix = [] if bos_id is None else [bos_id]
    encoded = tokenizer.encode_batch([stripped for stripped, _ in moved.values()], add_special_tokens=False)
    context_of = {p: np.array(prefix + e.ids, dtype=np.int64) for p, e in zip(moved, encoded, strict=True)}
    if any(len(ids) == 0 for ids in context_of.values()):
        raise ValueError("an empty prompt has no context to score from: pass bos_id (the end-of-text token)")
    texts = [moved[prompt][1] + continuation for prompt, continuation in pairs]
    cont_ids = [np.array(e.ids, dtype=np.int64) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    if any(len(ids) == 0 for ids in cont_ids):
        raise ValueError("an empty continuation cannot be scored")
    nbytes = np.array([len(t.encode("utf-8")) for t in texts], dtype=np.int64)
    return [context_of[prompt] for prompt, _ in pairs], cont_ids, nbytes


@torch.no_grad()
def loglikelihoods(
    model: nn.Module,
    contexts: Sequence[np.ndarray],
    continuations: Sequence[np.ndarray],
    seq_len: int,
    device: torch.device | str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Summed natural-log probability of each continuation after its context (float64).

    Each request becomes windows of at most ``seq_len`` input tokens: the first holds the context's last tokens
    (truncated from the left) and the continuation when it fits; a continuation longer than about ``seq_len / 2``
    is scored in several windows, each scored token seeing at least ``seq_len / 2`` tokens before it.  Windows are
    sorted by length and padded on the right (causal attention never looks at the padding).
    """
    device = torch.device(device) if device is not None else _device_of(model)
    windows = []  # (request, start, end, first scored position): input tokens [start, end - 1)
    for r, (ctx, cont) in enumerate(zip(contexts, continuations, strict=True)):
        full_len, pos = len(ctx) + len(cont), len(ctx)
        while pos < full_len:
            end = min(full_len, pos + seq_len)
            start = max(0, end - 1 - seq_len)
            if pos - start < min(pos, seq_len // 2):  # score fewer tokens, each with at least seq_len / 2 context
                end = min(full_len, pos + seq_len - seq_len // 2)
                start = max(0, end - 1 - seq_len)
            windows.append((r, start, end, pos))
            pos = end
    windows.sort(key=lambda w: w[1] - w[2])
    totals = np.zeros(len(contexts), dtype=np.float64)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with evaluating(model):
        first, scored, owners = 0, [], []
        while first < len(windows):
            width = windows[first][2] - 1 - windows[first][1]
            batch = windows[first : first + max(1, min(batch_size, MAX_BATCH_TOKENS // width))]
            first += len(batch)
            x = np.zeros((len(batch), width), dtype=np.int64)
            rows, times, targets = [], [], []
            for row, (r, start, end, pos) in enumerate(batch):
                ctx, cont = contexts[r], continuations[r]
                x[row, : end - 1 - start] = np.concatenate(
                    [ctx[start : end - 1], cont[max(0, start - len(ctx)) : end - 1 - len(ctx)]]
                )
                rows.append(np.full(end - pos, row))
                times.append(np.arange(pos - 1 - start, end - 1 - start))
                targets.append(cont[pos - len(ctx) : end - len(ctx)])
                owners.append(np.full(end - pos, r))
            index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(times), np.concatenate(targets)]))
            index = index.to(device, non_blocking=True)
            with autocast:
                x_dev = torch.from_numpy(x).to(device, non_blocking=True)
                if hasattr(model, "logits_at"):  # our GPT: the output head at the scored positions only
                    logits = model.logits_at(x_dev, index[0], index[1])
                else:  # any module whose forward gives [B, T, V] logits
                    logits = model(x_dev)[index[0], index[1]]
            logp = F.log_softmax(logits.float(), dim=-1)
            scored.append(logp.gather(1, index[2][:, None])[:, 0])  # stays on the device: no sync per batch
        if scored:
            np.add.at(totals, np.concatenate(owners), torch.cat(scored).double().cpu().numpy())
    return totals


@torch.no_grad()
def choice_loglikelihoods(
    model: nn.Module,
    contexts: Sequence[np.ndarray],
    continuations: Sequence[np.ndarray],
    group_sizes: Sequence[int],
    seq_len: int,
    device: torch.device | str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """``loglikelihoods`` of requests that come in groups sharing one context (an item's choices, in order).

    A model with ``logits_packed`` (our GPT) scores each group in one sequence: the context once, then every
    continuation placed after it (positions restart where the context ends) and attending only to it and to
    itself, so an item's context is encoded once rather than once per choice; a group too long for ``seq_len``,
    and any other model, goes through ``loglikelihoods`` (the same numbers, up to float rounding)."""
    device = torch.device(device) if device is not None else _device_of(model)
    starts = np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int64)
    if starts[-1] != len(contexts):
        raise ValueError("group sizes do not add up to the requests")
    packable, rest = [], []
    for g in range(len(group_sizes)):
        members = range(starts[g], starts[g + 1])
        longest = max(len(continuations[r]) for r in members)
        fits = hasattr(model, "logits_packed") and len(contexts[starts[g]]) + longest - 1 <= seq_len
        (packable if fits else rest).append(g)
    totals = np.zeros(len(contexts), dtype=np.float64)
    rest_requests = [r for g in rest for r in range(starts[g], starts[g + 1])]
    if rest_requests:
        pick = [contexts[r] for r in rest_requests], [continuations[r] for r in rest_requests]
        totals[rest_requests] = loglikelihoods(model, *pick, seq_len, device, batch_size)
    if not packable:
        return totals

    def width(g: int) -> int:
        return len(contexts[starts[g]]) + sum(len(continuations[r]) for r in range(starts[g], starts[g + 1]))

    packable.sort(key=lambda g: -width(g))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with evaluating(model):
        first, scored, owners = 0, [], []
        while first < len(packable):
            w = width(packable[first])
            batch = packable[first : first + max(1, min(batch_size, MAX_BATCH_TOKENS // w))]
            first += len(batch)
            x = np.zeros((len(batch), w), dtype=np.int64)
            pos = np.zeros((len(batch), w), dtype=np.int64)
            seg = np.full((len(batch), w), -1, dtype=np.int64)  # 0: context, j + 1: continuation j, -1: padding
            rows, times, targets = [], [], []
            for row, g in enumerate(batch):
                ctx = contexts[starts[g]]
                c = len(ctx)
                x[row, :c], pos[row, :c], seg[row, :c] = ctx, np.arange(c), 0
                at = c
                for j, r in enumerate(range(starts[g], starts[g + 1])):
                    cont = continuations[r]
                    n = len(cont)
                    x[row, at : at + n], pos[row, at : at + n], seg[row, at : at + n] = cont, c + np.arange(n), j + 1
                    rows.append(np.full(n, row))
                    times.append(np.concatenate([[c - 1], np.arange(at, at + n - 1)]))  # what predicts each token
                    targets.append(cont)
                    owners.append(np.full(n, r))
                    at += n
            segs = torch.from_numpy(seg)
            order = torch.arange(w)
            mask = (order[None, None, :] <= order[None, :, None]) & (
                (segs[:, None, :] == 0) | (segs[:, None, :] == segs[:, :, None])
            )
            mask &= (segs >= 0)[:, :, None]
            mask |= torch.eye(w, dtype=torch.bool)[None]  # padding attends to itself (no empty row)
            index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(times), np.concatenate(targets)]))
            index = index.to(device, non_blocking=True)
            x_dev, pos_dev = torch.from_numpy(x).to(device), torch.from_numpy(pos).to(device)
            with autocast:
                logits = model.logits_packed(x_dev, pos_dev, mask.to(device), index[0], index[1])
            logp = F.log_softmax(logits.float(), dim=-1)
            scored.append(logp.gather(1, index[2][:, None])[:, 0])
        np.add.at(totals, np.concatenate(owners), torch.cat(scored).double().cpu().numpy())
    return totals


def score_task(
    model: nn.Module,
    tokenizer: Tokenizer,
    task: Task,
    seq_len: int,
    *,
    shots: int | None = None,
    seed: int = 0,
    bos_id: int | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    n_boot: int = N_BOOT,
) -> TaskResult:
    """Score every item of ``task`` (few-shot prompts from ``Task.render``) and summarise with bootstrap CIs."""
    k = task.shots if shots is None else shots
    n_choices = np.array([len(item.choices) for item in task.items])
    if task.kind == "mc" and n_choices.min() < 2:
        raise ValueError(f"task {task.name}: a multiple-choice item needs at least two choices")
    prompts = [task.render(i, k, seed) for i in range(len(task.items))]
    pairs = [(prompt, text) for i, prompt in enumerate(prompts) for text in task.continuations(i)]
    if task.kind == "mc":  # the same scored text after the same examples, the question removed (calibration)
        for i, prompt in enumerate(prompts):
            bare, moved = task.render_without_question(i, k, seed).rstrip(), prompt[len(prompt.rstrip()) :]
            pairs += [(bare, moved + text) for text in task.continuations(i)]
    ctx, cont, nbytes = encode_pairs(tokenizer, pairs, bos_id)
    if task.kind == "mc":  # an item's choices share its context: encoded once per item
        loglik = choice_loglikelihoods(model, ctx, cont, [*n_choices, *n_choices], seq_len, device, batch_size)
    else:
        loglik = loglikelihoods(model, ctx, cont, seq_len, device, batch_size)
    answers = np.array([item.answer for item in task.items])
    offsets = np.concatenate([[0], np.cumsum(n_choices)[:-1]])
    bits = -loglik[offsets + answers] / LN2
    size = nbytes[offsets + answers].astype(np.float64)
    items: dict[str, np.ndarray] = {"bits": bits, "bytes": size, "bpb": bits / size}
    boot_seed = _seed_of(task.name, seed)
    metrics = {"bpb": bootstrap(bits, size, n_boot=n_boot, seed=boot_seed)}
    null: dict[str, dict[str, float]] = {}
    if task.kind == "mc":
        m = int(n_choices.sum())
        table = choice_table(loglik[:m], loglik[m:], nbytes[:m], n_choices)
        rows = np.arange(len(answers))
        items |= {name: table[name][rows, answers] for name in CHOICE_METRICS}
        items |= {"loglik": loglik[:m], "loglik_noq": loglik[m:], "n_choices": n_choices}
        for name in CHOICE_METRICS:
            metrics[name] = bootstrap(items[name], n_boot=n_boot, seed=boot_seed)
        null = shuffled_key_null(table, n_choices, seed=boot_seed)
    return TaskResult(task.name, task.kind, task.lang, task.style, len(task.items), k, metrics, items, null)


def choice_table(
    loglik: np.ndarray, loglik_noq: np.ndarray, nbytes: np.ndarray, n_choices: np.ndarray
) -> dict[str, np.ndarray]:
    """Every choice metric of every item as if each choice were the key: ``[items, max choices]`` per metric (NaN
    past an item's last choice), so the scores under the real key and under shuffled keys are one gather away."""
    n, width = len(n_choices), int(n_choices.max())
    rows = np.repeat(np.arange(n), n_choices)
    cols = np.arange(len(loglik)) - np.repeat(np.concatenate([[0], np.cumsum(n_choices)[:-1]]), n_choices)
    valid = np.zeros((n, width), dtype=bool)
    valid[rows, cols] = True
    k = n_choices[:, None].astype(np.float64)

    def grid(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((n, width), fill)
        out[rows, cols] = values
        return out

    def margin(ll: np.ndarray) -> np.ndarray:  # lpb of each choice minus the mean lpb of the others
        lpb = grid(ll / LN2 / np.maximum(nbytes, 1), 0.0)
        return np.where(valid, lpb - (lpb.sum(axis=1, keepdims=True) - lpb) / (k - 1), np.nan)

    total = grid(loglik, -np.inf)
    shifted = np.exp(total - total.max(axis=1, keepdims=True))
    p_norm = np.where(valid, shifted / shifted.sum(axis=1, keepdims=True), np.nan)
    per_byte = grid(loglik / np.maximum(nbytes, 1), -np.inf)
    tied = np.isclose(per_byte, per_byte.max(axis=1, keepdims=True), rtol=1e-9, atol=1e-12)
    with_q, without_q = margin(loglik), margin(loglik_noq)
    return {
        "calibrated_margin": with_q - without_q,
        "margin": with_q,
        "p_norm": p_norm,
        "p_norm_skill": (p_norm - 1 / k) / (1 - 1 / k),
        "acc_norm": np.where(valid, tied / tied.sum(axis=1, keepdims=True), np.nan),
    }


def shuffled_key_null(
    table: Mapping[str, np.ndarray], n_choices: np.ndarray, n_null: int = N_NULL, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric's task mean over ``n_null`` answer keys drawn uniformly per item:
    the score this model gets on these items when its preferences carry no information about the key."""
    rng = np.random.default_rng(seed)
    keys = (rng.random((n_null, len(n_choices))) * n_choices).astype(np.int64)
    rows = np.arange(len(n_choices))
    out = {}
    for name, grid in table.items():
        means = grid[rows, keys].mean(axis=1)
        out[name] = {"mean": float(means.mean()), "sd": float(means.std(ddof=1))}
    return out


def bootstrap_samples(
    values: np.ndarray, weights: np.ndarray | None = None, n_boot: int = N_BOOT, seed: int = 0
) -> np.ndarray:
    """``n_boot`` resampled statistics: the mean of ``values``, or ``sum(values) / sum(weights)`` (a ratio such as
    bits per byte).  Items are drawn with replacement, vectorised in chunks; the same seed and item count draw the
    same items, which makes the difference of two models' samples a paired bootstrap."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // max(n, 1))
    out = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        num = values[idx].sum(axis=1)
        out.append(num / (np.asarray(weights, dtype=np.float64)[idx].sum(axis=1) if weights is not None else n))
    return np.concatenate(out)


def bootstrap(values: np.ndarray, weights: np.ndarray | None = None, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """The statistic of ``bootstrap_samples`` on all items, with the 2.5th and 97.5th percentiles of its samples."""
    values = np.asarray(values, dtype=np.float64)
    point = values.sum() / (np.sum(weights) if weights is not None else len(values))
    lo, hi = np.percentile(bootstrap_samples(values, weights, n_boot, seed), [2.5, 97.5])
    return Estimate(float(point), float(lo), float(hi))


def composite(
    results: Mapping[str, TaskResult],
    tasks: Sequence[str],
    metric: str = "calibrated_margin",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Unweighted mean over ``tasks`` of their mean per-item ``metric``; its CI resamples each task's items (with
    that task's bootstrap seed, as its own CI does) and averages the resampled means."""
    points, samples = [], []
    for name in tasks:
        if name not in results:
            raise ValueError(f"composite needs task {name!r}, which was not evaluated")
        if metric not in results[name].items:
            raise ValueError(f"composite: task {name} has no per-item {metric!r} (a {results[name].kind} task)")
        values = results[name].items[metric]
        points.append(float(values.mean()))
        samples.append(bootstrap_samples(values, n_boot=n_boot, seed=_seed_of(name, seed)))
    lo, hi = np.percentile(np.mean(samples, axis=0), [2.5, 97.5])
    return Estimate(float(np.mean(points)), float(lo), float(hi))


def evaluate(
    model: nn.Module,
    tokenizer: Tokenizer,
    tasks: Sequence[Task],
    seq_len: int,
    *,
    shots: Mapping[str, int | None] | None = None,
    seed: int = 0,
    bos_id: int | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    n_boot: int = N_BOOT,
    progress: Callable[[TaskResult], None] | None = None,
) -> dict[str, TaskResult]:
    """Score each task in turn (``shots`` per task name overrides the task's default)."""
    results = {}
    for task in tasks:
        k = (shots or {}).get(task.name)
        results[task.name] = score_task(
            model,
            tokenizer,
            task,
            seq_len,
            shots=k,
            seed=seed,
            bos_id=bos_id,
            device=device,
            batch_size=batch_size,
            n_boot=n_boot,
        )
        if progress is not None:
            progress(results[task.name])
    return results


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _seed_of(name: str, seed: int) -> int:
    """A bootstrap seed per task, stable across processes (``hash`` of a str is not)."""
    return zlib.crc32(name.encode()) + seed

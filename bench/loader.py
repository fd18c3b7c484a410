"""Loader throughput: ``PackedDataset`` (0, 1 and 2 DataLoader workers) vs nanoGPT's memmap ``get_batch`` over the
same tokens (our nanoGPT export), and vs MosaicML ``StreamingDataset`` over our MDS export in its own venv.

Tokens are training tokens (``batch x seq_len`` per batch) for every reader, counted after the first batch so
that process start-up is left out; every reader hands the trainer the same thing: int64 ``x`` and ``y`` of shape
``[64, 1024]`` (ours widens its int32 tokens in the trainer's process, inside the timing, though a GPU trainer
widens them on the device).  Ours also hands over each token's source and language.  Each figure is the best of
three rounds that run every reader in turn, so that each meets the shared machine's quieter moments.  With
workers, a DataLoader shipping prebuilt batches of our layout shows what inter-process transfer alone allows.  The
last row compares the slowest DataLoader setting with what our ``base`` GPT (109.5M) consumed on one H100.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from bench.harness import Row
from dataengine.export import export
from dataengine.export.mds import streaming_python
from dataengine.shards.loader import PackedDataset

SEQ, BATCH = 1024, 64  # llm.c's micro-batch for GPT-2 124M on one H100 (-b 64 -t 1024)
BATCHES = 2000  # 131M tokens: seven epochs of the default build (18M), so buffer loads weigh in fully
REPEATS = 3
# Measured: ``pretrain.train --model base`` (109.5M, bf16, compiled, B=32x1024) on one H100 80GB HBM3, 41.5% MFU
# (README, "Pretraining").  A GPT-2 124M at 50% MFU would take about 0.58M tokens/s.
GPU_TOKENS_PER_S = 532e3
REPO = Path(__file__).resolve().parent.parent


def bench_output() -> Path:
    """``$DATAENGINE_BENCH_OUT``, else ``out/code30`` (built with the README's command when missing)."""
    out = Path(os.environ.get("DATAENGINE_BENCH_OUT") or REPO / "out" / "code30")
    if not (out / "manifest.json").exists():
        cmd = [sys.executable, "-m", "pipelines.build", "--mix", "code30", "--out", str(out)]
        subprocess.run(cmd, check=True, cwd=REPO)
    return out


def _memmap_rate(path: Path, batches: int) -> float:
    """nanoGPT's ``get_batch`` (``train.py``): a fresh memmap per call, random offsets, x and y as int64."""

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        data = np.memmap(path, dtype=np.uint16, mode="r", offset=1024)  # after the llm.c header
        ix = torch.randint(len(data) - SEQ, (BATCH,))
        x = torch.stack([torch.from_numpy((data[i : i + SEQ]).astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy((data[i + 1 : i + 1 + SEQ]).astype(np.int64)) for i in ix])
        return x, y

    get_batch()
    start = time.perf_counter()
    for _ in range(batches):
        get_batch()
    return batches * BATCH * SEQ / (time.perf_counter() - start)


def _ours_rate(out: Path, workers: int, batches: int) -> float:
    it = iter(PackedDataset(out, seq_len=SEQ, batch_size=BATCH).loader(num_workers=workers))
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        tokens = next(it)["tokens"].long()
        x, y = tokens[:, :-1], tokens[:, 1:]
    assert x.shape == y.shape == (BATCH, SEQ) and x.dtype == torch.int64
    return batches * BATCH * SEQ / (time.perf_counter() - start)


class _Prebuilt(IterableDataset):
    """Batches of our layout that cost nothing to make: what a DataLoader worker can ship at most."""

    def __iter__(self) -> Iterator[dict]:
        batch, n = 0, BATCH * (SEQ + 1)
        while True:
            packed = torch.ones(n * 8, dtype=torch.uint8)  # written, as ours are: int32 tokens, int16 sources, langs
            tokens = packed[: 4 * n].view(torch.int32).view(BATCH, SEQ + 1)
            sources, langs = packed[4 * n :].view(torch.int16).view(2, BATCH, SEQ + 1)
            yield {"tokens": tokens, "sources": sources, "langs": langs, "batch": batch}
            batch += 1


def _ceiling_rate(workers: int, batches: int) -> float:
    it = iter(DataLoader(_Prebuilt(), batch_size=None, num_workers=workers))
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)["tokens"].long()
    return batches * BATCH * SEQ / (time.perf_counter() - start)


READ_MDS = """
import json, sys, time
from streaming import StreamingDataset

dataset = StreamingDataset(local=sys.argv[1], shuffle=True, shuffle_seed=0, batch_size=int(sys.argv[2]))
samples = iter(dataset)
next(samples)
tokens, start = 0, time.perf_counter()
for sample in samples:
    tokens += len(sample["tokens"])
print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - start}))
"""


def _streaming_rate(python: Path, mds: Path) -> float:
    done = subprocess.run(
        [str(python), "-c", READ_MDS, str(mds), str(BATCH)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["tokens"] / result["seconds"]


def run() -> list[Row]:
    torch.set_num_threads(1)  # every reader alike: on a shared 2-core box torch's thread pool costs ms per small op
    out = bench_output()
    work = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    try:
        export(out, "nanogpt", work / "nanogpt")
        (memmap_file,) = sorted((work / "nanogpt").glob("train_*.bin"))
        python = streaming_python(create=False)
        if python is not None:
            export(out, "mds", work / "mds")
        runs: dict[str, Callable[[], float]] = {
            "memmap": lambda: _memmap_rate(memmap_file, BATCHES),
            **{f"ours{w}": lambda w=w: _ours_rate(out, w, BATCHES) for w in (0, 1, 2)},
            **{f"ceiling{w}": lambda w=w: _ceiling_rate(w, BATCHES) for w in (1, 2)},
        }
        if python is not None:
            runs["streaming"] = lambda: _streaming_rate(python, work / "mds")
        best: dict[str, float] = {}
        for _ in range(REPEATS):  # rounds of every reader, so that each meets the machine's quieter moments
            for name, measure in runs.items():
                best[name] = max(best.get(name, 0.0), measure())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    memmap, streaming = best["memmap"], best.get("streaming")
    ours = {w: best[f"ours{w}"] for w in (0, 1, 2)}
    ceiling = {w: best[f"ceiling{w}"] for w in (1, 2)}
    shape = f"B={BATCH}, seq {SEQ}"
    rows = [
        Row(f"loader, {w} DataLoader worker(s), {shape}", ours[w] / 1e6, "nanoGPT memmap get_batch", memmap / 1e6,
            "M tokens/s")
        for w in (0, 1, 2)
    ]  # fmt: skip
    rows += [
        Row(f"loader, {w} DataLoader worker(s), {shape}", ours[w] / 1e6, "same DataLoader shipping prebuilt batches",
            ceiling[w] / 1e6, "M tokens/s")
        for w in (1, 2)
    ]  # fmt: skip
    if streaming is not None:
        rows.append(
            Row("loader in process (packs, shuffles) vs raw MDS documents", ours[0] / 1e6,
                "streaming.StreamingDataset (MDS export)", streaming / 1e6, "M tokens/s")
        )  # fmt: skip
    rows.append(
        Row("slowest DataLoader setting (1 or 2 workers) vs a GPU's need", min(ours[1], ours[2]) / 1e6,
            "base GPT (109.5M) training on one H100 (measured)", GPU_TOKENS_PER_S / 1e6, "M tokens/s")
    )  # fmt: skip
    return rows

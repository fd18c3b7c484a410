"""The streaming loader on small real build outputs: every token once over ranks x workers, exact resume,
seeded order, a non-local filesystem, and load-time mixing with a schedule."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.fs as pafs
import pytest
import torch

from dataengine.shards.loader import PAD_SOURCE, Mix, PackedDataset
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import iter_batches, iter_documents
from tests.test_inspect import build_output

SEQ = 127
BATCH = 4


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loader") / "code30"
    build_output(path, n_shards=6)
    return path


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mix")
    build_output(root / "code", only=("code",), n_shards=3)
    build_output(root / "text", only=("web_en", "web_zh"), n_shards=3)
    return {"code": root / "code", "text": root / "text"}


def take(batches: object, n: int | None = None) -> list[dict]:
    """The first ``n`` batches (all if None), with tensors copied out of shared memory."""
    got = []
    for batch in batches:  # type: ignore[attr-defined]
        got.append({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
        if n is not None and len(got) == n:
            break
    return got


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) if k != "batch" else x[k] == y[k] for k in x)
        for x, y in zip(a, b, strict=True)
    )


def stream(batches: list[dict]) -> tuple[np.ndarray, ...]:
    """Rows laid end to end, padding dropped: tokens, sources, positions and languages of a rank's stream."""
    fields = [torch.cat([b[k] for b in batches]).flatten().numpy() for k in ("tokens", "sources", "positions", "langs")]
    keep = fields[1] != PAD_SOURCE
    return tuple(f[keep] for f in fields)


def test_ranks_times_workers_see_every_token_once(out: Path) -> None:
    manifest = load_manifest(out)
    eos = manifest["tokenizer"]["eos_id"]
    kw = {"seq_len": SEQ, "batch_size": BATCH, "epochs": 1, "return_positions": True, "buffer_shards": 2}
    single = take(PackedDataset(out, **kw).loader())
    per_rank = []
    for rank in range(2):
        ds = PackedDataset(out, rank=rank, world_size=2, **kw)
        batches = take(ds.loader(num_workers=2))
        assert len(batches) == ds.num_batches  # the same count on every rank: no DDP rank waits alone
        assert [b["batch"] for b in batches] == list(range(len(batches)))
        assert same(batches, take(PackedDataset(out, rank=rank, world_size=2, **kw)))  # workers change nothing
        per_rank.append(stream(batches))
    tokens, sources, positions, langs = (np.concatenate(parts) for parts in zip(*per_rank, strict=True))
    one = stream(single)
    assert all(np.array_equal(a, b) for a, b in zip((tokens, sources, positions, langs), one, strict=True))
    assert single[0]["tokens"].dtype == torch.int32 and single[0]["langs"].dtype == torch.int16

    starts = np.flatnonzero(positions == 0)
    assert starts[0] == 0 and len(tokens) == manifest["totals"]["tokens"] + manifest["totals"]["rows"]
    names, lang_names = ds.sources, [*ds.langs, None]  # lang id -1: none
    assert ds.langs == ["c", "en", "python", "zh"]
    seen = Counter()
    for lo, hi in zip(starts, [*starts[1:], len(tokens)], strict=True):
        assert tokens[hi - 1] == eos and len(set(sources[lo:hi])) == len(set(langs[lo:hi])) == 1
        assert np.array_equal(positions[lo:hi], np.arange(hi - lo))
        seen[(names[sources[lo]], lang_names[langs[lo]], tuple(tokens[lo : hi - 1].tolist()))] += 1
    expected = Counter((d["source"], d["lang"], tuple(d["tokens"])) for d in iter_documents(out))
    assert seen == expected and None in {lang for _, lang, _ in expected}  # documents without a language too


DDP_RANK = """
import sys, torch, torch.distributed as dist
from dataengine.shards.loader import PackedDataset

out, init, rank, dump = sys.argv[1:]
dist.init_process_group("gloo", init_method=f"file://{init}", rank=int(rank), world_size=2)
ds = PackedDataset(out, seq_len=127, batch_size=4, epochs=1)
torch.save({"rank": ds.rank, "world_size": ds.world_size, "tokens": next(iter(ds))["tokens"]}, dump)
dist.destroy_process_group()
"""


def test_rank_and_world_size_default_to_the_process_group(out: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-c", DDP_RANK, str(out), str(tmp_path / "init")]
    procs = [
        subprocess.Popen([*args, str(r), str(tmp_path / f"{r}.pt")], stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        assert (got["rank"], got["world_size"]) == (rank, 2)
        explicit = PackedDataset(out, seq_len=127, batch_size=4, epochs=1, rank=rank, world_size=2)
        assert torch.equal(got["tokens"], next(iter(explicit))["tokens"])


def test_resume_gives_the_batches_an_uninterrupted_run_gives(two_outputs: dict[str, Path], out: Path) -> None:
    mix = Mix({"code": 0.3, "text": 0.7}, [(30, {"code": 0.3, "text": 0.7}), (60, {"code": 0.05, "text": 0.95})])
    cases = [
        (out, {"seq_len": SEQ, "batch_size": 16, "buffer_shards": 2, "return_positions": True}),
        (two_outputs, {"seq_len": 63, "batch_size": 8, "mix": mix}),
    ]
    for outputs, kw in cases:
        ds = PackedDataset(outputs, **kw)
        n = 5 * min(o.span for o in ds.outputs) // (2 * ds.window * ds.batch_size)  # past two epochs
        whole = take(PackedDataset(outputs, **kw).loader(num_workers=2), n)
        first = PackedDataset(outputs, **kw)
        head = take(first.loader(num_workers=2), n // 3)
        saved = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
        assert saved["batches"] == n // 3
        resumed = PackedDataset(outputs, **kw)
        resumed.load_state_dict(saved)
        tail = take(resumed.loader(num_workers=1), n - n // 3)  # another worker count: same batches
        assert same(head + tail, whole)
        again = PackedDataset(outputs, **kw)
        again.load_state_dict(saved)
        assert same(take(again, 3), whole[n // 3 : n // 3 + 3])  # and without a DataLoader


def test_state_refuses_other_data_or_settings(out: Path, two_outputs: dict[str, Path]) -> None:
    state = PackedDataset(out, seq_len=SEQ, batch_size=BATCH).state_dict()
    for other, key in [
        (PackedDataset(out, seq_len=SEQ + 1, batch_size=BATCH), "seq_len"),
        (PackedDataset(out, seq_len=SEQ, batch_size=BATCH, rank=0, world_size=2), "world_size"),
        (PackedDataset(two_outputs["code"], seq_len=SEQ, batch_size=BATCH), "outputs"),
    ]:
        with pytest.raises(ValueError, match=key):
            other.load_state_dict(state)
    rank1 = PackedDataset(out, seq_len=SEQ, batch_size=BATCH, rank=1, world_size=2)
    rank1.load_state_dict(PackedDataset(out, seq_len=SEQ, batch_size=BATCH, rank=0, world_size=2).state_dict())


def test_order_is_seeded_and_changes_every_epoch(out: Path) -> None:
    kw = {"seq_len": SEQ, "batch_size": BATCH, "epochs": 2}
    a = take(PackedDataset(out, seed=0, **kw))
    assert same(a, take(PackedDataset(out, seed=0, **kw)))
    assert not torch.equal(a[0]["tokens"], take(PackedDataset(out, seed=1, **kw), 1)[0]["tokens"])
    flat = torch.cat([b["tokens"][b["sources"] != PAD_SOURCE] for b in a])
    epoch = PackedDataset(out, **kw).outputs[0].epoch_tokens
    assert len(flat) == 2 * epoch
    first, second = flat[:epoch], flat[epoch:]
    assert torch.equal(first.sort().values, second.sort().values) and not torch.equal(first, second)


def test_buffer_shuffle_interleaves_documents_of_its_shards(out: Path) -> None:
    shard_of = {tuple(d["tokens"]): path for path, _, batch in iter_batches(out) for d in batch.to_pylist()}
    tokens, _, positions, _ = stream(take(PackedDataset(out, seq_len=SEQ, batch_size=BATCH, epochs=1,
                                                     buffer_shards=3, return_positions=True)))  # fmt: skip
    starts = [*np.flatnonzero(positions == 0), len(tokens)]
    docs = [tuple(tokens[lo : hi - 1].tolist()) for lo, hi in zip(starts, starts[1:], strict=False)]
    first_buffer = [shard_of[d] for d in docs[: len(docs) // 4]]
    assert len(set(first_buffer[:20])) >= 2  # documents of the buffer's shards are interleaved ...
    assert len(set(first_buffer)) <= 3  # ... and come from that buffer's shards only


def test_reads_a_non_local_filesystem(out: Path) -> None:
    memory = fsspec.filesystem("memory")
    for path in out.rglob("*"):
        if path.is_file():
            memory.pipe(f"/loader-test/code30/{path.relative_to(out).as_posix()}", path.read_bytes())
    kw = {"seq_len": SEQ, "batch_size": BATCH, "epochs": 1}
    local = take(PackedDataset(out, **kw))
    assert same(take(PackedDataset("memory://loader-test/code30", **kw)), local)
    assert same(take(PackedDataset("/loader-test/code30", filesystem=memory, **kw)), local)
    subtree = pafs.SubTreeFileSystem(str(out.parent), pafs.LocalFileSystem())  # a pyarrow.fs filesystem
    assert same(take(PackedDataset("code30", filesystem=subtree, **kw)), local)
    assert same(take(PackedDataset(out.as_uri(), **kw)), local)
    with pytest.raises(ValueError, match="no manifest.json"):
        PackedDataset("memory://loader-test/nothing", **kw)


def test_mix_follows_weights_and_schedule(two_outputs: dict[str, Path]) -> None:
    anneal = [(40, {"code": 0.3, "text": 0.7}), (60, {"code": 0.1, "text": 0.9})]
    ds = PackedDataset(two_outputs, seq_len=63, batch_size=8, mix=Mix({"code": 0.3, "text": 0.7}, anneal))
    batches = take(ds, 100)
    code = ds.sources.index("code")
    is_code = torch.stack([(b["sources"] == code).all(dim=1) for b in batches])  # [batches, rows]
    assert ((torch.stack([b["sources"] for b in batches]) == code).any(dim=2) == is_code).all()  # windows are pure
    for lo, hi, share in [(0, 40, 0.3), (60, 100, 0.1)]:
        windows = (hi - lo) * 8
        assert abs(int(is_code[lo:hi].sum()) - share * windows) <= 2  # within two windows of the target
    report = ds.mix_report()
    assert report["code"]["target_share"] == pytest.approx(0.3 * 0.4 + 0.2 * 0.2 + 0.1 * 0.4, abs=0.01)
    for name in ("code", "text"):
        assert abs(report[name]["realised_share"] - report[name]["target_share"]) * 800 <= 2
    assert report["code"]["tokens"] == int(is_code.sum()) * 64 and report["code"]["epochs"] > 0
    with pytest.raises(ValueError, match="need mix weights"):
        PackedDataset(two_outputs, seq_len=63, batch_size=8)
    with pytest.raises(ValueError, match="outputs are"):
        PackedDataset(two_outputs, seq_len=63, batch_size=8, mix=Mix({"code": 1.0}))
    assert Mix.from_config(Mix({"code": 0.3, "text": 0.7}, anneal).to_config()) == Mix(
        {"code": 0.3, "text": 0.7}, anneal
    )

"""The GPT, its trainer and held-out bits per byte: CPU, the debug model, small real build outputs made here."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import torch

from dataengine.shards.loader import PackedDataset
from dataengine.shards.reader import read_shard
from pretrain.heldout import held_out_bpb
from pretrain.model import (
    GPT,
    SIZES,
    choose_size,
    chunked_cross_entropy,
    load_checkpoint,
    model_config,
    non_embedding_params,
    param_count,
)
from pretrain.train import TrainConfig, lr_at, parse_tokens, train
from tests.test_inspect import build_output

FAST = {"device": "cpu", "model": "debug", "seq_len": 64, "batch_size": 8, "num_workers": 0, "lr": 1e-2, "min_lr": 1e-3}


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """code, web_en and web_zh; web_en and web_zh have held-out documents."""
    out = tmp_path_factory.mktemp("output")
    build_output(out, n_shards=4)
    return out


@pytest.fixture(scope="module")
def zh_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """web_zh alone: a few hundred training tokens, so a few dozen steps see each of them many times."""
    out = tmp_path_factory.mktemp("zh")
    build_output(out, only=("web_zh",), n_shards=1)
    return out


@pytest.fixture(scope="module")
def zh_run(zh_output: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = tmp_path_factory.mktemp("runs") / "zh"
    return train({**FAST, "data": str(zh_output), "out": str(run), "tokens": "20k", "log_every": 1})


def records(run_dir: str | Path, kind: str) -> list[dict[str, Any]]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def vocab(out: Path) -> int:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))["tokenizer"]["vocab_size"]


def test_debug_model_overfits_a_tiny_shard(zh_run: dict[str, Any], zh_output: Path) -> None:
    losses = [r["loss"] for r in records(zh_run["run_dir"], "train")]
    assert zh_run["steps"] == len(losses) == 40  # 20k tokens / (8 x 64) per step, rounded up
    assert losses[0] > 0.9 * math.log(vocab(zh_output))  # starts near uniform
    assert losses[-1] < 0.5 * losses[0]
    assert records(zh_run["run_dir"], "train")[-1]["loss_by_source"].keys() == {"web_zh"}


def test_resume_reproduces_the_uninterrupted_run(output: Path, tmp_path: Path) -> None:
    settings = {**FAST, "data": str(output), "tokens": "1M", "max_steps": 8, "grad_accum": 2, "log_every": 1}
    settings |= {"eval_every": 0, "ckpt_every": 0}
    straight = train({**settings, "out": str(tmp_path / "a")})
    first = train({**settings, "out": str(tmp_path / "b"), "stop_at": 4})
    assert (first["steps"], first["complete"]) == (4, False)
    resumed = train({**settings, "out": str(tmp_path / "b"), "resume": True, "num_workers": 2})
    losses = [r["loss"] for r in records(tmp_path / "a", "train")]
    assert len(losses) == 8
    assert [r["loss"] for r in records(tmp_path / "b", "train")] == losses
    assert resumed["final_loss"] == straight["final_loss"]
    model_a, ckpt_a = load_checkpoint(tmp_path / "a" / "ckpt.pt")
    model_b, ckpt_b = load_checkpoint(tmp_path / "b" / "ckpt.pt")
    assert ckpt_a["step"] == ckpt_b["step"] == 8 and ckpt_a["loader"] == ckpt_b["loader"]
    assert all(
        torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True)
    )
    assert records(tmp_path / "b", "eval")[-1]["held_out"] == records(tmp_path / "a", "eval")[-1]["held_out"]
    with pytest.raises(ValueError, match="lr="):
        train({**settings, "out": str(tmp_path / "b"), "resume": True, "lr": 2e-2})


def test_training_loss_per_language(output: Path, tmp_path: Path) -> None:
    """Train records carry the loss of each ``source/language`` of the logged step's target tokens."""
    settings = {**FAST, "data": str(output), "out": str(tmp_path / "run"), "tokens": "1M", "max_steps": 3}
    train({**settings, "log_every": 1, "eval_every": 0, "ckpt_every": 0, "seed": 0})
    dataset = PackedDataset(output, FAST["seq_len"], FAST["batch_size"], seed=0)
    for r, batch in zip(records(tmp_path / "run", "train"), dataset, strict=False):
        sources, langs = batch["sources"][:, 1:], batch["langs"][:, 1:]
        pairs = {(int(s), int(g)) for s, g in zip(sources.flatten(), langs.flatten(), strict=True) if g >= 0}
        names = {f"{dataset.sources[s]}/{dataset.langs[g]}" for s, g in pairs}
        by_lang, by_source = r["loss_by_lang"], r["loss_by_source"]
        assert set(by_lang) == names and names <= {"code/python", "code/c", "web_en/en", "web_zh/zh"}
        assert all(abs(v - math.log(vocab(output))) < 0.5 for v in by_lang.values())  # near uniform, untrained
        code = [v for name, v in by_lang.items() if name.startswith("code/")]
        if code:  # every code token has a language: the source's loss is a mean of theirs
            assert min(code) - 1e-9 <= by_source["code"] <= max(code) + 1e-9


def test_held_out_bpb_per_source(output: Path, zh_output: Path, zh_run: dict[str, Any]) -> None:
    torch.manual_seed(0)
    untrained = GPT(model_config("debug", vocab(output), 64))
    result = held_out_bpb(untrained, output, "cpu")
    assert set(result) == {"web_en", "web_zh"}  # the sources with a held-out slice
    for source, r in result.items():
        texts = read_shard(output / "held_out" / f"{source}.arrow")["text"].to_pylist()
        assert 0 < r["bpb"] < math.inf and r["docs"] == r["docs_total"] == 2 and not r["capped"]
        assert r["bytes"] == sum(len(t.encode()) for t in texts)
        assert abs(r["loss"] - math.log(vocab(output))) < 0.1  # an untrained model is near uniform
        assert r["bpb_ci95"][0] <= r["bpb"] <= r["bpb_ci95"][1]  # over its two documents
    assert held_out_bpb(untrained, output, "cpu") == result  # deterministic
    shorter = held_out_bpb(untrained, output, "cpu", seq_len=16)  # more windows, every prediction once
    assert {s: r["tokens"] for s, r in shorter.items()} == {s: r["tokens"] for s, r in result.items()}
    capped = held_out_bpb(untrained, output, "cpu", max_tokens_per_source=1)
    assert all(r["docs"] == 1 and r["capped"] for r in capped.values())

    trained, checkpoint = load_checkpoint(Path(zh_run["run_dir"]) / "ckpt.pt")
    assert checkpoint["tokenizer"] == (zh_output / "tokenizer.json").read_text(encoding="utf-8")
    torch.manual_seed(0)
    untrained_zh = GPT(trained.config)
    after = held_out_bpb(trained, zh_output, "cpu")["web_zh"]["bpb"]
    assert after < 0.5 * held_out_bpb(untrained_zh, zh_output, "cpu")["web_zh"]["bpb"]
    assert records(zh_run["run_dir"], "eval")[-1]["held_out"]["web_zh"]["bpb"] == pytest.approx(after)


def test_held_out_bpb_per_language(output: Path, tmp_path: Path) -> None:
    """Where a held-out file has a ``lang`` column, each language gets its own entry beside the source's."""
    out = tmp_path / "out"
    shutil.copytree(output, out)
    path = out / "held_out" / "web_en.arrow"
    table = read_shard(path)
    assert len(table) == 2
    table = table.set_column(table.schema.get_field_index("lang"), "lang", pa.array(["en", None], pa.string()))
    rewritten = path.with_name("web_en.tmp")  # not in place: ``table`` is memory-mapped from ``path``
    with pa.OSFile(str(rewritten), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    rewritten.replace(path)
    torch.manual_seed(0)
    result = held_out_bpb(GPT(model_config("debug", vocab(out), 64)), out, "cpu")
    assert set(result) == {"web_en", "web_en/en", "web_zh"}  # nulls are in no language; web_zh's are all null
    assert result["web_en/en"]["docs"] == 1 and result["web_en/en"]["tokens"] < result["web_en"]["tokens"]
    assert set(held_out_bpb(GPT(model_config("debug", vocab(out), 64)), out, "cpu", group_by_lang=False)) == {
        "web_en",
        "web_zh",
    }


def test_held_out_bpb_of_the_pages_with_code(output: Path, tmp_path: Path) -> None:
    """A text source whose held-out pages partly carry code blocks gets a ``with code`` entry for those pages;
    one where none (or all) do gets none."""
    out = tmp_path / "out"
    shutil.copytree(output, out)
    for source, shares in (("web_en", [0.4, 0.0]), ("web_zh", [0.0, 0.0])):
        path = out / "held_out" / f"{source}.arrow"
        table = read_shard(path).append_column("code_share", pa.array(shares, pa.float32()))
        rewritten = path.with_name(f"{source}.tmp")  # not in place: the table is memory-mapped from ``path``
        with pa.OSFile(str(rewritten), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        rewritten.replace(path)
    torch.manual_seed(0)
    result = held_out_bpb(GPT(model_config("debug", vocab(out), 64)), out, "cpu")
    assert set(result) == {"web_en", "web_en/with code", "web_zh"}
    first = read_shard(out / "held_out" / "web_en.arrow").sort_by("id")
    with_code = first.filter(pa.compute.greater(first["code_share"], 0))["text"].to_pylist()
    assert result["web_en/with code"]["docs"] == result["web_en/with code"]["docs_total"] == 1
    assert result["web_en/with code"]["bytes"] == sum(len(t.encode()) for t in with_code)


def test_cli_runs_and_refuses_an_existing_run(output: Path, tmp_path: Path) -> None:
    config = tmp_path / "debug.yaml"
    config.write_text("seq_len: 64\nbatch_size: 8\nnum_workers: 0\nlog_every: 10\neval_tokens: 50k\nckpt-every: 15\n")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "pretrain.train", "--data", str(output), "--model", "debug", "--tokens", "20k"]
    command += ["--config", str(config), "--out", str(run), "--device", "cpu", "--keep-checkpoints", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "= 40 steps" in done.stdout.splitlines()[0]
    assert [r["step"] for r in records(run, "train")] == [10, 20, 30, 40]
    assert set(records(run, "eval")[-1]["held_out"]) == {"web_en", "web_zh"}
    (summary,) = records(run, "summary")
    assert summary == {"kind": "summary", **json.loads((run / "summary.json").read_text(encoding="utf-8"))}
    assert summary["steps"] == 40 and summary["tokens"] == 40 * 8 * 64 and summary["mfu"] is None
    model, checkpoint = load_checkpoint(run / "ckpt.pt")
    assert checkpoint["step"] == 40 and checkpoint["config"]["train"]["seq_len"] == 64
    assert checkpoint["eos_id"] == json.loads((output / "manifest.json").read_text())["tokenizer"]["eos_id"]
    assert not model.training
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-30.pt", "ckpt-40.pt"]  # every 15 and the end

    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_choose_size_follows_chinchilla_on_non_embedding_parameters() -> None:
    counts = {name: non_embedding_params(config) for name, config in SIZES.items()}
    assert counts["tiny"] == param_count(SIZES["tiny"]) - 32_000 * 256  # tiny's embedding is 8.2M of its 11.4M
    for name in ("tiny", "small", "base"):
        assert choose_size(20 * counts[name]) == name
    for tokens, name in ((50_000_000, "tiny"), (400_000_000, "small"), (2_000_000_000, "base")):
        assert choose_size(tokens) == name
        assert 1 / 1.5 < counts[name] / (tokens / 20) < 1.5  # within 1.5x of 20 tokens per parameter
    assert counts["debug"] < counts["tiny"] < counts["small"] < counts["base"]


def test_model_is_causal_tied_and_counted() -> None:
    config = model_config("debug", vocab_size=100, seq_len=16)
    torch.manual_seed(0)
    model = GPT(config)
    assert model.num_params() == param_count(config)
    assert model.flops_per_token() == 6 * model.num_params() + 12 * 2 * 32 * 16
    idx = torch.randint(0, 100, (2, 16))
    logits = model(idx)
    assert logits.shape == (2, 16, 100) and logits.dtype == torch.float32
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 100
    assert torch.equal(model(changed)[:, :10], logits[:, :10])  # no position sees the future
    assert not torch.equal(model(changed)[:, 10:], logits[:, 10:])
    targets = idx.roll(-1, dims=1)
    targets[:, -1] = -1
    losses = model.token_losses(idx, targets)
    assert losses.shape == (2, 16) and torch.all(losses[:, -1] == 0) and torch.all(losses[:, :-1] > 0)
    with torch.no_grad():
        model.embed.weight[5] += 1.0  # the output head is the embedding
    assert not torch.equal(model(idx)[..., 5], logits[..., 5])


def test_chunked_loss_equals_the_full_logits_loss_in_value_and_gradient() -> None:
    """The loss by chunks of positions, logits recomputed in backward, is the loss of the full [B, T, V] logits."""
    torch.manual_seed(0)
    hidden = torch.randn(3, 10, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (3, 10))
    targets[1, 4:] = -1  # padding: loss 0, no gradient
    full = torch.nn.functional.cross_entropy(
        (hidden @ weight.T).flatten(0, 1), targets.flatten(), ignore_index=-1, reduction="none"
    ).view_as(targets)
    full.sum().backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    chunked = chunked_cross_entropy(hidden, weight, targets, chunk=7)  # 30 positions: 7 + 7 + 7 + 7 + 2
    chunked.sum().backward()
    torch.testing.assert_close(chunked, full)
    torch.testing.assert_close((hidden.grad, weight.grad), grads)
    with torch.no_grad():
        torch.testing.assert_close(chunked_cross_entropy(hidden, weight, targets, chunk=4), full)
    hidden.grad = weight.grad = None
    one_chunk = chunked_cross_entropy(hidden, weight, targets, chunk=64)  # kept, not recomputed
    one_chunk.sum().backward()
    torch.testing.assert_close(one_chunk, full)
    torch.testing.assert_close((hidden.grad, weight.grad), grads)


def test_token_counts_and_schedules() -> None:
    assert parse_tokens("200M") == 200_000_000 and parse_tokens("1.5B") == 1_500_000_000
    assert parse_tokens("50k") == 50_000 and parse_tokens(123) == 123 and parse_tokens("1e6") == 1_000_000
    with pytest.raises(ValueError, match="suffix"):
        parse_tokens("lots")
    with pytest.raises(ValueError, match="--gpu-share must be in"):
        TrainConfig(data="x", tokens=1, gpu_share=0)
    cosine = TrainConfig(data="x", tokens=1, lr=1.0, min_lr=0.1)
    assert lr_at(0, cosine, 100, 10) == pytest.approx(0.1) and lr_at(9, cosine, 100, 10) == 1.0
    assert lr_at(99, cosine, 100, 10) == pytest.approx(0.1, abs=1e-3)
    wsd = TrainConfig(data="x", tokens=1, lr=1.0, min_lr=0.1, schedule="wsd", decay_frac=0.2)
    assert lr_at(50, wsd, 100, 10) == lr_at(79, wsd, 100, 10) == 1.0
    assert lr_at(80, wsd, 100, 10) < 1.0 and lr_at(99, wsd, 100, 10) == pytest.approx(0.1)

"""The trainer's view of a build output: its tokenizer facts and a resumable stream of training batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

from dataengine.shards.loader import PackedDataset, ResumableLoader
from dataengine.shards.manifest import load_manifest


@dataclass(frozen=True)
class DataInfo:
    vocab_size: int
    eos_id: int
    tokenizer_json: str  # copied into every checkpoint, so evaluation needs only the checkpoint
    train_tokens: int  # one epoch of the training split


def data_info(data: str | Path) -> DataInfo:
    manifest = load_manifest(Path(data))
    tok = manifest["tokenizer"]
    tokenizer_path = Path(data) / tok.get("path", "tokenizer.json")
    return DataInfo(
        vocab_size=int(tok["vocab_size"]),
        eos_id=int(tok["eos_id"]),
        tokenizer_json=tokenizer_path.read_text(encoding="utf-8"),
        train_tokens=int(manifest.get("totals", {}).get("tokens", 0)),
    )


def train_loader(
    data: str | Path, seq_len: int, batch_size: int, seed: int, num_workers: int, pin_memory: bool = False
) -> ResumableLoader:
    """Batches of ``[batch_size, seq_len + 1]`` tokens streamed forever; this rank's share under torch.distributed.

    The trainer stops by step count, so the stream never ends (``epochs=None``) and never pads.  ``pin_memory``
    (for CUDA) lets host-to-device copies overlap compute.
    """
    initialised = dist.is_available() and dist.is_initialized()
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if initialised else (0, 1)
    dataset = PackedDataset(data, seq_len, batch_size, seed=seed, rank=rank, world_size=world_size)
    return dataset.loader(num_workers=num_workers, pin_memory=pin_memory)

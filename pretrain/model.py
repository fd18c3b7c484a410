"""A GPT in one file: RoPE, RMSNorm (pre-norm), SDPA attention, SwiGLU MLP, tied embeddings, no biases.

Named sizes (``SIZES``); parameters are totals with the embedding tied to the output head, at a 32,000-token
vocabulary and ``seq_len`` 1024 (RoPE has no parameters, so ``seq_len`` does not change them):

| name  | d_model | n_layer | n_head | mlp hidden |  parameters | of which embedding |
|-------|---------|---------|--------|------------|-------------|--------------------|
| debug |      32 |       2 |      2 |        128 |   1,056,928 |          1,024,000 |
| tiny  |     256 |       4 |      4 |        704 |  11,405,568 |          8,192,000 |
| small |     384 |      10 |      6 |       1024 |  29,990,784 |         12,288,000 |
| base  |     768 |      12 |     12 |       2048 | 109,529,856 |         24,576,000 |

``debug`` is for CPU tests: at the test vocabulary of 1,000 it has 64,928 parameters.  ``base`` is GPT-2 small's
shape; it has 110M rather than 124M parameters because the vocabulary is 32k, not 50k, and RoPE replaces the
learned position table.

Why SwiGLU: at equal parameters and FLOPs (hidden = 8/3 d instead of 4d) it reaches a lower loss than a GELU MLP
(Shazeer 2020, "GLU Variants Improve Transformer"), which is why LLaMA-style models use it; the hidden width is
rounded up to a multiple of 64 for matmul-friendly shapes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from dataengine.atomic import atomic_open

REFERENCE_VOCAB = 32000  # the vocabulary the size table and ``choose_size`` are stated at
LOSS_CHUNK = 8192  # positions per output-head chunk of the loss (see chunked_cross_entropy)
TOKENS_PER_PARAM = 20  # Chinchilla (Hoffmann et al. 2022): compute-optimal training is ~20 tokens per parameter


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = REFERENCE_VOCAB
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    seq_len: int = 1024
    mlp_hidden: int = 0  # 0: 8/3 * d_model rounded up to a multiple of 64 (a SwiGLU as costly as a 4d GELU MLP)
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            raise ValueError(f"d_model {self.d_model} must split into {self.n_head} heads of even width")
        if self.mlp_hidden == 0:
            object.__setattr__(self, "mlp_hidden", 64 * math.ceil(8 * self.d_model / 3 / 64))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


SIZES: dict[str, GPTConfig] = {
    "debug": GPTConfig(n_layer=2, n_head=2, d_model=32),
    "tiny": GPTConfig(n_layer=4, n_head=4, d_model=256),
    "small": GPTConfig(n_layer=10, n_head=6, d_model=384),
    "base": GPTConfig(n_layer=12, n_head=12, d_model=768),
}


def model_config(name: str, vocab_size: int, seq_len: int) -> GPTConfig:
    """The named size at this data's vocabulary and the training sequence length."""
    if name not in SIZES:
        raise ValueError(f"unknown model size {name!r}; known: {', '.join(SIZES)}")
    return replace(SIZES[name], vocab_size=vocab_size, seq_len=seq_len)


def param_count(config: GPTConfig) -> int:
    """Parameters of ``GPT(config)`` without building it (the tied embedding counted once)."""
    d, h = config.d_model, config.mlp_hidden
    per_layer = 4 * d * d + 3 * d * h + 2 * d  # qkv + out projection, SwiGLU gate/up/down, two RMSNorm weights
    return config.vocab_size * d + config.n_layer * per_layer + d  # + the final RMSNorm


def non_embedding_params(config: GPTConfig) -> int:
    """Parameters outside the (tied) embedding: what scaling laws count (Kaplan et al. 2020), since at these sizes
    a 32k embedding is most of a small model (8.2M of tiny's 11.4M) and does little of its computation."""
    return param_count(config) - config.vocab_size * config.d_model


def choose_size(tokens: int, vocab_size: int = REFERENCE_VOCAB) -> str:
    """The size (debug excluded) whose non-embedding parameter count is nearest ``tokens / 20`` in log space
    (Chinchilla's 20 tokens per parameter)."""
    if tokens <= 0:
        raise ValueError(f"a token budget must be positive; got {tokens}")
    target = tokens / TOKENS_PER_PARAM
    counts = {n: non_embedding_params(replace(c, vocab_size=vocab_size)) for n, c in SIZES.items() if n != "debug"}
    return min(counts, key=lambda n: abs(math.log(counts[n] / target)))


def rope_tables(config: GPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``[seq_len, head_dim]`` for rotary position embeddings (Su et al. 2021), rotate-half layout."""
    inv_freq = config.rope_base ** -(torch.arange(0, config.head_dim, 2, dtype=torch.float64) / config.head_dim)
    angles = torch.outer(torch.arange(config.seq_len, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, T, head_dim]`` by its position: pairs (i, i + head_dim/2) turn by the same angle."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Causal self-attention; or, with ``mask`` ``[B, T, T]`` (True: may attend), attention where it allows."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # flash / memory-efficient kernels on GPU
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(config.d_model, 2 * config.mlp_hidden, bias=False)
        self.proj = nn.Linear(config.mlp_hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.mlp(self.mlp_norm(x))


def chunked_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = LOSS_CHUNK
) -> torch.Tensor:
    """Per-position next-token losses ``targets.shape`` (nats; -1 targets give 0) of the output head ``weight``
    without ever holding the ``[B, T, V]`` float32 logits: ``chunk`` positions at a time, and with gradients each
    chunk's logits are recomputed in the backward pass (activation checkpointing) rather than kept, so memory
    holds one chunk's logits (8,192 x 32k x 4 bytes = 1 GiB at most), not all of them (16 GiB at 16 x 8k tokens).
    A batch of one chunk or less keeps its logits instead: the same memory, and no recomputation (the output head
    is most of a small model's work: a CPU step of ``tiny`` at 8 x 512 tokens spent a third of its head time
    recomputing; the values and gradients are bit-identical)."""
    flat_h, flat_t = hidden.flatten(0, 1), targets.flatten()
    recompute = torch.is_grad_enabled() and flat_h.shape[0] > chunk
    parts = []
    for start in range(0, flat_h.shape[0], chunk):
        h, t = flat_h[start : start + chunk], flat_t[start : start + chunk]
        if recompute:
            parts.append(checkpoint(_head_losses, h, weight, t, use_reentrant=False))
        else:
            parts.append(_head_losses(h, weight, t))
    return torch.cat(parts).view_as(targets)


def _head_losses(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(hidden, weight).float(), targets, ignore_index=-1, reduction="none")


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)  # also the output head (tied)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        cos, sin = rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)  # recomputed from the config, not checkpointed
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2: residual-stream output projections scaled by 1/sqrt(2 * n_layer), so the residual's variance
        # does not grow with depth (two residual additions per block)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=config.init_std / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]`` (float32) of the next token; with ``targets``, per-token losses ``[B, T]`` instead.

        The loss lives inside ``forward`` because DDP and ``torch.compile`` wrap ``forward`` only; targets of -1
        are ignored (loss 0), as padding is.
        """
        hidden = self._hidden(idx)
        if targets is None:
            return self._head(hidden)
        return chunked_cross_entropy(hidden, self.embed.weight, targets)

    def logits_at(self, idx: torch.Tensor, rows: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[N, V]`` (float32) at the positions ``(rows[i], times[i])`` only.

        Evaluation scores a few answer tokens per window: the output head over every position would cost a
        ``[B, T, V]`` float32 tensor (2 GiB for 16k tokens at a 32k vocabulary) to keep a handful of rows.
        """
        return self._head(self._hidden(idx)[rows, times])

    def logits_packed(
        self, idx: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        """``logits_at`` of packed sequences: token ``[b, i]`` sits at position ``positions[b, i]`` and attends to
        the tokens ``mask[b, i]`` allows.  Evaluation packs an item's context once and then each of its choices,
        every choice placed right after the context and seeing only it and itself: the context is encoded once per
        item instead of once per choice, with the same result as scoring each choice after it alone."""
        return self._head(self._hidden(idx, positions, mask)[rows, times])

    def _hidden(
        self, idx: torch.Tensor, positions: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = idx.shape[1]
        if positions is None:
            if t > self.config.seq_len:
                raise ValueError(f"sequence of {t} tokens is longer than the model's seq_len {self.config.seq_len}")
            cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        else:
            if int(positions.max()) >= self.config.seq_len:
                raise ValueError(f"a position beyond the model's seq_len {self.config.seq_len}")
            cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        return self.norm(x)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.embed.weight).float()

    def token_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token next-token losses in nats ``[B, T]`` (``reduction='none'``): the trainer groups them by source."""
        return self(idx, targets)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6N for the matmuls forward and backward (the tied embedding's N counts the
        output head), plus attention's 12 * n_layer * d_model * seq_len (PaLM, appendix B; nanoGPT's estimate_mfu).
        The attention term counts the full T x T score matrix, as both do, though causal kernels skip half of it."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.d_model * (seq_len or c.seq_len)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        inner = [m for m in (getattr(model, "module", None), getattr(model, "_orig_mod", None)) if m is not None]
        if not inner or not isinstance(inner[0], nn.Module):
            return model
        model = inner[0]


CHECKPOINT_KEYS = ("model", "optimizer", "step", "config", "loader", "rng")


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    config: dict[str, Any],
    loader_state: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Write one checkpoint file atomically (a temporary file, fsync, rename): a crash never leaves half a file.

    ``config`` is ``{"model": GPTConfig fields, "train": train config}``; ``extra`` adds top-level keys (the trainer
    passes ``tokenizer`` (the tokenizer JSON text), ``eos_id`` and ``metrics``, so evaluation needs no data dir).
    RNG states are taken here.
    """
    clash = set(extra) & set(CHECKPOINT_KEYS)
    if clash:
        raise ValueError(f"extra checkpoint keys {sorted(clash)} would overwrite the checkpoint's own")
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state()
    checkpoint = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "config": config,
        "loader": loader_state,
        "rng": rng,
        **extra,
    }
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(checkpoint, f)
        f.flush()
        os.fsync(f.fileno())


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, dict[str, Any]]:
    """The model (eval mode, on ``device``) and the whole checkpoint dict (see ``save_checkpoint``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint")
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig(**checkpoint["config"]["model"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval(), checkpoint

"""Stream a build's shards into a trainer: packed, shuffled, split across ranks and workers, resumable.

``PackedDataset`` is a torch ``IterableDataset`` that yields whole batches (use ``DataLoader(batch_size=None)``,
or ``dataset.loader(num_workers=N)``).  Each row is a window of ``seq_len + 1`` tokens cut from one stream of
documents, each followed by the EOS id of the manifest, so ``x = row[:-1]``, ``y = row[1:]``.  Beside the tokens
every batch carries the source and the language of every token, and optionally its position inside its document.

A batch is one buffer: int32 tokens (any vocabulary fits; widened on the device) and positions, int16 source and
language ids, all views of one storage.  What bounds throughput behind DataLoader workers is shipping batches to
the trainer's process (a fresh shared-memory segment per item, its pages faulted in, a file descriptor passed over
a socket), so a batch costs 8 bytes per token, not 16 as int64 fields, and ``loader()``'s workers ship runs of
consecutive batches, about 4 MiB each, that the trainer's process hands out one batch at a time.

Why it resumes exactly, whatever the number of DataLoader workers:

* One epoch of an output is its shards in a seeded order, cut into buffers of ``buffer_shards`` shards whose
  documents are permuted together (seeded by epoch and buffer).  A buffer's size in tokens (document tokens + one
  EOS per row) is in the manifest, so where any token offset of any epoch lies is arithmetic, not a scan.
* Rank ``r`` of ``R`` owns the token range ``[r*T/R, (r+1)*T/R)`` of every epoch (``T`` tokens per epoch); its
  stream is that range of epoch 0, then of epoch 1, ... and window ``n`` is simply tokens
  ``[n*(seq_len+1), (n+1)*(seq_len+1))`` of it.  Ranks read disjoint shards and every token lands on exactly one.
* Batch ``q`` of a rank is windows ``[q*B, (q+1)*B)``.  DataLoader worker ``w`` of ``W`` makes the batches
  ``q = start + w + k*W``, which is exactly the order a DataLoader hands batches out in; so the sequence of batches
  of a rank does not depend on ``W`` and the whole position is one number: batches handed out.
* Mixing several outputs picks the output of window ``j`` from a seeded low-discrepancy sequence against the
  scheduled weights at batch ``j // B``; output ``o``'s window ``n`` is its own stream's window ``n``.  Both are
  pure functions of ``j``, so the state stays one integer and realised shares track the targets within a window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dataengine.schema import stable_hash
from dataengine.shards.manifest import FORMAT, FORMAT_VERSION, MANIFEST
from dataengine.shards.reader import SPLITS, Split

STATE_FORMAT = "dataengine-loader"
STATE_VERSION = 1
PAD_SOURCE = -1  # ``sources`` value of padding after the last token of a finite stream
NO_LANG = -1  # ``langs`` value of padding and of documents with no known language
_INT32 = (np.int32, torch.int32)
_INT16 = (np.int16, torch.int16)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: the additive low-discrepancy step


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, vectorised: a stateless hash that gives the same bits on every machine."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def permutation(n: int, *key: Any) -> np.ndarray:
    """A seeded permutation of ``range(n)`` from hashes, not from an RNG stream whose bits may change by version."""
    base = np.uint64(stable_hash("loader", *key))
    with np.errstate(over="ignore"):
        return np.argsort(_mix64(base + np.arange(n, dtype=np.uint64)), kind="stable")


@dataclass(frozen=True)
class Mix:
    """Load-time mixing weights per output; ``schedule`` moves them over training.

    ``schedule`` holds ``(batch, weights)`` knots; weights are linear between knots, ``weights`` hold at batch 0 and
    the last knot's weights hold after it.  E.g. anneal the code share over the last 10% of 10,000 steps:
    ``Mix({"text": 0.7, "code": 0.3}, [(9000, {"text": 0.7, "code": 0.3}), (10000, {"text": 0.9, "code": 0.1})])``.
    """

    weights: Mapping[str, float]
    schedule: list[tuple[int, Mapping[str, float]]] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Mix:
        """``{"weights": {...}, "schedule": [{"at": BATCH, "weights": {...}}, ...]}`` as in a YAML config."""
        unknown = set(config) - {"weights", "schedule"}
        if unknown or "weights" not in config:
            raise ValueError(f"a mix needs 'weights' (and optionally 'schedule'); got keys {sorted(config)}")
        knots = [(int(k["at"]), dict(k["weights"])) for k in config.get("schedule", [])]
        return cls(dict(config["weights"]), knots)

    def to_config(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "schedule": [{"at": at, "weights": dict(w)} for at, w in self.schedule],
        }

    def knots(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Knot batches and normalised weights ``[knots, outputs]`` in the order of ``names``; checks them."""
        points = [(0, self.weights), *self.schedule]
        batches = [at for at, _ in points]
        if any(b <= a for a, b in zip(batches, batches[1:], strict=False)):
            raise ValueError(f"mix schedule batches must increase from 0 (the base weights); got {batches}")
        rows = []
        for at, weights in points:
            if set(weights) != set(names):
                raise ValueError(f"mix weights at batch {at} name {sorted(weights)}; the outputs are {names}")
            row = np.array([float(weights[n]) for n in names])
            if (row < 0).any() or row.sum() <= 0:
                raise ValueError(f"mix weights at batch {at} must be >= 0 with a positive sum; got {dict(weights)}")
            rows.append(row / row.sum())
        return np.array(batches, dtype=np.float64), np.array(rows)


class _Output:
    """One build output's training stream for one rank: arithmetic over the manifest, shards read per buffer."""

    def __init__(
        self,
        index: int,
        name: str,
        root: str | Path,
        filesystem: pafs.FileSystem | fsspec.AbstractFileSystem | None,
        split: Split,
        seed: int,
        buffer_shards: int,
        rank: int,
        world_size: int,
    ) -> None:
        self.index, self.name, self.seed, self.buffer_shards = index, name, seed, buffer_shards
        self.fs, self.root = _filesystem(root, filesystem)
        self.manifest = _read_manifest(self.fs, self.root)
        tok = self.manifest.get("tokenizer", {})
        self.eos = int(tok["eos_id"])
        self.entries = list(self.manifest.get(SPLITS[split], []))
        if not self.entries:
            raise ValueError(f"{root}: no {split} files in {MANIFEST}")
        # tokens of each shard in the stream: its documents' tokens plus one EOS per document
        self.sizes = np.array([int(e["tokens"]) + int(e["rows"]) for e in self.entries], dtype=np.int64)
        self.epoch_tokens = int(self.sizes.sum())
        self.lo = rank * self.epoch_tokens // world_size
        self.span = (rank + 1) * self.epoch_tokens // world_size - self.lo
        if self.span <= 0:
            raise ValueError(f"{root}: {self.epoch_tokens} tokens cannot be split over {world_size} ranks")
        self.sources = sorted({s for e in self.entries for s in e.get("tokens_by_source", {})})
        self.langs = sorted({s for e in self.entries for s in e.get("tokens_by_lang", {})})
        self._layout: tuple[int, np.ndarray, list[list[int]]] | None = None
        self._unit: tuple[tuple[int, int], _Unit] | None = None

    def fingerprint(self) -> str:
        """Changes whenever a byte of this split's shards or the tokenizer does."""
        digests = [self.manifest["tokenizer"].get("sha256", ""), *(e["sha256"] for e in self.entries)]
        return hashlib.sha256("\n".join(digests).encode()).hexdigest()

    def read(self, lo: int, hi: int, limit: int | None, out: _Row, ids: _Ids) -> None:
        """Write tokens ``[lo, hi)`` of this rank's stream into the flat ``out``; pad past ``limit`` tokens."""
        end = hi if limit is None else min(hi, limit)
        at = 0
        while lo < end:
            epoch, offset = divmod(lo, self.span)
            start = self.lo + offset
            unit_start, unit = self._unit_at(epoch, start)
            take = min(end - lo, self.span - offset, unit_start + len(unit.tokens) - start)
            unit.copy(start - unit_start, take, out, at, ids)
            lo += take
            at += take
        if at < len(out.tokens):
            out.pad(at, self.eos)

    def _unit_at(self, epoch: int, start: int) -> tuple[int, _Unit]:
        """The buffer holding token ``start`` of ``epoch`` (kept until the stream moves past it)."""
        if self._layout is None or self._layout[0] != epoch:
            order = permutation(len(self.entries), self.seed, self.index, "shards", epoch)
            groups = [order[i : i + self.buffer_shards].tolist() for i in range(0, len(order), self.buffer_shards)]
            starts = np.cumsum([0] + [int(self.sizes[g].sum()) for g in groups])
            self._layout = (epoch, starts, groups)
        _, starts, groups = self._layout
        u = int(np.searchsorted(starts, start, side="right")) - 1
        if self._unit is None or self._unit[0] != (epoch, u):
            unit = _Unit.load(self, groups[u], (self.seed, self.index, "docs", epoch, u))
            if len(unit.tokens) != starts[u + 1] - starts[u]:
                names = ", ".join(self.entries[i]["path"] for i in groups[u])
                raise ValueError(f"{self.root}: {names} hold {len(unit.tokens)} tokens + EOS, not what {MANIFEST} says")
            self._unit = ((epoch, u), unit)
        return int(starts[u]), self._unit[1]


@dataclass(frozen=True)
class _Ids:
    """An output's source and language indices mapped to the dataset's; index -1 (none) maps to -1."""

    sources: np.ndarray
    langs: np.ndarray

    @classmethod
    def of(cls, output: _Output, sources: list[str], langs: list[str]) -> _Ids:
        return cls(
            np.array([*(sources.index(s) for s in output.sources), PAD_SOURCE], np.int16),
            np.array([*(langs.index(s) for s in output.langs), NO_LANG], np.int16),
        )


@dataclass
class _Row:
    """Flat views of batch rows that a run of windows is written into."""

    tokens: np.ndarray
    sources: np.ndarray
    langs: np.ndarray
    positions: np.ndarray | None

    def pad(self, at: int, eos: int) -> None:
        self.tokens[at:] = eos
        self.sources[at:] = PAD_SOURCE
        self.langs[at:] = NO_LANG
        if self.positions is not None:
            self.positions[at:] = 0


@dataclass
class _Unit:
    """A buffer of shards as one permuted token stream (EOS after each document), with per-token sources and
    languages (a document's EOS counts as its own)."""

    tokens: np.ndarray
    sources: np.ndarray  # index into the output's source names, per token (int16)
    langs: np.ndarray  # index into the output's language names, per token (int16; -1: none)
    doc_starts: np.ndarray  # offset of each document in ``tokens``, then the end

    @classmethod
    def load(cls, output: _Output, shards: list[int], key: tuple[Any, ...]) -> _Unit:
        flats, lengths, sources, langs = [], [], [], []
        for i in shards:
            path = output.entries[i]["path"]
            table = _read_table(output.fs, f"{output.root}/{path}")
            tokens = table["tokens"]
            flats.append(pc.list_flatten(tokens).to_numpy())
            lengths.append(pc.list_value_length(tokens).fill_null(0).to_numpy())
            sources.append(_indices(table["source"], output.sources, f"{path}: a source"))
            lang = table["lang"] if "lang" in table.column_names else pa.nulls(table.num_rows, pa.string())
            langs.append(_indices(lang, output.langs, f"{path}: a language"))
        flat, length = np.concatenate(flats), np.concatenate(lengths)
        source, lang = np.concatenate(sources), np.concatenate(langs)
        src_starts = np.concatenate([[0], np.cumsum(length)])
        order = permutation(len(length), *key)
        out_length = length[order] + 1
        doc_starts = np.concatenate([[0], np.cumsum(out_length)])
        out = np.empty(int(doc_starts[-1]), dtype=flat.dtype)
        for at, doc in zip(doc_starts[:-1].tolist(), order.tolist(), strict=True):
            out[at : at + int(length[doc])] = flat[src_starts[doc] : src_starts[doc + 1]]
        out[doc_starts[1:] - 1] = output.eos
        return cls(out, np.repeat(source[order], out_length), np.repeat(lang[order], out_length), doc_starts)

    def copy(self, start: int, n: int, out: _Row, at: int, ids: _Ids) -> None:
        out.tokens[at : at + n] = self.tokens[start : start + n]
        out.sources[at : at + n] = ids.sources[self.sources[start : start + n]]
        out.langs[at : at + n] = ids.langs[self.langs[start : start + n]]
        if out.positions is not None:
            index = np.arange(start, start + n)
            doc = np.searchsorted(self.doc_starts, index, side="right") - 1
            out.positions[at : at + n] = index - self.doc_starts[doc]


class PackedDataset(IterableDataset):
    """Batches of packed ``seq_len + 1`` token windows from one build output, or a weighted mix of several.

    ``outputs``: a build output directory or URL (``s3://``, ``gs://``, ``hdfs://`` through ``pyarrow.fs``, any
    other fsspec protocol through fsspec), or ``{name: output}`` with ``mix`` weights by name.
    ``epochs``: ``None`` streams forever (stop by steps); an integer ends after that many passes, padding the last
    window (``sources == -1``) and giving every rank the same number of batches.  A mix always streams forever.
    Each batch is ``{"tokens": [B, seq_len+1] int32, "sources": [B, seq_len+1] int16 (index into .sources,
    -1 = padding), "langs": [B, seq_len+1] int16 (index into .langs, -1 = none or padding), "batch": its index}``
    plus ``"positions"`` (int32 position inside the document; 0 starts one) when ``return_positions``.  Cast
    tokens for the model where they land (``batch["tokens"].to(device).long()``).  The whole position is
    ``state_dict()``; it is the same on every rank.
    """

    def __init__(
        self,
        outputs: str | Path | Mapping[str, str | Path],
        seq_len: int,
        batch_size: int,
        *,
        seed: int = 0,
        epochs: int | None = None,
        mix: Mix | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        buffer_shards: int = 4,
        split: Split = "train",
        return_positions: bool = False,
        filesystem: pafs.FileSystem | fsspec.AbstractFileSystem | None = None,
    ) -> None:
        super().__init__()
        if seq_len < 1 or batch_size < 1 or buffer_shards < 1:
            raise ValueError("seq_len, batch_size and buffer_shards must be >= 1")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None (forever); got {epochs}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        if rank is None or world_size is None:
            initialised = dist.is_available() and dist.is_initialized()
            rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
            world_size = world_size if world_size is not None else (dist.get_world_size() if initialised else 1)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        named = dict(outputs) if isinstance(outputs, Mapping) else {Path(str(outputs)).name or "output": outputs}
        if len(named) > 1 and mix is None:
            raise ValueError(f"{len(named)} outputs need mix weights (Mix) naming {sorted(named)}")
        if mix is not None and epochs is not None:
            raise ValueError("a mix streams until the trainer stops; leave epochs=None")
        self.seq_len, self.batch_size, self.seed, self.epochs = seq_len, batch_size, seed, epochs
        self.rank, self.world_size, self.split, self.buffer_shards = rank, world_size, split, buffer_shards
        self.return_positions = return_positions
        self.mix = mix or Mix({name: 1.0 for name in named})
        self.names = sorted(named)
        self._knots = self.mix.knots(self.names)
        self.outputs = [
            _Output(i, n, named[n], filesystem, split, seed, buffer_shards, rank, world_size)
            for i, n in enumerate(self.names)
        ]
        self.sources: list[str] = sorted({s for o in self.outputs for s in o.sources})
        self.langs: list[str] = sorted({s for o in self.outputs for s in o.langs})
        self._ids = [_Ids.of(o, self.sources, self.langs) for o in self.outputs]
        self._phase = np.uint64(stable_hash("loader", seed, "mix"))
        self.batches_consumed = 0

    # -- size and position -----------------------------------------------------------------------------------
    @property
    def window(self) -> int:
        return self.seq_len + 1

    @property
    def num_batches(self) -> int | None:
        """Batches per rank of a finite stream (the same on every rank); ``None`` when it streams forever."""
        if self.epochs is None:
            return None
        return -(-self._num_windows() // self.batch_size)

    def _num_windows(self) -> int:
        assert self.epochs is not None
        longest = -(-self.outputs[0].epoch_tokens // self.world_size)  # the largest rank share of an epoch
        return -(-self.epochs * longest // self.window)

    def state_dict(self) -> dict[str, Any]:
        """The position (batches handed out) and what it is valid for; rank-independent, so one copy serves all."""
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "batches": self.batches_consumed, **self._config()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after the batches ``state`` counts; refuse a state saved for other data or settings."""
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a {STATE_FORMAT} v{STATE_VERSION} state")
        for key, value in self._config().items():
            if state.get(key) != value:
                raise ValueError(f"state was saved with {key}={state.get(key)!r}, this loader has {value!r}")
        self.batches_consumed = int(state["batches"])

    def _config(self) -> dict[str, Any]:
        return {
            "outputs": {o.name: o.fingerprint() for o in self.outputs},
            "split": self.split,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epochs": self.epochs,
            "world_size": self.world_size,
            "buffer_shards": self.buffer_shards,
            "mix": json.loads(json.dumps(self.mix.to_config())),  # as a checkpoint's JSON would hold it
        }

    # -- mixing ----------------------------------------------------------------------------------------------
    def _targets(self, first: int, stop: int) -> np.ndarray:
        """Scheduled weights ``[windows, outputs]`` of windows ``[first, stop)``."""
        at, rows = self._knots
        batch = np.arange(first, stop, dtype=np.int64) // self.batch_size
        return np.stack([np.interp(batch, at, rows[:, o]) for o in range(len(self.names))], axis=1)

    def _choices(self, first: int, stop: int) -> np.ndarray:
        """The output each window of ``[first, stop)`` is drawn from."""
        if len(self.names) == 1:
            return np.zeros(stop - first, dtype=np.int64)
        with np.errstate(over="ignore"):
            x = self._phase + np.arange(first, stop, dtype=np.uint64) * _GOLDEN
        u = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53
        cumulative = np.cumsum(self._targets(first, stop), axis=1)
        return (u[:, None] >= cumulative[:, :-1]).sum(axis=1)

    def _counts_before(self, window: int, chunk: int = 1 << 20) -> np.ndarray:
        """Windows drawn from each output before ``window``."""
        counts = np.zeros(len(self.names), dtype=np.int64)
        for first in range(0, window, chunk):
            counts += np.bincount(self._choices(first, min(window, first + chunk)), minlength=len(self.names))
        return counts

    def mix_report(self, batches: int | None = None) -> dict[str, dict[str, float]]:
        """Target vs realised share, tokens and epochs per output over the first ``batches`` (default: consumed)."""
        windows = (self.batches_consumed if batches is None else batches) * self.batch_size
        counts = self._counts_before(windows)
        target = np.zeros(len(self.names))
        for first in range(0, windows, 1 << 20):
            target += self._targets(first, min(windows, first + (1 << 20))).sum(axis=0)
        return {
            name: {
                "target_share": float(target[o] / windows) if windows else 0.0,
                "realised_share": float(counts[o] / windows) if windows else 0.0,
                "tokens": int(counts[o]) * self.window,
                "epochs": int(counts[o]) * self.window / self.outputs[o].span,
            }
            for o, name in enumerate(self.names)
        }

    # -- iteration -------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        for group in self._groups(1):
            yield group[0]

    def _groups(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """Runs of ``size`` consecutive batches in one buffer; worker ``w`` of ``W`` makes runs ``w, w + W, ...``.

        A DataLoader worker pays a fixed cost per item it ships (a shared-memory segment, a file descriptor passed
        over a socket), so ``ResumableLoader`` asks its workers for runs of batches and hands them out one by one.
        """
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        total, batch = self.num_batches, self.batch_size
        limit = None if self.epochs is None else self.epochs * self.outputs[0].span
        q = self.batches_consumed + worker * size
        counts = self._counts_before(q * batch)
        while total is None or q < total:
            stop = q + size if total is None else min(q + size, total)
            rows = [batch if total is None else min(batch, self._num_windows() - p * batch) for p in range(q, stop)]
            buffer = torch.empty(sum(rows) * self.window * self._bytes_per_token, dtype=torch.uint8)
            group, at = [], 0
            for p, n in zip(range(q, stop), rows, strict=True):
                chosen = self._choices(p * batch, (p + 1) * batch)
                size_p = n * self.window * self._bytes_per_token
                group.append(self._batch(p, chosen[:n], counts, limit, buffer[at : at + size_p]))
                counts += np.bincount(chosen, minlength=len(self.names))
                at += size_p
            following = q + workers * size  # this worker's next run; the others make the batches in between
            counts += np.bincount(self._choices(stop * batch, following * batch), minlength=len(self.names))
            self.batches_consumed = stop
            yield group
            q = following

    @property
    def _fields(self) -> dict[str, tuple[type, torch.dtype]]:
        fields = {"tokens": _INT32, "positions": _INT32} if self.return_positions else {"tokens": _INT32}
        return fields | {"sources": _INT16, "langs": _INT16}  # 4-byte fields first, so every view is aligned

    @property
    def _bytes_per_token(self) -> int:
        return sum(np.dtype(n).itemsize for n, _ in self._fields.values())

    def _batch(
        self, q: int, chosen: np.ndarray, counts: np.ndarray, limit: int | None, buffer: torch.Tensor
    ) -> dict[str, Any]:
        """Batch ``q`` (windows of outputs ``chosen``) written into ``buffer``; its fields are views of it."""
        fields, shape = self._fields, (len(chosen), self.window)
        arrays, views, at = {}, {}, 0
        for name, (np_type, torch_type) in fields.items():
            size = shape[0] * shape[1] * np.dtype(np_type).itemsize
            arrays[name] = buffer[at : at + size].numpy().view(np_type).reshape(shape)
            views[name] = buffer[at : at + size].view(torch_type).view(shape)
            at += size
        for o in np.unique(chosen).tolist():
            # this batch's windows of output ``o`` are its consecutive windows: one token range, read at once
            rows = np.flatnonzero(chosen == o)
            first, stop = int(counts[o]) * self.window, (int(counts[o]) + len(rows)) * self.window
            in_place = rows[-1] - rows[0] + 1 == len(rows)  # adjacent rows are one flat range of each field
            if in_place:
                into = {k: a[rows[0] : rows[-1] + 1].reshape(-1) for k, a in arrays.items()}
            else:
                into = {k: np.empty(stop - first, dtype=a.dtype) for k, a in arrays.items()}
            row = _Row(into["tokens"], into["sources"], into["langs"], into.get("positions"))
            self.outputs[o].read(first, stop, limit, row, self._ids[o])
            if not in_place:
                for k, a in arrays.items():
                    a[rows] = into[k].reshape(len(rows), self.window)
        return {**views, "batch": q}

    def loader(self, num_workers: int = 0, **kwargs: Any) -> ResumableLoader:
        """A DataLoader over this dataset whose ``state_dict()`` follows the batches it hands out."""
        return ResumableLoader(self, num_workers=num_workers, **kwargs)


class _Runs(IterableDataset):
    """What ``ResumableLoader`` iterates: runs of about ``RUN_BYTES`` of a dataset's batches from each worker
    (single batches in the trainer's own process, where nothing is shipped)."""

    RUN_BYTES = 4 << 20  # 4 MiB: 8 batches of 64 x 1024 tokens

    def __init__(self, dataset: PackedDataset, workers: int) -> None:
        super().__init__()
        self.dataset = dataset
        batch_bytes = dataset.batch_size * dataset.window * dataset._bytes_per_token
        self.size = max(1, min(16, self.RUN_BYTES // batch_bytes)) if workers else 1

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return self.dataset._groups(self.size)


class ResumableLoader(DataLoader):
    """``DataLoader(dataset, batch_size=None)`` that advances the dataset's position as batches reach the trainer.

    Worker processes hold copies of the dataset, so only the batches arriving here say how far the trainer got.
    Workers ship runs of consecutive batches (one shared-memory segment each), handed out here one batch at a time.
    """

    def __init__(self, dataset: PackedDataset, num_workers: int = 0, **kwargs: Any) -> None:
        if kwargs.get("persistent_workers"):
            raise ValueError("persistent workers keep their own position; the loader restarts them from its own")
        super().__init__(_Runs(dataset, num_workers), batch_size=None, num_workers=num_workers, **kwargs)
        self.packed = dataset  # ``self.dataset`` is the runs it iterates

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        for run in super().__iter__():
            for batch in run:
                self.packed.batches_consumed = int(batch["batch"]) + 1
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.packed.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.packed.load_state_dict(state)


def _filesystem(
    root: str | Path, filesystem: pafs.FileSystem | fsspec.AbstractFileSystem | None
) -> tuple[pafs.FileSystem, str]:
    """A ``pyarrow.fs`` filesystem and the path of ``root`` in it (local files are memory-mapped)."""
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem, str(root).rstrip("/")
    if filesystem is not None:
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), str(root).rstrip("/")
    text = str(root)
    if "://" not in text:
        return pafs.LocalFileSystem(use_mmap=True), str(Path(text).resolve())
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except pa.ArrowInvalid:  # a protocol pyarrow has no native filesystem for: fsspec's
        spec_fs, path = fsspec.core.url_to_fs(text)
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(spec_fs))
    return fs, path.rstrip("/")


def _read_manifest(fs: pafs.FileSystem, root: str) -> dict[str, Any]:
    path = f"{root}/{MANIFEST}"
    try:
        with fs.open_input_stream(path) as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{root}: no {MANIFEST}; not a finished build output") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: not a {FORMAT} manifest this reader understands")
    return manifest


def _indices(column: pa.ChunkedArray, names: list[str], what: str) -> np.ndarray:
    """Each value's index in ``names`` (int16), -1 for null; a value ``names`` lacks contradicts the manifest."""
    found = pc.index_in(column, value_set=pa.array(names, pa.string()))
    if found.null_count != column.null_count:
        raise ValueError(f"{what} not listed in {MANIFEST}")
    return found.fill_null(-1).to_numpy().astype(np.int16)


def _read_table(fs: pafs.FileSystem, path: str) -> pa.Table:
    with fs.open_input_stream(path) as f:
        return pa.ipc.open_stream(f).read_all()

"""Inspect a build output: ``python -m dataengine.inspect OUT stats|sample|decode|verify|sources|lengths``.

Everything is read from the output alone (manifest, shards, tokenizer, report), so a copied or downloaded build
can be checked and read with no access to the sources or the config that made it; OUT is a directory or a URI
(``s3://bucket/out``, read through ``pyarrow.fs`` with the credentials of the environment).
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import os
import sys
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table
from rich.text import Text
from tokenizers import Tokenizer

from dataengine import storage
from dataengine.report.render import REPORT_JSON
from dataengine.schema import stable_hash
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import SPLITS, Split, iter_batches, read_shard, split_entries, verify

LENGTHS_PNG = "doc_lengths.png"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not storage.is_dir(args.out):
            raise ValueError(f"{args.out}: no such directory")
        code = args.command(args, Console(width=None if sys.stdout.isatty() else 200))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into `head`: stop quietly with status 1, as rich does for its own output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # storage out of reach: an unknown bucket, no credentials, a refused connection
        print(f"error: {args.out}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataengine.inspect", description=__doc__.splitlines()[0].replace("``", "")
    )
    parser.add_argument("out", metavar="OUT", help="a build output: a directory or a URI such as s3://bucket/out")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)

    p = commands.add_parser("stats", help="shards, rows and tokens per source; mix target vs realised; tokenizer")
    p.set_defaults(command=cmd_stats)

    p = commands.add_parser("sample", help="decode a few documents chosen by a seeded hash")
    p.add_argument("-n", "--n", type=int, default=3, help="how many documents (default 3)")
    p.add_argument("--source", help="only documents of this source")
    p.add_argument("--seed", type=int, default=0, help="another seed, other documents (default 0)")
    p.add_argument("--max-chars", type=int, default=2000, help="cut each text after this many characters; 0: all")
    p.set_defaults(command=cmd_sample)

    p = commands.add_parser("decode", help="decode one document to stdout (exactly its text)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="document id (the first copy, training shards then held out)")
    which.add_argument("--shard", help="shard index or path relative to OUT (with --row)")
    p.add_argument("--row", type=int, help="row within --shard")
    p.set_defaults(command=cmd_decode)

    p = commands.add_parser("verify", help="recompute hashes and counts against the manifest; exit 1 on a problem")
    p.set_defaults(command=cmd_verify)

    p = commands.add_parser(
        "sources", help="documents and tokens per source per shard; the funnel from report.json: in/out, rejections"
    )
    p.add_argument("--top", type=int, default=3, help="rejection reasons shown per source (default 3)")
    p.set_defaults(command=cmd_sources)

    p = commands.add_parser("lengths", help="document length percentiles per source and a histogram PNG")
    p.add_argument("--split", choices=list(SPLITS), default="train", help="which files (default train)")
    p.add_argument("--png", help=f"where to write the histograms (default OUT/{LENGTHS_PNG})")
    p.set_defaults(command=cmd_lengths)
    return parser


def cmd_stats(args: argparse.Namespace, console: Console) -> int:
    manifest = load_manifest(args.out)
    plan = _mix_plan(manifest)
    tok = manifest.get("tokenizer", {})
    config = manifest.get("config_hash", "")[:12]
    console.print(f"mix {_mix_name(args.out, manifest)}, seed {manifest.get('seed')}, config {config}")
    console.print(
        f"tokenizer {tok.get('path')} (sha256 {tok.get('sha256', '')[:12]}): vocab {tok.get('vocab_size'):,}, "
        f"eos id {tok.get('eos_id')}, tokens stored as {tok.get('token_dtype')}"
    )
    table = Table(title=f"{len(split_entries(manifest, 'train'))} training shards")
    for col in ["source", "shards", "rows", "tokens", "target share", "realised share", "epochs"]:
        table.add_column(col, justify="left" if col == "source" else "right")
    table.add_column("held-out rows", justify="right")
    table.add_column("held-out tokens", justify="right")
    train_rows, held_rows = _rows_by_source(args.out, "train"), _rows_by_source(args.out, "held_out")
    train_tokens, held_tokens = _tokens_by_source(manifest, "train"), _tokens_by_source(manifest, "held_out")
    shards_with = Counter(s for e in split_entries(manifest, "train") for s, n in e["tokens_by_source"].items() if n)
    total = sum(train_tokens.values())
    names = sorted(set(train_tokens) | set(held_tokens) | set(plan.get("sources", {})))
    for name in names:
        mix = plan.get("sources", {}).get(name, {})
        realised = mix.get("realised_share", train_tokens[name] / total if total else 0.0)
        table.add_row(
            name,
            f"{shards_with[name]:,}",
            f"{train_rows[name]:,}",
            f"{train_tokens[name]:,}",
            _pct(mix.get("target_share")),
            _pct(realised),
            f"{mix['epochs']:.2f}" if "epochs" in mix else "",
            f"{held_rows[name]:,}",
            f"{held_tokens[name]:,}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{train_rows.total():,}",
        f"{total:,}",
        "",
        "",
        "",
        f"{held_rows.total():,}",
        f"{held_tokens.total():,}",
    )
    console.print(table)
    return 0


def cmd_sample(args: argparse.Namespace, console: Console) -> int:
    manifest = load_manifest(args.out)
    if args.source is not None:
        known = sorted(_tokens_by_source(manifest, "train"))
        if args.source not in known:
            raise ValueError(f"no source {args.source!r} in the training shards; known: {', '.join(known)}")
    keyed: list[tuple[int, str, int]] = []
    for path, first, batch in iter_batches(args.out, "train"):
        rows = list(range(batch.num_rows))
        if args.source is not None:
            rows = pc.indices_nonzero(pc.equal(batch.column("source"), args.source)).to_pylist()
        keyed += [(stable_hash(args.seed, "sample", path, first + i), path, first + i) for i in rows]
        keyed = heapq.nsmallest(args.n, keyed)
    tok = _tokenizer(args.out, manifest)
    for _, path, row in keyed:
        doc = read_shard(storage.join(args.out, path)).slice(row, 1).to_pylist()[0]
        text = tok.decode(doc["tokens"], skip_special_tokens=True)
        cut = text if args.max_chars <= 0 or len(text) <= args.max_chars else text[: args.max_chars] + " […]"
        header = f"── {doc['id']} · {doc['source']} · {path} row {row} · {len(doc['tokens']):,} tokens"
        console.print(Text(header, style="bold"), soft_wrap=True)
        console.print(Text(cut), soft_wrap=True)
    return 0


def cmd_decode(args: argparse.Namespace, console: Console) -> int:
    manifest = load_manifest(args.out)
    if args.shard is not None:
        if args.row is None:
            raise ValueError("--shard needs --row")
        path, row = _shard_path(manifest, args.shard), args.row
        table = read_shard(storage.join(args.out, path))
        if not 0 <= row < table.num_rows:
            raise ValueError(f"{path} has {table.num_rows} rows; no row {row}")
        doc = table.slice(row, 1).to_pylist()[0]
    else:
        path, row, doc = _find_id(args.out, args.id)
    text = _tokenizer(args.out, manifest).decode(doc["tokens"], skip_special_tokens=True)
    print(f"{doc['id']} ({doc['source']}): {path} row {row}, {len(doc['tokens']):,} tokens", file=sys.stderr)
    sys.stdout.write(text)
    return 0


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    manifest = load_manifest(args.out)
    problems = verify(args.out)
    for problem in problems:
        console.print(Text(problem))
    if problems:
        console.print(f"{len(problems)} problem(s) in {args.out}")
        return 1
    files = sum(len(split_entries(manifest, s)) for s in SPLITS)
    console.print(f"OK: {files} files, {manifest.get('totals', {}).get('tokens', 0):,} training tokens verified")
    return 0


def cmd_sources(args: argparse.Namespace, console: Console) -> int:
    manifest = load_manifest(args.out)
    names = sorted(_tokens_by_source(manifest, "train"))
    per_shard = Table(title="documents and tokens per source per training shard")
    per_shard.add_column("shard")
    for name in names:
        per_shard.add_column(f"{name} docs", justify="right")
        per_shard.add_column(f"{name} tokens", justify="right")
    totals: Counter[tuple[str, str]] = Counter()
    for entry in split_entries(manifest, "train"):
        docs = _rows_by_source_of(storage.join(args.out, entry["path"]))
        tokens = entry.get("tokens_by_source", {})
        cells = []
        for name in names:
            totals[name, "docs"] += docs[name]
            totals[name, "tokens"] += tokens.get(name, 0)
            cells += [f"{docs[name]:,}", f"{tokens.get(name, 0):,}"]
        per_shard.add_row(entry["path"], *cells)
    per_shard.add_section()
    per_shard.add_row("total", *(f"{totals[name, kind]:,}" for name in names for kind in ("docs", "tokens")))
    console.print(per_shard)
    if not storage.exists(storage.join(args.out, REPORT_JSON)):
        console.print(f"no {REPORT_JSON}: no funnel to show")
        return 0
    report = _report(args.out)
    table = Table(title=f"funnel of mix {report.get('mix')}, seed {report.get('seed')}")
    for col in ["source", "docs in", "rejected", "held out", "docs out", "kept", "tokens in", "tokens out", "epochs"]:
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, f in report.get("sources", {}).items():
        docs_in = f.get("docs_in", 0)
        table.add_row(
            name,
            f"{docs_in:,}",
            f"{sum(f.get('rejected', {}).values()):,}",
            f"{f.get('held_out_docs', 0):,}",
            f"{f.get('docs_out', 0):,}",
            _pct(f.get("docs_out", 0) / docs_in if docs_in else None),
            f"{f.get('tokens_in', 0):,}",
            f"{f.get('tokens_out', 0):,}",
            f"{f.get('epochs', 0.0):.2f}",
        )
    console.print(table)
    for name, f in report.get("sources", {}).items():
        rejected = f.get("rejected", {})
        top = sorted(rejected, key=lambda k: (-rejected[k], k))[: args.top]
        docs_in = f.get("docs_in", 0)
        reasons = ", ".join(f"{k} {rejected[k]:,} ({_pct(rejected[k] / docs_in)})" for k in top) or "none"
        console.print(Text(f"{name} top rejections: {reasons}"), soft_wrap=True)
    return 0


def cmd_lengths(args: argparse.Namespace, console: Console) -> int:
    lengths = _lengths_by_source(args.out, args.split)
    if not lengths:
        raise ValueError(f"no documents in the {args.split} split")
    table = Table(title=f"document length in tokens ({args.split})")
    for col in ["source", "documents", "min", "p10", "median", "p90", "p99", "max", "mean"]:
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, values in lengths.items():
        p = np.percentile(values, [10, 50, 90, 99])
        table.add_row(
            name, f"{len(values):,}", f"{values.min():,}", *(f"{v:,.0f}" for v in p), f"{values.max():,}",
            f"{values.mean():,.0f}",
        )  # fmt: skip
    console.print(table)
    png = args.png or storage.join(args.out, LENGTHS_PNG)
    storage.write_bytes(png, plot_lengths(lengths, f"{_mix_name(args.out, load_manifest(args.out))} ({args.split})"))
    console.print(f"wrote {png}")
    return 0


def plot_lengths(lengths: dict[str, np.ndarray], title: str) -> bytes:
    """PNG bytes: one log-binned histogram of document lengths per source, medians marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(lengths), 4), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(lengths), sharey=False))
    top = max(int(v.max()) for v in lengths.values())
    low = max(1, min(int(v.min()) for v in lengths.values()))
    bins = np.geomspace(low, max(top, low + 1) + 1, 50)
    for ax, (name, values) in zip(axes, lengths.items(), strict=True):
        ax.hist(np.maximum(values, 1), bins=bins, color="#4c72b0")
        median = float(np.median(values))
        ax.axvline(median, color="#c44e52", linestyle="--", label=f"median {median:,.0f}")
        ax.set_xscale("log")
        ax.set_title(f"{name}: {len(values):,} documents")
        ax.set_xlabel("tokens per document")
        ax.legend()
    axes[0].set_ylabel("documents")
    fig.suptitle(title)
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()


def _lengths_by_source(out: str, split: Split) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for _, _, batch in iter_batches(out, split):
        lengths = pc.list_value_length(batch.column("tokens")).fill_null(0).to_numpy()
        sources = np.asarray(batch.column("source").to_pylist(), dtype=object)
        for name in np.unique(sources):
            parts.setdefault(str(name), []).append(lengths[sources == name])
    return {name: np.concatenate(parts[name]) for name in sorted(parts)}


def _rows_by_source_of(path: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in pc.value_counts(read_shard(path).column("source")).to_pylist():
        counts[item["values"]] += item["counts"]
    return counts


def _mix_plan(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's mix plan (target vs realised per source), or an empty one."""
    mix = manifest.get("mix")
    return mix if isinstance(mix, dict) else {}


def _mix_name(out: str, manifest: dict[str, Any]) -> str:
    """The mix's name: the manifest's ``mix`` string or ``mix.name``, else the report's, else the directory's."""
    mix = manifest.get("mix")
    if isinstance(mix, str):
        return mix
    if isinstance(mix, dict) and "name" in mix:
        return str(mix["name"])
    path = storage.join(out, REPORT_JSON)
    return str(_report(out).get("mix")) if storage.exists(path) else out.rstrip("/").rsplit("/", 1)[-1]


def _tokens_by_source(manifest: dict[str, Any], split: Split) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in split_entries(manifest, split):
        counts.update(entry.get("tokens_by_source", {}))
    return counts


def _rows_by_source(out: str, split: Split) -> Counter[str]:
    """Rows per source, counted from the shards (the manifest only counts rows per file)."""
    counts: Counter[str] = Counter()
    for _, _, batch in iter_batches(out, split):
        for item in pc.value_counts(batch.column("source")).to_pylist():
            counts[item["values"]] += item["counts"]
    return counts


def _tokenizer(out: str, manifest: dict[str, Any]) -> Tokenizer:
    path = storage.join(out, manifest.get("tokenizer", {}).get("path", "tokenizer.json"))
    if not storage.exists(path):
        raise ValueError(f"{path}: tokenizer missing")
    return Tokenizer.from_str(storage.read_text(path))


def _shard_path(manifest: dict[str, Any], shard: str) -> str:
    """``--shard`` as a manifest path: an index into the training shards, or a path listed in the manifest."""
    train = split_entries(manifest, "train")
    if shard.isdigit():
        if int(shard) >= len(train):
            raise ValueError(f"shard index {shard} out of range; there are {len(train)} training shards")
        return train[int(shard)]["path"]
    listed = [e["path"] for s in SPLITS for e in split_entries(manifest, s)]
    if shard not in listed:
        raise ValueError(f"{shard} is not a file of the manifest (e.g. {listed[0] if listed else 'none'})")
    return shard


def _find_id(out: str, doc_id: str) -> tuple[str, int, dict[str, Any]]:
    for split in SPLITS:
        for path, first, batch in iter_batches(out, split):
            i = pc.index(batch.column("id"), pa.scalar(doc_id, pa.string())).as_py()
            if i >= 0:
                return path, first + i, batch.slice(i, 1).to_pylist()[0]
    raise ValueError(f"no document with id {doc_id!r}")


def _report(out: str) -> dict[str, Any]:
    path = storage.join(out, REPORT_JSON)
    if not storage.exists(path):
        raise ValueError(f"{out}: no {REPORT_JSON}; the build did not finish")
    return json.loads(storage.read_text(path))


def _pct(share: float | None) -> str:
    return "" if share is None else f"{100.0 * share:.1f}%"


if __name__ == "__main__":
    sys.exit(main())

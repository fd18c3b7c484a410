"""``python -m dataengine.export OUT --format hf|megatron|nanogpt|mds [--dest DIR] [--split train|held_out]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataengine import storage
from dataengine.export import FORMATS, export
from dataengine.shards.reader import SPLITS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataengine.export", description="Export a build output to another trainer's format."
    )
    parser.add_argument(
        "out", metavar="OUT", help="a build output: a directory or s3:// / gs:// URI (holds manifest.json)"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=list(FORMATS),
        help="hf: datasets save_to_disk; megatron: .bin/.idx; nanogpt: llm.c .bin shards; mds: MosaicML streaming",
    )
    parser.add_argument("--dest", type=Path, help="where to write (default OUT/exports/FORMAT); must not exist")
    parser.add_argument("--split", choices=list(SPLITS), default="train", help="which files (default train)")
    args = parser.parse_args(argv)
    try:
        if not storage.is_dir(args.out):
            raise ValueError(f"{args.out}: no such directory")
        summary = export(args.out, args.format, args.dest, args.split)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    details = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in summary.items() if k != "dest")
    print(f"wrote {summary['dest']}: {details}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

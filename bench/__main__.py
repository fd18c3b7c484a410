"""``python -m bench [NAME ...]``: run all benchmarks, or the named ones, and print their tables."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.harness import report

BENCHMARKS = [
    "tokenize",
    "build",
    "crawl",
    "dedup",
    "decontam",
    "loader",
    "tokenizer_metrics",
    "langid",
    "filters",
    "extract",
    "scale",
    "pipeline",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        path = report(name, module.run())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

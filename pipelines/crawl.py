"""Crawl seed URLs into gzipped WARC files: ``python -m pipelines.crawl --seeds seeds.txt --out crawl/``.

Running the same command again resumes: nothing already in the WARC files is fetched twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dataengine.config import CrawlConfig
from dataengine.crawl.crawler import crawl, read_seeds
from dataengine.runtime import ray_session

CONTACT_ENV = "DATAENGINE_CRAWL_CONTACT"


def summary(report: dict[str, Any], out: str) -> Table:
    """Per host: fetched, failed and skipped by reason, bytes; then the totals."""
    table = Table(title=f"crawl -> {out}")
    for col in ("host", "fetched", "redirected", "failed", "skipped", "MB", "delay s"):
        table.add_column(col, justify="left" if col in ("host", "failed", "skipped") else "right")

    def reasons(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"

    for name, h in report["hosts"].items():
        table.add_row(
            name,
            f"{h['fetched']:,}",
            f"{h['redirected']:,}",
            reasons(h["failed"]),
            reasons(h["skipped"]),
            f"{h['bytes'] / 1e6:,.2f}",
            f"{h['delay_s']:g}",
        )
    table.add_row(
        "[bold]all",
        f"[bold]{report['fetched']:,}",
        f"{report['redirected']:,}",
        reasons(report["failed"]),
        reasons(report["skipped"]),
        f"{report['bytes'] / 1e6:,.2f}",
        "",
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.crawl", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, required=True, help="file with one seed URL per line (# comments)")
    parser.add_argument("--out", required=True, help="directory or s3:// / gs:// URI: WARC files, log, report")
    parser.add_argument("--max-pages", type=int, help="stop after this many page requests")
    parser.add_argument("--max-depth", type=int, help="links followed from a seed (seed = depth 0)")
    parser.add_argument("--scope", choices=["same-host", "same-domain", "list"], default="same-host")
    parser.add_argument("--scope-hosts", nargs="+", default=[], metavar="HOST", help="hosts admitted by --scope list")
    parser.add_argument(
        "--allow", nargs="+", default=[], metavar="HOST", help="hosts, IPs or CIDRs that may be private/loopback"
    )
    parser.add_argument("--contact", default=os.environ.get(CONTACT_ENV), help=f"e-mail or URL (or ${CONTACT_ENV})")
    parser.add_argument("--delay", type=float, help="minimum seconds between requests to one host (default 1)")
    parser.add_argument("--workers", type=int, help="crawl actors (default: the cluster's CPUs)")
    parser.add_argument("--ray-address", help="join an existing Ray cluster (e.g. auto or ray://head:10001)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if not console.is_terminal:  # a log file: wide enough for the summary table
        console = Console(stderr=True, width=140)
    if not args.contact:
        console.print(f"[red]error:[/] a crawler must say who runs it: pass --contact EMAIL|URL (or set {CONTACT_ENV})")
        return 2
    fields = {
        "contact": args.contact,
        "max_pages": args.max_pages,
        "max_depth": args.max_depth,
        "scope": args.scope,
        "scope_hosts": args.scope_hosts,
        "allow": args.allow,
        "delay": args.delay,
        "workers": args.workers,
    }
    try:
        config = CrawlConfig(**{k: v for k, v in fields.items() if v is not None})
        seeds = read_seeds(args.seeds)
        with ray_session(args.workers, args.ray_address):
            report = crawl(seeds, args.out, config, console)
    except ValidationError as e:
        first = e.errors()[0]
        console.print(f"[red]error:[/] --{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")
        return 2
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    console.print(summary(report, args.out))
    console.print(f"WARC files, the crawl log, skipped.jsonl and report.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

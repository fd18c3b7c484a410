"""The crawl directory: WARC files, the crawl log (the checkpoint), the skip list and the report.

    crawl-RUN-PART.warc.gz   request + response + metadata records of every kept response
    log.jsonl                one line per URL a worker decided (fetched, redirected, failed, robots...)
    skipped.jsonl            URLs not fetched because of scope, scheme or limits (rewritten every run)
    report.json              counts: fetched, failed and skipped by reason, bytes, per host

The log is the checkpoint: a stored outcome's line is written after its WARC records are flushed and
names their end offset, so on resume each WARC file is cut back to its last logged record and every
logged URL is final.  What was fetched but not logged is fetched again; nothing in the WARC is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dataengine.atomic import atomic_open
from dataengine.crawl.frontier import Outcome, Skip
from dataengine.crawl.warcfile import WarcFiles, crawl_warcs, trim

LOG = "log.jsonl"
SKIPPED = "skipped.jsonl"
REPORT = "report.json"


def read_log(out: Path) -> tuple[list[Outcome], int]:
    """The logged outcomes and the length of the log's complete lines (a crash may have cut the last one)."""
    path = out / LOG
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [Outcome.from_json(json.loads(line)) for line in complete.splitlines() if line.strip()], len(complete)


class CrawlStore:
    def __init__(self, out: Path, warcinfo: dict[str, str]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.logged, complete = read_log(out)
        if (out / LOG).exists() and (out / LOG).stat().st_size > complete:
            os.truncate(out / LOG, complete)
        ends: dict[str, int] = {}
        for outcome in self.logged:
            if outcome.warc is not None and outcome.warc_end is not None:
                ends[outcome.warc] = max(ends.get(outcome.warc, 0), outcome.warc_end)
        self.trimmed = sum(trim(path, ends.get(path.name)) for path in crawl_warcs(out))
        self.warcs = WarcFiles(out, WarcFiles.next_run(out), warcinfo)
        self._log = (out / LOG).open("a", encoding="utf-8")

    def write(self, outcome: Outcome, records: bytes) -> None:
        """Records first (flushed), then the log line that makes the outcome final."""
        if records:
            outcome.warc, outcome.warc_end = self.warcs.append(records)
        self._log.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        self._log.flush()

    def finish(self, skips: list[Skip], report: dict[str, Any]) -> None:
        with atomic_open(self.out / SKIPPED) as f:
            for skip in skips:
                f.write(json.dumps(vars(skip), ensure_ascii=False) + "\n")
        with atomic_open(self.out / REPORT) as f:
            f.write(json.dumps(report, indent=1, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.warcs.close()
        self._log.close()

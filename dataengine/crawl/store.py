"""The crawl directory (a local path or an object-store URI): WARC files, the crawl log, the skip list, the report.

    crawl-RUN-WORKER-PART.warc.gz   request + response + metadata records of every kept response (by the workers)
    log.jsonl                       one line per URL a worker decided (fetched, redirected, failed, robots...);
    log-RUN-SEQ.jsonl               in an object store, where nothing can be appended, the log is a series of these
    skipped.jsonl                   URLs not fetched because of scope, scheme or limits (rewritten every run)
    report.json                     counts: fetched, failed and skipped by reason, bytes, per host

The log is the checkpoint: a stored outcome's line is written once the WARC file holding its records is complete
and names their end offset, so on resume each WARC file is cut back to its last logged record (and one no line
names is removed), and every logged URL is final.  What was fetched but not logged is fetched again.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from dataengine import storage
from dataengine.crawl.frontier import Outcome, Skip
from dataengine.crawl.warcfile import crawl_warcs, next_run, trim

LOG = "log.jsonl"
SEGMENT = re.compile(r"log-\d{5}-\d{6}\.jsonl")
SKIPPED = "skipped.jsonl"
REPORT = "report.json"
SEGMENT_SECONDS = 60.0  # an object-store log is written at least this often while outcomes come in


def read_log(out: storage.Target) -> tuple[list[Outcome], int]:
    """The logged outcomes, and the length of ``log.jsonl``'s complete lines (a crash may have cut the last one)."""
    names = storage.list_files(out, recursive=False)
    outcomes: list[Outcome] = []
    complete = 0
    for name in [LOG] * (LOG in names) + sorted(n for n in names if SEGMENT.fullmatch(n)):
        data = storage.read_bytes(storage.join(out, name))
        whole = data[: data.rfind(b"\n") + 1]
        complete = len(whole) if name == LOG else complete
        outcomes += [Outcome.from_json(json.loads(line)) for line in whole.splitlines() if line.strip()]
    return outcomes, complete


class CrawlStore:
    """The driver's side of the crawl directory: the log, the resume, the skip list and the report."""

    def __init__(self, out: str) -> None:
        self.out = out
        if not storage.is_uri(out):
            Path(out).mkdir(parents=True, exist_ok=True)
        self.logged, complete = read_log(out)
        log = storage.join(out, LOG)
        if storage.exists(log) and storage.size(log) > complete:
            trim(log, complete)
        ends: dict[str, int] = {}
        for outcome in self.logged:
            if outcome.warc is not None and outcome.warc_end is not None:
                ends[outcome.warc] = max(ends.get(outcome.warc, 0), outcome.warc_end)
        self.trimmed = sum(trim(storage.join(out, name), ends.get(name)) for name in crawl_warcs(out))
        self.run = next_run(out)
        self._segment, self._pending, self._last_write = 0, [], time.monotonic()
        self._log = None if storage.is_uri(out) else open(log, "a", encoding="utf-8")  # noqa: SIM115

    def log(self, outcomes: list[Outcome]) -> None:
        """Make outcomes final: appended to ``log.jsonl``, or gathered into the next log object of a URI."""
        lines = [json.dumps(o.to_json(), ensure_ascii=False) + "\n" for o in outcomes]
        if self._log is not None:
            self._log.write("".join(lines))
            self._log.flush()
            return
        self._pending += lines
        if time.monotonic() - self._last_write >= SEGMENT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the gathered lines of an object-store log as one new object (nothing to do for a local log)."""
        if self._pending:
            name = f"log-{self.run:05d}-{self._segment:06d}.jsonl"
            storage.write_text(storage.join(self.out, name), "".join(self._pending))
            self._segment, self._pending = self._segment + 1, []
        self._last_write = time.monotonic()

    def finish(self, skips: list[Skip], report: dict[str, Any]) -> None:
        self.flush()
        storage.write_text(storage.join(self.out, SKIPPED),
                           "".join(json.dumps(vars(skip), ensure_ascii=False) + "\n" for skip in skips))  # fmt: skip
        storage.write_text(storage.join(self.out, REPORT), json.dumps(report, indent=1, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.flush()
        if self._log is not None:
            self._log.close()

"""WARC records of one fetch (request, response, metadata) and the crawl's gzipped WARC files.

Payloads are stored as Common Crawl stores them: with the content coding undone (gzip, br...) and the
original ``Content-Encoding``, ``Transfer-Encoding`` and ``Content-Length`` kept as ``X-Crawler-*`` headers,
so every WARC reader gets the page bytes as served without decompressing, and a body cut at the size
limit (``WARC-Truncated: length``) is still readable.  Each record is its own gzip member.
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from dataengine.crawl.fetcher import Response

KEPT_AS_X_CRAWLER = frozenset({"content-encoding", "transfer-encoding", "content-length"})
FILE_NAME = re.compile(r"crawl-(\d{5})-(\d{3})\.warc\.gz")


def fetch_records(response: Response, info: dict[str, Any]) -> bytes:
    """request + response + metadata records of one fetch, gzipped; ``info`` is the metadata (JSON)."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version="1.1")
    headers = [(f"X-Crawler-{k}" if k.lower() in KEPT_AS_X_CRAWLER else k, v) for k, v in response.headers]
    headers.append(("Content-Length", str(len(response.body))))
    # WARC-Date is when capture began: the request's start, to the microsecond (WARC/1.1)
    date = datetime.fromtimestamp(response.started, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    warc_headers = {"WARC-Date": date, **({"WARC-IP-Address": response.ip} if response.ip else {})}
    if response.truncated:
        warc_headers["WARC-Truncated"] = "length"
    resp = writer.create_warc_record(
        response.url,
        "response",
        payload=io.BytesIO(response.body),
        length=len(response.body),
        http_headers=StatusAndHeaders(f"{response.status} {response.reason}", headers, protocol=response.version),
        warc_headers_dict=warc_headers,
    )
    req = writer.create_warc_record(
        response.url,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        http_headers=StatusAndHeaders(response.request_line, response.request_headers, is_http_request=True),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_request_response_pair(req, resp)
    blob = json.dumps(info, ensure_ascii=False, sort_keys=True).encode("utf-8")
    resp_id = resp.rec_headers.get_header("WARC-Record-ID")
    meta = writer.create_warc_record(
        response.url,
        "metadata",
        payload=io.BytesIO(blob),
        length=len(blob),
        warc_content_type="application/json",
        warc_headers_dict={"WARC-Refers-To": resp_id, "WARC-Concurrent-To": resp_id},
    )
    writer.write_record(meta)
    return buf.getvalue()


class WarcFiles:
    """The WARC files of one crawl run, ``crawl-RUN-PART.warc.gz``, appended by the driver alone.

    A file starts with a warcinfo record and is closed for a new part past ``max_bytes``.  Every append
    is flushed before the crawl log names its end offset, so a crash leaves at most an unlogged tail,
    which ``trim`` cuts off when the crawl resumes.
    """

    def __init__(self, out: Path, run: int, info: dict[str, str], max_bytes: int = 1 << 30) -> None:
        self.out, self.run, self.info, self.max_bytes = out, run, info, max_bytes
        self.part = -1
        self.file: io.BufferedWriter | None = None

    @staticmethod
    def next_run(out: Path) -> int:
        runs = [int(m[1]) for p in out.glob("crawl-*.warc.gz") if (m := FILE_NAME.fullmatch(p.name))]
        return max(runs, default=-1) + 1

    def append(self, data: bytes) -> tuple[str, int]:
        """Write ``data`` (whole gzip members); the file's name and its end offset after the write."""
        if self.file is None or self.file.tell() >= self.max_bytes:
            self._open_next()
        assert self.file is not None
        self.file.write(data)
        self.file.flush()
        return Path(self.file.name).name, self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def _open_next(self) -> None:
        self.close()
        self.part += 1
        path = self.out / f"crawl-{self.run:05d}-{self.part:03d}.warc.gz"
        self.file = path.open("wb")
        writer = WARCWriter(self.file, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, self.info))
        self.file.flush()


def crawl_warcs(out: Path) -> list[Path]:
    """The crawl's WARC files in the order they were written."""
    return sorted(p for p in out.glob("crawl-*.warc.gz") if FILE_NAME.fullmatch(p.name))


def trim(path: Path, end: int | None) -> int:
    """Cut ``path`` back to ``end`` (its last logged offset), or remove it when nothing in it was logged.

    Returns the number of bytes dropped: records written by a crawl that died before logging them.
    """
    size = path.stat().st_size
    if end is None:
        path.unlink()
        return size
    if size > end:
        os.truncate(path, end)
    return max(0, size - end)

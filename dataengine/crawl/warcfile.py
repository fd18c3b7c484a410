"""WARC records of one fetch (request, response, metadata) and the crawl's gzipped WARC files.

Payloads are stored as Common Crawl stores them: with the content coding undone (gzip, br...) and the
original ``Content-Encoding``, ``Transfer-Encoding`` and ``Content-Length`` kept as ``X-Crawler-*`` headers,
so every WARC reader gets the page bytes as served without decompressing, and a body cut at the size
limit (``WARC-Truncated: length``) is still readable.  Each record is its own gzip member.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import IO, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from dataengine import storage
from dataengine.crawl.fetcher import Response

KEPT_AS_X_CRAWLER = frozenset({"content-encoding", "transfer-encoding", "content-length"})
FILE_NAME = re.compile(r"crawl-(\d{5})(?:-\d{3})?-(\d{3}|\d{5})\.warc\.gz")  # crawl-RUN[-WORKER]-PART


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


class WarcParts:
    """One crawl worker's WARC files, ``crawl-RUN-WORKER-PART.warc.gz``, written under ``out`` (a path or URI).

    The worker appends its fetches' records itself, so page bytes never pass through the driver.  A part starts
    with a warcinfo record and is published whole (``storage.open_output``: an atomic rename, or one upload) once it
    passes ``max_bytes`` or ``max_seconds``, or when the driver asks; only then does the driver log the outcomes
    whose records it holds, so every logged offset is in a complete file.  Thread-safe: an actor works on several
    hosts at once.
    """

    def __init__(self, out: str, run: int, worker: int, info: dict[str, str], max_bytes: int = 1 << 30,
                 max_seconds: float = 300.0) -> None:  # fmt: skip
        self.out, self.run, self.worker, self.info = out, run, worker, info
        self.max_bytes, self.max_seconds = max_bytes, max_seconds
        self.part = -1
        self._file: tuple[ExitStack, IO[bytes], str, float] | None = None  # (closer, file, name, opened at)
        self._size = 0
        self._lock = threading.Lock()

    def append(self, data: bytes) -> tuple[str, int, list[str]]:
        """Write ``data`` (whole gzip members): the part's name, its end offset, and the parts published first."""
        with self._lock:
            published = self._publish() if self._due() else []
            if self._file is None:
                self._open_next()
            assert self._file is not None
            self._file[1].write(data)
            self._size += len(data)
            return self._file[2], self._size, published

    def publish(self) -> list[str]:
        """Publish the open part, if any: the names published."""
        with self._lock:
            return self._publish()

    def _due(self) -> bool:
        return self._file is not None and (
            self._size >= self.max_bytes or time.monotonic() - self._file[3] >= self.max_seconds
        )

    def _publish(self) -> list[str]:
        if self._file is None:
            return []
        closer, _, name, _ = self._file
        closer.close()
        self._file, self._size = None, 0
        return [name]

    def _open_next(self) -> None:
        self.part += 1
        name = f"crawl-{self.run:05d}-{self.worker:03d}-{self.part:05d}.warc.gz"
        closer = ExitStack()
        file = closer.enter_context(storage.open_output(storage.join(self.out, name)))
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(name, {**self.info, "hostname": socket.gethostname()}))
        file.write(buf.getvalue())
        self._file, self._size = (closer, file, name, time.monotonic()), len(buf.getvalue())


def next_run(out: storage.Target) -> int:
    """The number of a new crawl run into ``out``: one more than any run whose WARC files are there."""
    return max((int(m[1]) for name in crawl_warcs(out) if (m := FILE_NAME.fullmatch(name))), default=-1) + 1


def crawl_warcs(out: storage.Target) -> list[str]:
    """The names of the crawl's WARC files in ``out``, in the order they were written."""
    return [name for name in storage.list_files(out, recursive=False) if FILE_NAME.fullmatch(name)]


def trim(target: str, end: int | None) -> int:
    """Cut the WARC file ``target`` back to ``end`` (its last logged offset), or remove it when nothing in it
    was logged; the file is rewritten whole, as an object store allows.  Returns the number of bytes dropped:
    records written by a crawl that died before logging them."""
    size = storage.size(target)
    if end is None:
        storage.remove(target)
        return size
    if size > end:
        with storage.open_input(target) as source, storage.open_output(target) as dest:
            left = end
            while left and (chunk := source.read(min(left, 1 << 20))):
                dest.write(chunk)
                left -= len(chunk)
    return max(0, size - end)

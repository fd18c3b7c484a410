"""Shard writer: Arrow IPC stream files of about ``shard_tokens`` tokens, written atomically.

Rows are documents (never split across shards) with columns ``tokens`` (uint16 when the vocabulary fits,
else uint32), ``source``, ``id`` and ``lang`` (the programming language of code, the natural language of text;
null when unknown, and for rows written without one).  Record batches have a fixed number of rows, so the bytes
of a shard do not depend on how the rows arrived, and a shard only gets its final name once it is complete.
Each shard's manifest entry counts its tokens per source and per language.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from contextlib import ExitStack
from typing import IO, Any

import pyarrow as pa

from dataengine import storage

ROWS_PER_BATCH = 1024


def token_type(vocab_size: int) -> pa.DataType:
    return pa.uint16() if vocab_size <= 2**16 else pa.uint32()


def shard_schema(vocab_size: int, extra: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """The shard columns, then ``extra`` ones (a name the shard already has is not added twice)."""
    fields = [pa.field("tokens", pa.list_(token_type(vocab_size))), pa.field("source", pa.string())]
    fields += [pa.field("id", pa.string()), pa.field("lang", pa.string())]
    names = {f.name for f in fields}
    fields += [pa.field(k, v) for k, v in (extra or {}).items() if k not in names]
    return pa.schema(fields)


def sha256_file(path: storage.Target) -> str:
    return storage.sha256(path)


class _HashingSink:
    """The file a shard is written to, hashing the bytes on their way (no second read of an uploaded object)."""

    closed = False

    def __init__(self, file: IO[bytes]) -> None:
        self.file, self.digest = file, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        """Nothing: ``storage.open_output`` publishes the whole object when the shard is finished."""


class ShardWriter:
    """Append tables of rows in their final order; a new shard starts once ``shard_tokens`` is reached."""

    def __init__(self, out_dir: storage.Target, schema: pa.Schema, shard_tokens: int, prefix: str = "shard") -> None:
        """``out_dir``: a local directory or an object-store prefix (``s3://bucket/out``)."""
        self.out_dir, self.schema, self.shard_tokens, self.prefix = str(out_dir), schema, shard_tokens, prefix
        self.shards: list[dict[str, Any]] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._file: tuple[ExitStack, _HashingSink] | None = None
        self._tokens = 0
        self._rows = 0
        self._by_source: Counter[str] = Counter()
        self._by_lang: Counter[str] = Counter()

    def write(self, table: pa.Table) -> None:
        if "lang" not in table.column_names:
            table = table.append_column("lang", pa.nulls(table.num_rows, pa.string()))
        table = table.select(self.schema.names).cast(self.schema)
        lengths = table["tokens"].combine_chunks().value_lengths().to_numpy(zero_copy_only=False)
        sources, langs = table["source"].to_pylist(), table["lang"].to_pylist()
        start = 0
        for i, n in enumerate(lengths):
            self._tokens_in_row(sources[i], langs[i], int(n))
            if self._tokens >= self.shard_tokens:
                self._buffer(table.slice(start, i + 1 - start))
                start = i + 1
                self._finish_shard()
        if start < table.num_rows:
            self._buffer(table.slice(start))

    def close(self) -> list[dict[str, Any]]:
        if self._rows:
            self._finish_shard()
        return self.shards

    def _tokens_in_row(self, source: str, lang: str | None, n: int) -> None:
        self._tokens += n
        self._rows += 1
        self._by_source[source] += n
        if lang is not None:
            self._by_lang[lang] += n

    def _buffer(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROWS_PER_BATCH:
            self._flush(ROWS_PER_BATCH)

    def _flush(self, rows: int) -> None:
        merged = pa.concat_tables(self._pending)
        if self._writer is None:
            stack = ExitStack()
            sink = _HashingSink(stack.enter_context(storage.open_output(storage.join(self.out_dir, self._name()))))
            self._file, self._writer = (stack, sink), pa.ipc.new_stream(sink, self.schema)
        # One contiguous record batch, whatever chunks the rows arrived in: the file bytes depend on rows alone.
        # ``take`` copies into fresh buffers, so slice offsets and padding never leak into the file.
        self._writer.write_batch(merged.take(pa.array(range(rows))).combine_chunks().to_batches()[0])
        rest = merged.slice(rows)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _name(self) -> str:
        return f"{self.prefix}-{len(self.shards):05d}.arrow"

    def _finish_shard(self) -> None:
        if self._pending_rows:
            self._flush(self._pending_rows)
        assert self._writer is not None and self._file is not None
        self._writer.close()
        stack, sink = self._file
        stack.close()  # the shard appears under its final name, whole
        self.shards.append(
            {
                "path": self._name(),
                "sha256": sink.digest.hexdigest(),
                "rows": self._rows,
                "tokens": self._tokens,
                "tokens_by_source": dict(sorted(self._by_source.items())),
                "tokens_by_lang": dict(sorted(self._by_lang.items())),
            }
        )
        self._writer, self._file, self._tokens, self._rows = None, None, 0, 0
        self._by_source, self._by_lang = Counter(), Counter()

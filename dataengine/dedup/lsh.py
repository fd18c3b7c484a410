"""LSH banding -> verified candidate edges -> connected components -> the smallest id of each component is kept.

Every step is a Ray Data shuffle; partitions are grouped vectorised (numpy/Arrow sorts, not one Python call per
bucket), and the driver holds only counts (documents, edges, rounds):

1. signatures -> one row per (document, band) ``(bucket, id)``, grouped by a partition of the bucket: of each
   bucket that holds two documents or more, every member paired with the smallest id of the bucket ``(a, b)``;
2. those pairs (ids only: a pair found in several bands is one pair once distinct) co-grouped with the signatures
   by ``a``, where they are made distinct, then by ``b``: kept as edges when the two signatures agree on
   ``threshold`` of their values (estimated Jaccard).  Attaching signatures to distinct pairs, not to bucket
   rows, carries each signature once per pair instead of once per shared band (about 6 of 14 at Jaccard 0.9);
3. connected components of the edges, distributed (``components.py``): ``(id, kept)`` for each duplicate;
4. two co-groups with the signatures (on ``id``, then on ``kept``): each duplicate's estimated Jaccard to the
   document kept in its place.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import NearDedupConfig
from dataengine.dedup.cogroup import cogroup, partitions
from dataengine.dedup.components import connected_components
from dataengine.dedup.minhash import U64, estimated_jaccard, fmix64, seeded_u64
from dataengine.schema import stable_hash
from dataengine.shuffle import partition_map

SIG_ROWS_PER_PARTITION = 100_000  # rows carrying a signature (448 bytes at 112 permutations): ~45 MB per task


def sig_matrix(column: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    """A ``fixed_size_binary`` signature column as a ``(rows, num_perm)`` uint32 matrix (zero copy)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    width = 4 * num_perm
    data = np.frombuffer(column.buffers()[1], dtype=np.uint8)[
        column.offset * width : (column.offset + len(column)) * width
    ]
    return data.view(np.uint32).reshape(len(column), num_perm)


def band_buckets(sigs: np.ndarray, sources: list[str], cfg: NearDedupConfig) -> np.ndarray:
    """``(docs, bands)`` uint64 bucket ids: a hash of the band's values, its index and (by scope) the source."""
    d = len(sigs)
    rows = sigs[:, : cfg.bands * cfg.rows].reshape(d, cfg.bands, cfg.rows).astype(U64)
    h = (rows * seeded_u64("lsh-row", cfg.rows)[None, None, :]).sum(axis=2, dtype=U64)
    h ^= seeded_u64("lsh-band", cfg.bands)[None, :]
    if cfg.scope == "source":
        h ^= np.array([stable_hash("lsh-source", s) for s in sources], dtype=U64)[:, None]
    return fmix64(h)


def _partition(buckets: np.ndarray, parts: int) -> np.ndarray:
    return (buckets % U64(parts)).astype(np.int32)


def _band_rows(table: pa.Table, cfg: NearDedupConfig, parts: int) -> pa.Table:
    sigs = sig_matrix(table["sig"], cfg.num_perm)
    buckets = band_buckets(sigs, table["source"].to_pylist(), cfg)
    doc = pa.array(np.repeat(np.arange(len(sigs)), buckets.shape[1]), pa.int64())
    buckets = buckets.ravel()
    return pa.table({"part": _partition(buckets, parts), "bucket": buckets, "id": table["id"].take(doc)})


def _bucket_pairs(group: pa.Table) -> pa.Table:
    """Of each bucket that holds two documents or more: every member but the smallest, paired with the smallest."""
    group = group.sort_by([("bucket", "ascending"), ("id", "ascending")])
    root = _runs(group["bucket"].to_numpy())
    member = np.arange(len(root)) != root
    ids = group["id"]
    return pa.table({"a": ids.filter(pa.array(member)), "b": ids.take(pa.array(root[member], pa.int64()))})


def _attach_sig(
    left: pa.Table | None, sigs: pa.Table | None, on: str, name: str, schema: pa.Schema, distinct: bool = False
) -> pa.Table:
    """``cogroup`` function: the left rows (made distinct first when asked), sorted, with the signature of the
    document their ``on`` names."""
    if left is None:
        return schema.empty_table()
    assert sigs is not None, "every id has a signature"
    if distinct:
        left = left.group_by(left.column_names, use_threads=False).aggregate([])
    sig = sigs["sig"].take(pc.index_in(left[on], value_set=sigs["id"]))
    order = [(n, "ascending") for n in schema.names if not n.endswith("sig")]
    return left.append_column(name, sig).select(schema.names).sort_by(order)


def _join_sig(
    left: ray.data.Dataset,
    sigs: ray.data.Dataset,
    on: str,
    name: str,
    schema: pa.Schema,
    parts: int,
    distinct: bool = False,
) -> ray.data.Dataset:
    """``left`` with column ``name``: the signature (from ``sigs``'s ``id, sig``) of the id in column ``on``;
    ``schema`` is the result's (the left's and ``name``).  ``distinct``: repeated left rows count once (they
    share ``on``, so they meet in one partition)."""
    kwargs = {"on": on, "name": name, "schema": schema, "distinct": distinct}
    left_schema = pa.schema([f for f in schema if f.name != name])
    schemas = (left_schema, pa.schema([("id", pa.string()), ("sig", schema.field(name).type)]))
    return cogroup(left, sigs, (on, "id"), schemas, parts, _attach_sig, kwargs)


def _runs(keys: np.ndarray) -> np.ndarray:
    """For rows sorted by ``keys``: the index of the first row of each row's run."""
    new_run = np.ones(len(keys), dtype=bool)
    new_run[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new_run)
    return np.repeat(starts, np.diff(np.append(starts, len(keys))))


def _verified_edges(table: pa.Table, threshold: float, num_perm: int) -> pa.Table:
    """The pairs whose signatures agree on ``threshold`` of their values."""
    jac = estimated_jaccard(sig_matrix(table["a_sig"], num_perm), sig_matrix(table["b_sig"], num_perm))
    return table.select(["a", "b"]).filter(pa.array(jac >= threshold))


def _jaccard(table: pa.Table, num_perm: int) -> pa.Table:
    jac = estimated_jaccard(sig_matrix(table["sig"], num_perm), sig_matrix(table["kept_sig"], num_perm))
    return pa.table({"id": table["id"], "kept": table["kept"], "jaccard": pa.array(jac, pa.float32())})


def find_near_duplicates(sigs: ray.data.Dataset, cfg: NearDedupConfig) -> ray.data.Dataset:
    """``(id, kept, jaccard)`` of every near-duplicate, a materialised dataset.

    ``sigs`` (materialised: it is read several times) has ``id``, ``source`` and ``sig``
    (``fixed_size_binary(4 * num_perm)``) per document.
    """
    found = pa.schema([("id", pa.string()), ("kept", pa.string()), ("jaccard", pa.float32())])
    n_docs = sigs.count()
    if n_docs < 2:
        return ray.data.from_arrow(found.empty_table())
    sig_type = pa.binary(4 * cfg.num_perm)
    parts = partitions(n_docs * cfg.bands)
    rows = sigs.map_batches(_band_rows, fn_kwargs={"cfg": cfg, "parts": parts}, batch_format="pyarrow")
    pairs = partition_map(rows, "part", parts, _bucket_pairs)
    id_sig = sigs.select_columns(["id", "sig"])
    parts = partitions(n_docs, SIG_ROWS_PER_PARTITION)  # a task holds its partition several times over
    with_a = pa.schema([("a", pa.string()), ("b", pa.string()), ("a_sig", sig_type)])
    pairs = _join_sig(pairs, id_sig, "a", "a_sig", with_a, parts, distinct=True)
    pairs = _join_sig(pairs, id_sig, "b", "b_sig", pa.schema([*with_a, ("b_sig", sig_type)]), parts)
    kwargs = {"threshold": cfg.threshold, "num_perm": cfg.num_perm}
    edges = pairs.map_batches(_verified_edges, fn_kwargs=kwargs, batch_format="pyarrow").materialize()
    if edges.count() == 0:
        return ray.data.from_arrow(found.empty_table())
    kept, _ = connected_components(edges)
    own = pa.schema([("id", pa.string()), ("kept", pa.string()), ("sig", sig_type)])
    dups = _join_sig(kept, id_sig, "id", "sig", own, parts)
    theirs = pa.schema([*own, ("kept_sig", sig_type)])
    dups = _join_sig(dups, id_sig, "kept", "kept_sig", theirs, parts)
    return dups.map_batches(_jaccard, fn_kwargs={"num_perm": cfg.num_perm}, batch_format="pyarrow").materialize()

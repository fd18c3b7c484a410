"""LSH banding -> verified candidate edges -> connected components -> the smallest id of each component is kept.

The two shuffles are Ray Data groupbys on a partition number taken from the (band, band hash) bucket; each
partition is grouped vectorised (numpy/Arrow sorts, not one Python call per bucket):

1. signatures -> one row per (document, band): which buckets hold two documents or more;
2. only the documents of those buckets, with their signatures: star edges from each member to the smallest
   id of its bucket, kept when the signatures agree on ``threshold`` of their values (estimated Jaccard);
3. connected components of the edges in the driver (min-label propagation in numpy): the driver holds the
   edge list (two ids and a float per edge) and the signatures of the kept document of each component,
   never all signatures;
4. a map over the signatures: each duplicate's estimated Jaccard to the document kept in its place.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import NearDedupConfig
from dataengine.dedup.minhash import U64, estimated_jaccard, fmix64, seeded_u64
from dataengine.schema import stable_hash

ROWS_PER_PARTITION = 500_000  # band rows per groupby partition (a partition is grouped in one task's memory)


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
    buckets = band_buckets(sig_matrix(table["sig"], cfg.num_perm), table["source"].to_pylist(), cfg).ravel()
    return pa.table({"part": _partition(buckets, parts), "bucket": buckets})


def _shared_buckets(group: pa.Table) -> pa.Table:
    buckets, counts = np.unique(group["bucket"].to_numpy(), return_counts=True)
    return pa.table({"bucket": buckets[counts > 1]})


def _candidate_rows(table: pa.Table, shared: np.ndarray, cfg: NearDedupConfig, parts: int) -> pa.Table:
    sigs = sig_matrix(table["sig"], cfg.num_perm)
    buckets = band_buckets(sigs, table["source"].to_pylist(), cfg)
    pos = np.searchsorted(shared, buckets)
    hit = shared[np.minimum(pos, len(shared) - 1)] == buckets
    doc, band = np.nonzero(hit)
    picked = pa.array(doc, pa.int64())
    return pa.table(
        {
            "part": _partition(buckets[doc, band], parts),
            "bucket": buckets[doc, band],
            "id": table["id"].take(picked),
            "sig": table["sig"].take(picked),
        }
    )


def _runs(keys: np.ndarray) -> np.ndarray:
    """For rows sorted by ``keys``: the index of the first row of each row's run."""
    new_run = np.ones(len(keys), dtype=bool)
    new_run[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new_run)
    return np.repeat(starts, np.diff(np.append(starts, len(keys))))


def _verified_edges(group: pa.Table, threshold: float, num_perm: int) -> pa.Table:
    group = group.sort_by([("bucket", "ascending"), ("id", "ascending")])
    root = _runs(group["bucket"].to_numpy())
    sigs = sig_matrix(group["sig"], num_perm)
    jac = estimated_jaccard(sigs, sigs[root])
    edge = (np.arange(len(root)) != root) & (jac >= threshold)
    ids = group["id"]
    return pa.table(
        {
            "a": ids.filter(pa.array(edge)),
            "b": ids.take(pa.array(root[edge], pa.int64())),
            "jaccard": pa.array(jac[edge], pa.float32()),
        }
    )


def components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Label of each of ``n`` nodes = the smallest node index of its component (edges ``a[i]-b[i]``).

    Min-label propagation with pointer jumping; a node's label is always a node of its component and only
    decreases, so the smallest node keeps its own index and, once no edge changes, labels the component.
    """
    labels = np.arange(n)
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def _select(table: pa.Table, ids: pa.Array) -> pa.Table:
    return table.filter(pc.is_in(table["id"], value_set=ids)).select(["id", "sig"])


def _against_kept(table: pa.Table, dups: pa.Table, kept_sigs: pa.Table, num_perm: int) -> pa.Table:
    """The estimated Jaccard of each duplicate in the batch to the document kept in its place."""
    where = pc.index_in(table["id"], value_set=dups["id"])
    hit = pc.is_valid(where)
    kept = dups["kept"].take(where.filter(hit))
    own = sig_matrix(table["sig"].filter(hit), num_perm)
    theirs = sig_matrix(kept_sigs["sig"].take(pc.index_in(kept, value_set=kept_sigs["id"])), num_perm)
    jac = estimated_jaccard(own, theirs) if len(own) else np.zeros(0)
    return pa.table({"id": table["id"].filter(hit), "kept": kept, "jaccard": pa.array(jac, pa.float32())})


def _collect(ds: ray.data.Dataset) -> pa.Table | None:
    tables = [t for t in ds.iter_batches(batch_format="pyarrow", batch_size=None) if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def find_near_duplicates(sigs: ray.data.Dataset, cfg: NearDedupConfig) -> pa.Table:
    """``(id, kept, jaccard)`` of every near-duplicate, sorted by id.

    ``sigs`` has ``id``, ``source`` and ``sig`` (``fixed_size_binary(4 * num_perm)``) per document.
    """
    empty = pa.table(
        {"id": pa.array([], pa.string()), "kept": pa.array([], pa.string()), "jaccard": pa.array([], pa.float32())}
    )
    n_docs = sigs.count()
    if n_docs < 2:
        return empty
    parts = max(2, n_docs * cfg.bands // ROWS_PER_PARTITION + 1)
    rows = sigs.map_batches(_band_rows, fn_kwargs={"cfg": cfg, "parts": parts}, batch_format="pyarrow")
    shared = _collect(rows.groupby("part", num_partitions=parts).map_groups(_shared_buckets, batch_format="pyarrow"))
    if shared is None:
        return empty
    candidates = sigs.map_batches(
        _candidate_rows,
        fn_kwargs={"shared": np.sort(shared["bucket"].to_numpy()), "cfg": cfg, "parts": parts},
        batch_format="pyarrow",
    )
    edges = _collect(
        candidates.groupby("part", num_partitions=parts).map_groups(
            _verified_edges, fn_kwargs={"threshold": cfg.threshold, "num_perm": cfg.num_perm}, batch_format="pyarrow"
        )
    )
    if edges is None:
        return empty

    nodes = pc.unique(pa.concat_arrays([edges["a"].combine_chunks(), edges["b"].combine_chunks()]))
    nodes = nodes.take(pc.sort_indices(nodes))
    a = pc.index_in(edges["a"], value_set=nodes).to_numpy()
    b = pc.index_in(edges["b"], value_set=nodes).to_numpy()
    labels = components(a, b, len(nodes))
    dup = labels != np.arange(len(nodes))
    dups = pa.table({"id": nodes.filter(pa.array(dup)), "kept": nodes.take(pa.array(labels[dup], pa.int64()))})
    kept_sigs = _collect(sigs.map_batches(_select, fn_kwargs={"ids": pc.unique(dups["kept"])}, batch_format="pyarrow"))
    found = _collect(
        sigs.map_batches(
            _against_kept,
            fn_kwargs={"dups": dups, "kept_sigs": kept_sigs, "num_perm": cfg.num_perm},
            batch_format="pyarrow",
        )
    )
    return found.sort_by("id")

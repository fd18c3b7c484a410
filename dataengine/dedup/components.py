"""Connected components of the near-duplicate graph, distributed: each node's label is its component's smallest id.

The algorithm is the alternating large-star / small-star of Kiveris et al., "Connected Components in MapReduce
and Beyond" (SoCC 2014): min-label propagation on the edge list itself, where each step is one Ray Data groupby
by a hash partition of the node and the edges are the labels.

- large-star: every node u links each of its larger neighbours straight to m(u), the smallest of u and its
  neighbours (a pointer jump: a whole star moves to a smaller label in one step);
- small-star: every node u links itself and its smaller neighbours to the smallest of them.

Neither step changes the components; when a round (one of each) changes no edge, every component is a star
around its smallest node, i.e. the edges are ``(id, kept)``.  Rounds are O(log^2 n) in the worst case and about
log(diameter) in practice (a 1,000-node chain in shuffled id order took 9 without the contraction below);
``MAX_ROUNDS`` bounds them.
Before the rounds, one groupby contracts each partition's edges in memory (``local_components``: every node
linked to the smallest node it reaches through that partition's edges), which keeps the components and
leaves a graph that fits one partition (most builds' graphs) already in stars: one round then only checks it.

Why this and not union-find in sharded actors (Data-Juicer's BTS): it is plain Ray Data shuffles, so it spills
to disk, retries failed tasks and needs no actor sized to its share of the nodes; each task holds one partition
of the edges (``ROWS_PER_PARTITION`` directed edges, two ids each: about 50-100 MB with 40-byte ids), the edge
list between steps lives in the object store (spilled when large), and the driver holds two numbers a round.
BTS does fewer passes over the edges, at the price of actors whose memory grows with their nodes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.dedup.cogroup import PART, ROWS_PER_PARTITION, key_partition, partitions
from dataengine.shuffle import partition_map

MAX_ROUNDS = 64


def local_components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """In memory: the label of each of ``n`` nodes = the smallest node index of its component (edges
    ``a[i]-b[i]``).  Min-label propagation with pointer jumping: a label is always a node of the component and
    only decreases, so the smallest node keeps its own index and, once no edge changes, labels the component."""
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


def _ranks(a: pa.ChunkedArray, b: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The distinct ids of both columns, sorted, and each row's two ids as indices into them (so index order is
    id order), without repeated pairs or self-loops."""
    a, b = a.combine_chunks(), b.combine_chunks()
    nodes = pc.unique(pa.concat_arrays([a, b]))
    nodes = nodes.take(pc.sort_indices(nodes))
    u = pc.index_in(a, value_set=nodes).to_numpy(zero_copy_only=False).astype(np.int64)
    v = pc.index_in(b, value_set=nodes).to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = np.unique(np.stack([u, v], axis=1)[u != v], axis=0)
    return nodes, pairs[:, 0], pairs[:, 1]


def _edges(nodes: pa.Array, a: np.ndarray, b: np.ndarray, new: np.ndarray) -> pa.Table:
    order = np.lexsort((b, a))
    return pa.table(
        {
            "a": nodes.take(pa.array(a[order], pa.int64())),
            "b": nodes.take(pa.array(b[order], pa.int64())),
            "new": pa.array(new[order].astype(np.int8), pa.int8()),
        }
    )


def _directed(table: pa.Table, parts: int, both_ways: bool) -> pa.Table:
    """Edges ``(a, b, new)`` as rows ``(node, nbr, new)`` partitioned by node: both ways, or from the larger end."""
    node, nbr, new = table["a"].combine_chunks(), table["b"].combine_chunks(), table["new"].combine_chunks()
    if both_ways:
        node, nbr, new = pa.concat_arrays([node, nbr]), pa.concat_arrays([nbr, node]), pa.concat_arrays([new, new])
    return pa.table({"node": node, "nbr": nbr, "new": new, PART: pa.array(key_partition(node, parts), pa.int32())})


def contract(group: pa.Table) -> pa.Table:
    """Every node of the partition's edges linked to the smallest node it reaches through them."""
    nodes, u, v = _ranks(group["node"], group["nbr"])
    labels = local_components(u, v, len(nodes))
    moved = np.flatnonzero(labels != np.arange(len(nodes)))
    return _edges(nodes, moved, labels[moved], np.zeros(len(moved), bool))


def large_star(group: pa.Table) -> pa.Table:
    """Each node's larger neighbours, linked to the smallest of the node and its neighbours (``new``: the edge
    moved)."""
    nodes, u, v = _ranks(group["node"], group["nbr"])
    low = np.arange(len(nodes))
    np.minimum.at(low, u, v)
    up = v > u
    return _edges(nodes, v[up], low[u[up]], low[u[up]] != u[up])


def small_star(group: pa.Table) -> pa.Table:
    """Each node (rows from its larger end) and its smaller neighbours, linked to the smallest of them.

    ``new`` marks the edges that moved, in this step or (for a node's own edge) in the large-star before it, so
    that one sum per round says whether the round changed anything."""
    nodes, u, v = _ranks(group["node"], group["nbr"])
    low = np.arange(len(nodes))
    np.minimum.at(low, u, v)
    owners = np.unique(u)
    moved = v != low[u]
    flagged = pc.index_in(group["node"].filter(pc.equal(group["new"], 1)), value_set=nodes)
    was_new = np.zeros(len(nodes), dtype=bool)
    was_new[flagged.to_numpy(zero_copy_only=False).astype(np.int64)] = True
    a = np.concatenate([owners, v[moved]])
    b = np.concatenate([low[owners], low[u][moved]])
    return _edges(nodes, a, b, np.concatenate([was_new[owners], np.ones(int(moved.sum()), bool)]))


def _count_new(table: pa.Table) -> pa.Table:
    """One number per block (not ``Dataset.sum``: its aggregator actors cost seconds a call)."""
    return pa.table({"new": [int(pc.sum(table["new"]).as_py() or 0)]})


def _shuffle(edges: ray.data.Dataset, parts: int, fn: Callable[[pa.Table], pa.Table], both: bool) -> ray.data.Dataset:
    rows = edges.map_batches(_directed, fn_kwargs={"parts": parts, "both_ways": both}, batch_format="pyarrow")
    return partition_map(rows, PART, parts, fn)


def connected_components(
    edges: ray.data.Dataset, rows_per_partition: int = ROWS_PER_PARTITION
) -> tuple[ray.data.Dataset, int]:
    """``(id, kept)`` for every node of the edges ``(a, b)`` (string ids) but the smallest of each component,
    and the number of rounds it took.  ``edges`` should be materialised (it is counted, then read)."""
    parts = partitions(2 * edges.count(), rows_per_partition)
    edges = edges.select_columns(["a", "b"]).map_batches(_unmoved, batch_format="pyarrow")
    edges = _shuffle(edges, parts, contract, True)
    for rounds in range(1, MAX_ROUNDS + 1):
        edges = _shuffle(_shuffle(edges, parts, large_star, True), parts, small_star, False).materialize()
        if not sum(row["new"] for row in edges.map_batches(_count_new, batch_format="pyarrow").iter_rows()):
            return edges.select_columns(["a", "b"]).rename_columns({"a": "id", "b": "kept"}), rounds
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


def _unmoved(table: pa.Table) -> pa.Table:
    return table.append_column("new", pa.array(np.zeros(table.num_rows, np.int8), pa.int8()))

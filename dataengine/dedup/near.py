"""The near-dedup stage of a build: line-level boilerplate removal, then document-level MinHash-LSH.

Lines go first so that shared navigation and footers do not make distinct pages look alike.  Signatures are
computed once per kept document (a ``map_batches`` over the documents, per source domain's shingle spec) and
held in Ray's object store; the LSH steps (``lsh.py``) read them from there.  The duplicates found stay a Ray
dataset, co-grouped with the documents by id: the driver holds counts and the lines removed per source only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import NearDedupConfig, SourceConfig
from dataengine.dedup.cogroup import arrow_schema, cogroup, partitions
from dataengine.dedup.lines import DOCS_PER_PARTITION, line_dedup
from dataengine.dedup.lsh import find_near_duplicates
from dataengine.dedup.minhash import signatures
from dataengine.schema import reject_rows

STAGE = "near_dedup"


def signature_rows(table: pa.Table, cfg: NearDedupConfig, domain_of: dict[str, str]) -> pa.Table:
    """Ray Data ``map_batches`` function: ``id``, ``source`` and ``sig`` of every kept document with a shingle."""
    kept = table.filter(pc.is_null(table["reject"]))
    domains = np.array([domain_of[s] for s in kept["source"].to_pylist()], dtype=object)
    width = 4 * cfg.num_perm
    parts = []
    for domain in sorted(set(domains)):
        rows = kept.filter(pa.array(domains == domain))
        sigs, has = signatures(rows["text"], cfg.shingle_spec(domain), cfg.num_perm, cfg.seed)
        rows = rows.filter(pa.array(has))
        sig = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(sigs), [None, pa.py_buffer(sigs.tobytes())])
        parts.append(pa.table({"id": rows["id"], "source": rows["source"], "sig": sig}))
    if not parts:
        schema = pa.schema([("id", pa.string()), ("source", pa.string()), ("sig", pa.binary(width))])
        return schema.empty_table()
    return pa.concat_tables(parts)


def mark_near_duplicates(docs: pa.Table | None, duplicates: pa.Table | None) -> pa.Table:
    """``cogroup`` function: one partition's documents, sorted by id, with the duplicates among them rejected
    (naming the kept id and the estimated Jaccard)."""
    assert docs is not None, "every duplicate's id is a document's"
    table = docs.sort_by([("id", "ascending")])
    if duplicates is None:
        return table
    where = pc.index_in(table["id"], value_set=duplicates["id"]).to_pylist()
    kept, jac = duplicates["kept"].to_pylist(), duplicates["jaccard"].to_pylist()
    rejects = [None if i is None else f"{STAGE}:duplicate" for i in where]
    details = [None if i is None else f"kept={kept[i]} jaccard={jac[i]:.2f}" for i in where]
    return reject_rows(table, rejects, details)


def near_dedup(
    docs: ray.data.Dataset, cfg: NearDedupConfig, sources: list[SourceConfig]
) -> tuple[ray.data.Dataset, dict[str, dict[str, int]]]:
    """The documents with boilerplate lines removed and near-duplicates rejected; lines/bytes removed per source."""
    if not cfg.enabled:
        return docs, {}
    domain_of = {s.name: s.filter_domain for s in sources}
    docs = docs.materialize()  # read more than once: the upstream stages run once
    removed: dict[str, dict[str, int]] = {}
    if cfg.lines.enabled and any(d in cfg.lines.domains for d in domain_of.values()):
        docs, removed = line_dedup(docs, domain_of, cfg.lines)
        docs = docs.materialize()
    sigs = docs.map_batches(signature_rows, fn_kwargs={"cfg": cfg, "domain_of": domain_of}, batch_format="pyarrow")
    duplicates = find_near_duplicates(sigs.materialize(), cfg)
    if duplicates.count() == 0:
        return docs, removed
    parts = partitions(docs.count(), DOCS_PER_PARTITION)
    schemas = (arrow_schema(docs), arrow_schema(duplicates))
    return cogroup(docs, duplicates, ("id", "id"), schemas, parts, mark_near_duplicates), removed

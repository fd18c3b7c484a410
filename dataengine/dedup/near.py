"""The near-dedup stage of a build: line-level boilerplate removal, then document-level MinHash-LSH.

Lines go first so that shared navigation and footers do not make distinct pages look alike.  Signatures are
computed once per kept document from its text without boilerplate (per source domain's shingle spec) and held
in Ray's object store; the LSH steps (``lsh.py``) read them from there.  The duplicates found stay a Ray
dataset, co-grouped with the documents by id: the driver holds counts and the lines removed per source only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import NearDedupConfig, SourceConfig
from dataengine.dedup.cogroup import arrow_schema, cogroup, partitions
from dataengine.dedup.lines import BOILERPLATE_SCHEMA, DOCS_PER_PARTITION, boilerplate_lines, remove_lines
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


EDITS_SCHEMA = pa.schema([("id", pa.string()), ("key", pa.uint64()), ("kept", pa.string()), ("jaccard", pa.float32())])


def cleaned_signatures(
    docs: pa.Table | None, boilerplate: pa.Table | None, cfg: NearDedupConfig, domain_of: dict[str, str]
) -> pa.Table:
    """``cogroup`` function: the signature rows of one partition's documents once their boilerplate lines are
    removed (the cleaned text itself is never stored: ``clean_documents`` removes the same lines again)."""
    assert docs is not None, "every boilerplate row's id is a document's"
    return signature_rows(remove_lines(docs, boilerplate, domain_of, cfg.lines), cfg, domain_of)


def clean_documents(
    docs: pa.Table | None, edits: pa.Table | None, cfg: NearDedupConfig, domain_of: dict[str, str]
) -> pa.Table:
    """``cogroup`` function: one partition's documents, sorted by id, without their boilerplate lines (edit rows
    with a ``key``) and with the near-duplicates among them rejected (rows with ``kept``: the kept id and the
    estimated Jaccard)."""
    assert docs is not None, "every edit's id is a document's"
    if edits is None:
        return docs.sort_by([("id", "ascending")])
    lines = edits.filter(pc.is_valid(edits["key"]))
    table = remove_lines(docs, lines.select(["id", "key"]) if lines.num_rows else None, domain_of, cfg.lines)
    duplicates = edits.filter(pc.is_valid(edits["kept"]))
    if not duplicates.num_rows:
        return table
    where = pc.index_in(table["id"], value_set=duplicates["id"]).to_pylist()
    kept, jac = duplicates["kept"].to_pylist(), duplicates["jaccard"].to_pylist()
    rejects = [None if i is None else f"{STAGE}:duplicate" for i in where]
    details = [None if i is None else f"kept={kept[i]} jaccard={jac[i]:.2f}" for i in where]
    return reject_rows(table, rejects, details)


def _as_edits(table: pa.Table) -> pa.Table:
    """Boilerplate rows ``(id, key)`` or duplicate rows ``(id, kept, jaccard)`` under the one edit schema."""
    n = table.num_rows
    return pa.table(
        {
            f.name: table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in EDITS_SCHEMA
        }
    )


def near_dedup(
    docs: ray.data.Dataset, cfg: NearDedupConfig, sources: list[SourceConfig]
) -> tuple[ray.data.Dataset, dict[str, dict[str, int]]]:
    """The documents with boilerplate lines removed and near-duplicates rejected; lines/bytes removed per source.

    The documents are shuffled twice (signatures of the cleaned text, then the cleaning and the rejections
    together), so no cleaned copy of the corpus is ever held beside the input and the result.
    """
    if not cfg.enabled:
        return docs, {}
    domain_of = {s.name: s.filter_domain for s in sources}
    docs = docs.materialize()  # read more than once: the upstream stages run once
    parts = partitions(docs.count(), DOCS_PER_PARTITION)
    boilerplate, removed = None, {}
    if cfg.lines.enabled and any(d in cfg.lines.domains for d in domain_of.values()):
        boilerplate, removed = boilerplate_lines(docs, domain_of, cfg.lines, parts)
    kwargs = {"cfg": cfg, "domain_of": domain_of}
    if boilerplate is None:
        sigs = docs.map_batches(signature_rows, fn_kwargs=kwargs, batch_format="pyarrow")
    else:
        schemas = (arrow_schema(docs), BOILERPLATE_SCHEMA)
        sigs = cogroup(docs, boilerplate, ("id", "id"), schemas, parts, cleaned_signatures, kwargs)
    duplicates = find_near_duplicates(sigs.materialize(), cfg)
    del sigs  # the co-group's signature blocks: freed before the documents are shuffled again
    if boilerplate is None and duplicates.count() == 0:
        return docs, removed
    edits = duplicates if boilerplate is None else boilerplate.union(duplicates)
    edits = edits.map_batches(_as_edits, batch_format="pyarrow")
    schemas = (arrow_schema(docs), EDITS_SCHEMA)
    return cogroup(docs, edits, ("id", "id"), schemas, parts, clean_documents, kwargs), removed

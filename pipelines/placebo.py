"""The experiment's placebo: code with its tokens kept and its structure destroyed.

A stage the experiment adds after the cleaned documents (``pipelines.build.stages(extra=...)``): each training
document of the named sources gets its lines in a seeded random order.  The held-out slice stays intact, so its
bits per byte compare across the ladder.  The core build knows nothing of it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataengine.mix.plan import is_held_out
from dataengine.pipeline import Stage
from dataengine.schema import set_column, stable_hash


def scramble_lines(table: pa.Table, sources: list[str], held_out: float) -> pa.Table:
    """Ray Data ``map_batches`` function: the lines of each training document of ``sources`` shuffled by a hash
    of its id (same tokens, no structure)."""
    texts = table["text"].to_pylist()
    for i, (doc_id, source) in enumerate(zip(table["id"].to_pylist(), table["source"].to_pylist(), strict=True)):
        if source in sources and texts[i] is not None and not is_held_out(doc_id, held_out):
            lines = texts[i].split("\n")
            order = np.argsort([stable_hash("scramble", doc_id, k) for k in range(len(lines))], kind="stable")
            texts[i] = "\n".join(lines[k] for k in order)
    return set_column(table, "text", pa.array(texts, pa.string()))


def scramble_stage(sources: list[str]) -> Stage:
    """The placebo as a build stage for ``sources``."""
    return Stage(
        "scramble_lines",
        "map",
        scramble_lines,
        kwargs=lambda ctx: {"sources": sources, "held_out": ctx.mix.held_out},
    )

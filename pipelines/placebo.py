"""The experiment's placebo: code with its tokens kept and its structure destroyed.

A stage the experiment adds after the held-out slice is chosen (``pipelines.build.stages(extra=...)``): each
training document of the named sources gets its lines in a seeded random order, and is tokenized again.  The
held-out slice stays intact (it is chosen from the unscrambled documents, so it is the same slice as every other
rung's), and its bits per byte compare across the ladder.  The core build knows nothing of it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataengine.mix.plan import HeldOut
from dataengine.pipeline import Stage
from dataengine.schema import set_column, stable_hash
from dataengine.tokenize import TokenizeStage


def scramble_lines(table: pa.Table, sources: list[str], held_out: HeldOut) -> pa.Table:
    """The lines of each training document of ``sources`` shuffled by a hash of its id (same lines, no
    structure)."""
    texts = table["text"].to_pylist()
    for i, (doc_id, source) in enumerate(zip(table["id"].to_pylist(), table["source"].to_pylist(), strict=True)):
        if source in sources and texts[i] is not None and not held_out.contains(source, doc_id):
            lines = texts[i].split("\n")
            order = np.argsort([stable_hash("scramble", doc_id, k) for k in range(len(lines))], kind="stable")
            texts[i] = "\n".join(lines[k] for k in order)
    return set_column(table, "text", pa.array(texts, pa.string()))


class ScrambleLines:
    """Ray Data actor: ``scramble_lines``, then the batch tokenized again with the build's tokenizer (the mix
    counts and writes the scrambled tokens)."""

    def __init__(self, sources: list[str], held_out: HeldOut, tokenizer_json: str) -> None:
        self.sources, self.held_out = sources, held_out
        self.tokenize = TokenizeStage(tokenizer_json)

    def __call__(self, table: pa.Table) -> pa.Table:
        return self.tokenize(scramble_lines(table, self.sources, self.held_out))


def scramble_stage(sources: list[str]) -> Stage:
    """The placebo as a build stage for ``sources``."""
    return retokenizing_stage("scramble_lines", ScrambleLines, sources)


def retokenizing_stage(name: str, transform: type, sources: list[str]) -> Stage:
    """A control's map stage: ``transform`` rewrites the training documents of ``sources`` outside the held-out
    slice and tokenizes them again with the build's tokenizer."""
    return Stage(
        name,
        "map",
        transform,
        actors=True,
        kwargs=lambda ctx: {
            "sources": sources,
            "held_out": ctx.objects["held_out_slice"],
            "tokenizer_json": ctx.objects["tokenizer_json"],
        },
    )

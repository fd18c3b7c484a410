"""The task model shared by every loader: an item is a prompt, its choices and the index of the correct one.

Prompts are stored bare (one question, formatted as its source formats it); few-shot context is added at scoring
time by ``Task.render`` from other items of the same task, so the decontamination texts and the scored prompts
come from the same items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal


@dataclass(frozen=True)
class Item:
    """One question.  ``meta`` may hold ``group`` (few-shot examples come from the same group, e.g. a BIG-bench
    subtask) and ``preamble``/``separator`` (that group's own instruction text and shot separator)."""

    prompt: str
    choices: list[str]
    answer: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.choices[self.answer]


@dataclass(frozen=True)
class Task:
    """A named set of items and how to present them: ``shots`` examples joined by ``separator`` after ``preamble``."""

    name: str
    items: list[Item]
    lang: Literal["en", "zh"]
    style: Literal["nl", "code"]
    kind: Literal["mc", "bpb"]
    description: str
    source: str
    shots: int = 3
    separator: str = "\n\n"
    preamble: str = ""

    @property
    def chance(self) -> float | None:
        """Expected accuracy (and normalised probability, when the choices are as long as each other) of a model
        that knows nothing: the mean of 1/choices."""
        if self.kind != "mc":
            return None
        return sum(1 / len(item.choices) for item in self.items) / len(self.items)

    def render(self, index: int, shots: int | None = None, seed: int = 0) -> str:
        """The prompt of item ``index`` after ``shots`` solved examples drawn deterministically from the other
        items of its group (never itself, nor an item with the same prompt)."""
        return self._render(index, self.items[index].prompt, shots, seed)

    def render_without_question(self, index: int, shots: int | None = None, seed: int = 0) -> str:
        """``render`` with the item's question removed: the same few-shot examples, then only the prompt's last line
        (its answer cue, "Answer: ", ">>> print(x)"), or nothing when the prompt is a single line.  A choice's
        probability here is the model's prior for that answer in this format, whatever the question (DCPMI's
        domain premise, Holtzman et al. 2021); scores calibrated by it move only when the question matters."""
        prompt = self.items[index].prompt
        stripped = prompt.rstrip()
        cue = prompt[stripped.rfind("\n") + 1 :] if "\n" in stripped else ""
        return self._render(index, cue, shots, seed)

    def _render(self, index: int, prompt: str, shots: int | None, seed: int) -> str:
        item = self.items[index]
        k = self.shots if shots is None else shots
        preamble = item.meta.get("preamble", self.preamble)
        separator = item.meta.get("separator", self.separator)
        if k <= 0:
            return preamble + prompt
        pool = self._groups[item.meta.get("group")]
        rng = random.Random(seed * 1_000_003 + index)
        chosen: list[Item] = []
        for j in rng.sample(pool, min(len(pool), k + 8)):
            other = self.items[j]
            if j != index and other.prompt != item.prompt and len(chosen) < k:
                chosen.append(other)
        examples = [other.prompt + other.target for other in chosen]
        return preamble + separator.join([*examples, prompt])

    def continuations(self, index: int) -> list[str]:
        """The text scored for each choice of item ``index``.  A multiple-choice answer is followed by what follows
        it in the few-shot format (the separator up to its trailing whitespace, else a line break): otherwise a
        choice that is a prefix of another ("4" of "49", "]" of "] }") would always be at least as likely, and a
        model that knows the answer is "49" is right to continue "4" with "9" rather than end it."""
        item = self.items[index]
        if self.kind != "mc":
            return item.choices
        end = item.meta.get("separator", self.separator).rstrip() or "\n"
        return [choice + end for choice in item.choices]

    @cached_property
    def _groups(self) -> dict[Any, list[int]]:
        """Item indices by few-shot group, computed once (rendering thousands of prompts)."""
        groups: dict[Any, list[int]] = {}
        for j, it in enumerate(self.items):
            groups.setdefault(it.meta.get("group"), []).append(j)
        return groups


def make_item(prompt: str, correct: str, distractors: list[str], rng: random.Random, **meta: Any) -> Item:
    """An item whose correct choice sits at a random position among distinct ``distractors``."""
    assert correct not in distractors and len(set(distractors)) == len(distractors), (correct, distractors)
    choices = [correct, *distractors]
    rng.shuffle(choices)
    return Item(prompt, choices, choices.index(correct), dict(meta))


def wrong_numbers(value: int, rng: random.Random, k: int = 3, preferred: tuple[int, ...] = ()) -> list[str]:
    """``k`` plausible wrong answers with the answer's sign and number of characters: some of ``preferred`` (other
    entities' values, outputs of mutated programs), then the slips a solver makes (off by one to five, by ten or
    twenty, two digits swapped), always with one close call, so that a model cannot win on magnitude alone.

    Why the same length: a likelihood prefers short choices whatever it knows (every token costs probability),
    so with choices of equal length a model that knows nothing scores 1/k, the chance level reported beside it.
    """
    width = len(str(value))

    def fits(v: int) -> bool:  # same sign too: a BPE merges " -" into one token, so "-12" is as long as " 7"
        return v != value and len(str(v)) == width and (v < 0) == (value < 0)

    own = sorted({p for p in preferred if fits(p)})
    rng.shuffle(own)
    picks = own[: k - 1]
    digits = str(abs(value))
    slips = {value + d for d in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, -10, 10, -20, 20)}
    if len(digits) >= 2:
        slips.add((-1 if value < 0 else 1) * int(digits[1] + digits[0] + digits[2:]))
    slips = sorted(v for v in slips if fits(v) and v not in picks)
    rng.shuffle(slips)
    if not any(abs(p - value) <= 2 for p in picks):
        slips.sort(key=lambda c: abs(c - value) > 2)  # stable: a random close call first
    chosen = (picks + slips)[:k]
    assert len(chosen) == k, (value, chosen)  # off by one to five gives at least five of the same width
    return [str(v) for v in chosen]


def subsample(items: list[Item], n: int | None, seed: int) -> list[Item]:
    """``n`` of a fixed item set, chosen with ``seed`` and kept in their original order (all when ``n`` is None)."""
    if n is None or n >= len(items):
        return items
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), n))]

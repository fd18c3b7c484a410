"""Evaluation suites: which tasks, how many items, and which tasks make up each composite score (YAML).

``load_suite("default")`` reads ``suites/default.yaml``; a path reads any YAML of the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from dataengine.config import Strict, load_yaml, validated
from pretrain.eval.tasks import Task, load_available

SUITES_DIR = Path(__file__).resolve().parent


class SuiteTask(Strict):
    name: str
    n: int | None = Field(default=None, gt=0)  # None: every item of a fixed set, the default count if generated
    shots: int | None = Field(default=None, ge=0)  # None: the task's own default


class CompositeSpec(Strict):
    tasks: list[str] = Field(min_length=1)
    # a per-item metric of scoring.py: the question-calibrated margin by default (it moves at small scale, and a
    # model that ignores the question scores 0 on it)
    metric: Literal["calibrated_margin", "margin", "p_norm_skill", "p_norm", "acc_norm"] = "calibrated_margin"
    description: str = ""


class Suite(Strict):
    name: str
    seed: int = 0
    tasks: list[SuiteTask] = Field(min_length=1)
    composites: dict[str, CompositeSpec] = Field(default_factory=dict)
    primary: str | None = None  # the composite reported as "the" reasoning score

    @model_validator(mode="after")
    def _composites_name_suite_tasks(self) -> Suite:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError("a task is listed twice")
        for key, spec in self.composites.items():
            unknown = [t for t in spec.tasks if t not in names]
            if unknown:
                raise ValueError(f"composite {key} names tasks not in the suite: {', '.join(unknown)}")
        if self.primary is not None and self.primary not in self.composites:
            raise ValueError(f"primary composite {self.primary!r} is not defined")
        return self

    def load(self, n: int | None = None) -> tuple[list[Task], dict[str, str]]:
        """The suite's tasks with their items (``n`` overrides every task's item count), and those that could not be
        had with why (see ``load_available``)."""
        return load_available(((t.name, n or t.n) for t in self.tasks), seed=self.seed)

    def shots(self) -> dict[str, int | None]:
        return {t.name: t.shots for t in self.tasks}


def load_suite(name_or_path: str | Path = "default") -> Suite:
    """A suite by name (``default`` -> pretrain/eval/suites/default.yaml) or by YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
            raise ValueError(f"unknown suite {name_or_path!r}; known: {', '.join(known)} (or a YAML path)")
    return validated(Suite, load_yaml(path), path)

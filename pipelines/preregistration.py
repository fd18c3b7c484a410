"""The pre-registration: the composite a ladder tests, fixed by a pilot before the ladder runs.

Why: a composite chosen after seeing the ladder's results (or one that averages tasks no model of this size can
move) either overfits or drowns its signal in tasks at their null.  ``python -m pipelines.experiment ... --pilot``
trains the two ends of the ladder (code0 and code50) at the pilot size, and keeps the tasks whose calibrated
margin beats their shuffled-key null by at least ``MIN_SE`` standard errors in either of them; the file it writes
(tasks, metric, model, tokens, seeds, decision rule, date) is what the ladder's report tests, and the ladder refuses
to run without one unless told (``--no-preregistration``, which its report names).  Keeping a task measurable in
*either* rung selects on measurability, not on the direction of the effect the ladder then tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PREREGISTRATION = "preregistration.json"
PILOT_MIXES = ("code0", "code50")
METRIC = "calibrated_margin"
MIN_SE = 2.0
DECISION_RULE = (
    f"a task enters the composite when, in either pilot rung, its mean {METRIC} (over seeds and items) is at least "
    f"{MIN_SE:g} standard errors (hierarchical bootstrap over seeds and items) above its measured null (the same "
    "items with shuffled answer keys); the composite is the unweighted mean of those tasks' "
    f"{METRIC}, and the ladder's primary test is its paired difference from the baseline rung"
)


def select_tasks(result: dict[str, Any], metric: str = METRIC, min_se: float = MIN_SE) -> dict[str, Any]:
    """The pilot's decision from its ``analyse`` result: ``{"tasks": kept, "dropped": [...], "evidence": {task:
    {rung: {mean, null, se, z}}}}``; only tasks whose primary metric is ``metric`` and that have a null compete."""
    kept, dropped, evidence = [], [], {}
    for task, info in result["tasks"].items():
        if info["primary_metric"] != metric:
            continue
        per_rung = {}
        for rung, scores in result["results"].items():
            s = scores[task]
            if s.get("null") is None:
                break
            above = s["mean"] - s["null"]
            z = above / s["se"] if s["se"] > 0 else (float("inf") if above > 0 else 0.0)
            per_rung[rung] = {"mean": s["mean"], "null": s["null"], "se": s["se"], "z": z}
        else:
            evidence[task] = per_rung
            (kept if any(r["z"] >= min_se for r in per_rung.values()) else dropped).append(task)
    return {"tasks": kept, "dropped": dropped, "evidence": evidence}


def preregistration(result: dict[str, Any], pilot: dict[str, Any], ladder: dict[str, Any]) -> dict[str, Any]:
    """The file's content: the kept tasks and the rule that kept them, the pilot's settings and the ladder's."""
    selection = select_tasks(result)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "suite": result["suite"],
        "metric": METRIC,
        "tasks": selection["tasks"],
        "dropped": selection["dropped"],
        "decision_rule": DECISION_RULE,
        "pilot": pilot,
        "ladder": ladder,
        "evidence": selection["evidence"],
    }


def read_preregistration(path: Path, suite: str) -> dict[str, Any]:
    """The pre-registration at ``path``, checked against the ladder's suite; ``ValueError`` saying what to do when
    it is missing, names another suite or kept no task."""
    if not path.exists():
        raise ValueError(
            f"no pre-registration at {path}: run the pilot first (this command with --pilot), or pass "
            "--no-preregistration (the report will say the composite was not fixed in advance)"
        )
    content = json.loads(path.read_text(encoding="utf-8"))
    if content["suite"] != suite:
        raise ValueError(f"{path} pre-registers suite {content['suite']!r}, not this ladder's {suite!r}")
    if not content["tasks"]:
        pilot = content["pilot"]
        raise ValueError(
            f"the pilot ({pilot['model']}, {pilot['tokens']} tokens, {pilot['seeds']} seeds) kept no task: none beat "
            f"its null by {MIN_SE:g} standard errors, so a ladder of this size cannot measure the composite; run a "
            "larger pilot, or --no-preregistration for an exploratory ladder"
        )
    return content


def composite_of(content: dict[str, Any]) -> dict[str, Any]:
    """The pre-registered composite in the shape ``analyse`` takes."""
    return {
        "tasks": content["tasks"],
        "metric": content["metric"],
        "description": f"the {len(content['tasks'])} tasks the pilot found measurable (pre-registered)",
    }

"""Reasoning evaluation by likelihood: task loaders, scoring with bootstrap CIs, suites, ``python -m pretrain.eval``.

```python
from pretrain.eval import load_suite, evaluate, composite
suite = load_suite("default")
tasks, unavailable = suite.load()  # {name: why} for tasks whose source cannot be had here
results = evaluate(model, tokenizer, tasks, seq_len, shots=suite.shots(), bos_id=eos_id)
spec = suite.composites[suite.primary]
score = composite(results, [t for t in spec.tasks if t in results], spec.metric)  # Estimate(value, lo, hi)
```
"""

from pretrain.eval.scoring import (
    Estimate,
    TaskResult,
    bootstrap,
    bootstrap_samples,
    composite,
    evaluate,
    score_task,
)
from pretrain.eval.suites import Suite, load_suite
from pretrain.eval.tasks import TASKS, Item, Task, decontamination_texts, load_available, load_task, load_tasks

__all__ = [
    "TASKS",
    "Estimate",
    "Item",
    "Suite",
    "Task",
    "TaskResult",
    "bootstrap",
    "bootstrap_samples",
    "composite",
    "decontamination_texts",
    "evaluate",
    "load_available",
    "load_suite",
    "load_task",
    "load_tasks",
    "score_task",
]

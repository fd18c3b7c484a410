"""What every benchmark shares: the result row, the table printout and ``bench/results/NAME.json``."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )


@dataclass
class Row:
    what: str
    ours: float
    peer: str
    peer_value: float | None
    unit: str
    higher_is_better: bool = True
    machine: str = ""

    @property
    def ratio(self) -> float | None:
        """> 1 means ours is better by that factor, whichever direction the unit goes."""
        if not self.peer_value or not self.ours:
            return None
        return self.ours / self.peer_value if self.higher_is_better else self.peer_value / self.ours

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("higher_is_better")
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        data["machine"] = self.machine or machine()
        return data


def fmt(value: float) -> str:
    """Three significant digits at least, thousands separated."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def report(name: str, rows: list[Row]) -> Path:
    table = Table(title=f"bench {name} ({machine()})")
    for col in ("what", "ours", "peer", "peer value", "ratio (>1: ours better)", "unit"):
        table.add_column(col, justify="left" if col in ("what", "peer", "unit") else "right")
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        peer_value = "-" if r.peer_value is None else fmt(r.peer_value)
        table.add_row(r.what, fmt(r.ours), r.peer, peer_value, ratio, r.unit)
    Console(width=160).print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps([r.to_json() for r in rows], indent=2) + "\n", encoding="utf-8")
    return path

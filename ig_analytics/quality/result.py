"""A check's result, and the evaluator of violation queries that most rules are made of."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SAMPLE_ROWS = 5  # offending rows listed per violated rule


class Severity(enum.Enum):
    """The same names as Dagster's ``AssetCheckSeverity`` (the wiring maps one onto the other)."""

    ERROR = "ERROR"
    WARN = "WARN"


ERROR, WARN = Severity.ERROR, Severity.WARN


@dataclass(frozen=True)
class CheckResult:
    """``metadata`` holds JSON-able values only (numbers, text, lists, dicts): shown as they are in the UI."""

    passed: bool
    severity: Severity
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """A violation query: ``SELECT {columns} FROM {from_where}`` lists the offending rows."""

    name: str
    from_where: str
    columns: str = "*"
    severity: Severity = ERROR


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def evaluate_rules(conn: Connection, rules: Sequence[Rule], params: dict, *, description: str,
                   extra_metadata: dict[str, Any] | None = None) -> CheckResult:
    """Count each rule's violations; fail with the worst severity among the violated rules."""
    counts: dict[str, int] = {}
    samples: dict[str, list] = {}
    worst: Severity | None = None
    for rule in rules:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {rule.from_where}"), params).scalar_one()
        counts[rule.name] = int(n)
        if n:
            rows = conn.execute(sa.text(f"SELECT {rule.columns} FROM {rule.from_where} LIMIT {SAMPLE_ROWS}"), params)
            samples[rule.name] = [{k: _jsonable(v) for k, v in row._mapping.items()} for row in rows]
            if worst is None or rule.severity == ERROR:
                worst = rule.severity
    metadata: dict[str, Any] = {
        "violations": counts,
        "total_violations": sum(counts.values()),
        **{k: _jsonable(v) for k, v in (extra_metadata or {}).items()},
    }
    if samples:
        metadata["samples"] = samples
    return CheckResult(passed=worst is None, severity=worst or ERROR, description=description, metadata=metadata)


def any_negative(columns: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "(" + " OR ".join(f"{prefix}{c} < 0" for c in columns) + ")"


def utc_day(now: datetime) -> date:
    """The UTC date of the product's clock (``ig_analytics.clock``): rules judge "in the future" against it, not
    against PostgreSQL's now(), so a check run with the clock set (a test at 00:05 UTC, a replay) agrees with the
    data written under that clock."""
    return now.astimezone(timezone.utc).date()

"""What a failed step says to a person (the CLI's `sync` line, the run-failure alert): the error the step's own
code raised, not the Dagster exception wrapped around it."""

from __future__ import annotations

from typing import Any

# exceptions Dagster raises around the user's exception (its message names the op, its cause says why)
_DAGSTER_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterExecutionHandleOutputError",
                     "DagsterExecutionLoadInputError", "DagsterResourceFunctionError"}


def step_error_text(error: Any) -> str:
    """The first line of the error a step raised (a Dagster ``SerializableErrorInfo``: ``message``, ``cls_name``,
    ``cause``; typed ``Any`` so as not to import its private module), without Dagster's wrappers around user code and without the
    exception's module path: what the user can act on."""
    while error.cause is not None and error.cls_name in _DAGSTER_WRAPPERS:
        error = error.cause
    first = (error.message or "").strip().splitlines() or [error.cls_name or "unknown error"]
    head, sep, rest = first[0].partition(": ")
    return rest if sep and " " not in head and rest else first[0]

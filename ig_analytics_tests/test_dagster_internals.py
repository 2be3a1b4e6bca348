"""Dagster's private internals pass through one door (ig_analytics/defs/dagster_internals.py).

After raising the Dagster pin, run this file first: a moved or renamed private name fails here, by name, with
the module that needs it and why.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from ig_analytics.defs import dagster_internals

PACKAGE = Path(__file__).resolve().parents[1] / "ig_analytics"
DOOR = PACKAGE / "defs" / "dagster_internals.py"
PRIVATE_USE = re.compile(r"\bdagster\._|\bdagster_shared\.")


def test_no_module_but_the_door_uses_dagsters_private_names():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path != DOOR
                 for number, line in enumerate(path.read_text().splitlines(), 1) if PRIVATE_USE.search(line)]
    assert not offenders, ("Dagster internals are used outside ig_analytics/defs/dagster_internals.py; import them "
                           "through it (with why and the public alternative tried):\n" + "\n".join(offenders))


def test_every_private_name_the_door_imports_is_listed_with_its_reason():
    imported = set(re.findall(r'_private\(\s*"([^"]+)"', DOOR.read_text()))
    assert imported == set(dagster_internals.PRIVATE_NAMES)
    for dotted, (used_by, why, alternative) in dagster_internals.PRIVATE_NAMES.items():
        assert used_by and why and alternative, dotted


@pytest.mark.parametrize("dotted", sorted(dagster_internals.PRIVATE_NAMES))
def test_the_pinned_dagster_still_has(dotted):
    module, _, name = dotted.rpartition(".")
    used_by, why, _ = dagster_internals.PRIVATE_NAMES[dotted]
    found = hasattr(importlib.import_module(module), name) if importlib.util.find_spec(module) else False
    assert found, f"this Dagster has no {dotted}: port {used_by} ({why}) before raising the pin"


def test_a_missing_name_fails_with_a_sentence_naming_it(monkeypatch):
    monkeypatch.setitem(dagster_internals.PRIVATE_NAMES, "dagster._core.nowhere.Gone", ("x.py", "a reason", "none"))
    with pytest.raises(ImportError, match=r"has no dagster\._core\.nowhere\.Gone, which ig_analytics uses in x\.py "
                                          r"\(a reason\)"):
        dagster_internals._private("dagster._core.nowhere.Gone")  # noqa: SLF001

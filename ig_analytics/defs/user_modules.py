"""The analyst's extension point: the assets of the Python modules named in ``IG_ANALYTICS_USER_MODULES``
(comma-separated module names, importable from the process's path) join the ``ig_analytics`` code location, so
they appear in its lineage next to the product's assets and run with its resources (``postgres_io`` among them).
Example and how-to: ``examples/analyst_assets.py``, README "Add your own asset"."""

from __future__ import annotations

import importlib
import os

import dagster as dg

from ig_analytics.settings import SettingsError

SETTING = "IG_ANALYTICS_USER_MODULES"


class UserModuleError(SettingsError):
    """A module named in IG_ANALYTICS_USER_MODULES cannot be loaded; the message says which and why (a bad
    setting: the CLI prints it as one line and exits 2)."""


def module_names(value: str | None = None) -> list[str]:
    raw = os.environ.get(SETTING, "") if value is None else value
    return [name.strip() for name in raw.split(",") if name.strip()]


def user_assets(value: str | None = None) -> list:
    """Every asset (and asset check) defined at the top level of the named modules, in the order named."""
    found: list = []
    for name in module_names(value):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of a user's module is reported the same way
            raise UserModuleError(f"{SETTING}: cannot import {name!r} ({type(exc).__name__}: {exc}); check the "
                                  "module name and that its folder is on PYTHONPATH") from exc
        found += dg.load_assets_from_modules([module])
    return found

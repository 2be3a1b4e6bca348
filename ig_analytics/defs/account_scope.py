"""The accounts whose derived rows a run computes, the same accounts its capture synced: a run asked for accounts
(``ig-analytics sync --account``) those; a shard run (tag ``ig_analytics/shard``) those of its shard
(accounts/shards.py); any other run (a schedule's without shards, a UI backfill) every account. The asset checks
judge the same accounts (check_ranges.Scope). The analytics assets read only these accounts' inputs and write only their rows (``Rows.subset``: a
``replace`` deletes no other shard's rows), so the analytics of a tick cost the same whatever the shard count
(docs/architecture.md, "Shards")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import dagster as dg
import pandas as pd

from ig_analytics.accounts.shards import shard_accounts, shard_from_tags, shard_tag
from ig_analytics.defs.ingestion_assets import requested_accounts
from ig_analytics.defs.postgres_io import Rows

ACCOUNT_COLUMN = "ig_user_id"  # every derived table is per account


@dataclass(frozen=True)
class AccountScope:
    shard: tuple[int, int] | None = None
    accounts: tuple[str, ...] | None = None  # None: every account
    requested: bool = False  # the accounts the run was asked for, not a shard's

    @property
    def ids(self) -> list[str] | None:
        """The accounts as the analytics reads take them (``ig_user_ids``): None for every account."""
        return None if self.accounts is None else list(self.accounts)

    def rows(self, frame: pd.DataFrame, window: dg.TimeWindow | None = None,
             restated: pd.DataFrame | None = None) -> Rows:
        """The rows for the IO manager: a shard run's ``replace`` deletes only its own accounts' rows."""
        subset = None if self.accounts is None else {ACCOUNT_COLUMN: self.accounts}
        return Rows(frame, window, subset, restated)

    def metadata(self) -> dict:
        if self.accounts is None:
            return {"account_scope": dg.MetadataValue.text("every account")}
        label = "accounts requested" if self.requested else f"shard {shard_tag(*self.shard)}"
        return {"account_scope": dg.MetadataValue.text(label),
                "accounts_in_scope": dg.MetadataValue.int(len(self.accounts))}


def resolve(shard: tuple[int, int] | None, requested: tuple[str, ...],
            account_ids: Callable[[], Iterable[str]]) -> AccountScope:
    """The scope of a run with this shard tag and these requested accounts; ``account_ids()`` (every registered
    account) is read only for a shard run."""
    if requested:
        return AccountScope(shard, tuple(requested), requested=True)
    if shard is None:
        return AccountScope()
    return AccountScope(shard, tuple(shard_accounts(account_ids(), shard)))


def run_scope(context, account_ids: Callable[[], Iterable[str]]) -> AccountScope:
    """The scope of the run of ``context``."""
    run = context.run
    return resolve(shard_from_tags(run.tags), requested_accounts(run.run_config), account_ids)

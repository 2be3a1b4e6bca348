"""What the Dagster catalog says about every asset besides its code: owner, table name, column schema (from
ig_analytics/storage/tables.py, the data dictionary's source), freshness policy, and the observed ``accounts``
table.

Freshness: Dagster's ``FreshnessPolicy`` on each time-driven asset, matching its schedule (docs/architecture.md,
"Freshness"), so the catalog shows whether each table is current. The alerting stays with the SQL freshness checks
(``checks.py``): they look at the rows, not at materialization events (an hourly run that captured nothing still
materializes)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.storage.tables import TABLES

OWNERS = ["team:social-analytics"]


def column_schema(table: str) -> dg.TableSchema:
    """The asset metadata ``dagster/column_schema`` of ``instagram.<table>``: every column with its type and
    description; key columns are marked not nullable."""
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.type, description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=False) if c.key else None)
        for c in TABLES[table].columns
    ])


def table_metadata(table: str) -> dict:
    """``dagster/table_name`` and ``dagster/column_schema`` of a table asset."""
    return {"dagster/table_name": f"instagram.{table}", "dagster/column_schema": column_schema(table)}

# hh:05 hourly job: a run more than ~2 h ago means at least one hour was missed.
HOURLY = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2, minutes=30), warn_window=timedelta(hours=1, minutes=30))
# Daily jobs: materialized between the run time and a deadline a few hours later (the run retries in between).
ACCOUNT_INSIGHTS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=4))  # 02:00
AUDIENCE = dg.FreshnessPolicy.cron(deadline_cron="0 5 * * *", lower_bound_delta=timedelta(hours=2, minutes=40))  # 02:20
DAILY_REPORTS = dg.FreshnessPolicy.cron(deadline_cron="0 5 * * *", lower_bound_delta=timedelta(hours=2))  # 03:00
WEEKLY_REPORTS = dg.FreshnessPolicy.cron(deadline_cron="30 5 * * 1", lower_bound_delta=timedelta(hours=2))  # Mon 03:30


ACCOUNTS_SYNCED = ("ERROR: every account the run was asked to sync succeeded (partial counts as success); the "
                   "failed accounts and their reasons are listed.")


def accounts_synced_check(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("accounts_synced", asset=asset, description=ACCOUNTS_SYNCED)


def table_asset(table: str, write: dict | None = None) -> dict:
    """Keyword arguments shared by every table asset: owners and the table's metadata; ``write``: how the
    PostgreSQL IO manager writes it (``postgres_io.write_metadata``), for the assets that return rows."""
    return {"owners": OWNERS, "metadata": {**table_metadata(table), **(write or {})}}


ACCOUNTS_SPEC = dg.AssetSpec(
    "accounts",
    group_name="ingestion",
    kinds={"postgres"},
    owners=OWNERS,
    description=(
        "The Instagram business accounts this installation syncs, with their status and encrypted tokens. "
        "Managed with `ig-analytics accounts` (add, disable, discover, refresh-tokens); observed every hour and "
        "after every `ig-analytics sync`: its data version changes when an account is added, changes status or "
        "gets a new token."
    ),
    metadata=table_metadata("accounts"),
)


def accounts_fingerprint(conn) -> tuple[str, dict]:
    """A data version of the accounts table (changes when an account, its status or its token changes) and
    counts by status. No token or ciphertext leaves the database: only a hash of update times."""
    rows = conn.execute(sa.text(
        "SELECT ig_user_id, status, updated_at, status_changed_at, token_expires_at FROM instagram.accounts"
        " ORDER BY ig_user_id")).all()
    digest = hashlib.sha256("\n".join("|".join(str(v) for v in row) for row in rows).encode()).hexdigest()[:16]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return digest, counts


@dg.multi_observable_source_asset(specs=[ACCOUNTS_SPEC], name="observe_accounts")
def ACCOUNTS(context, database: AnalyticsDatabase):  # noqa: N802 - the asset the others depend on
    with database.engine().connect() as conn:
        version, counts = accounts_fingerprint(conn)
    yield dg.ObserveResult(
        asset_key="accounts",
        data_version=dg.DataVersion(version),
        metadata={
            "accounts": dg.MetadataValue.int(sum(counts.values())),
            **{f"accounts_{status}": dg.MetadataValue.int(n) for status, n in sorted(counts.items())},
        },
    )

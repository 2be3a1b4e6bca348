"""How a write merges into a row that already exists: the declared merge rule of each measured table.

The Graph API leaves a value out for many reasons that say nothing about the value itself (a metric retired in
the API version in use, a field not requested, a partial answer). So, in a measured table, a missing (NULL)
incoming value never erases a value measured before: every column is ``COALESCE(EXCLUDED.x, target.x)`` unless
the rule lists it as bookkeeping (``overwrite``: the newest write wins, e.g. ``fetched_at``), ``insert_only``
(set by the first write, e.g. ``first_seen_at``) or ``merge_json`` (JSON objects merged key by key, the newest
value of a key winning). A column added later is therefore protected by default. See docs/data-dictionary.md,
"Merge rules".

:func:`ig_analytics.storage.db.bulk_upsert` applies the rule of the table it writes to: callers cannot forget it.
Tables without a rule (the derived analytics tables, recomputed whole) are plainly overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MergeRule:
    key: tuple[str, ...]  # the conflict key (primary key)
    overwrite: frozenset[str] = frozenset()
    insert_only: frozenset[str] = frozenset()
    merge_json: frozenset[str] = frozenset()
    # Rewrite a row only when a merged value differs (saves rewriting unchanged rows, and their WAL, hourly).
    skip_unchanged: bool = False

    def assignment(self, column: str) -> str | None:
        """The SET clause of ``column`` (None: never updated)."""
        if column in self.key or column in self.insert_only:
            return None
        return f'"{column}" = {self.merged(column)}'

    def merged(self, column: str) -> str:
        """The value ``column`` has after the merge, as SQL over ``EXCLUDED`` and ``target``."""
        if column in self.overwrite:
            return f'EXCLUDED."{column}"'
        if column in self.merge_json:
            # jsonb || NULL is NULL: then whichever side has a value
            return f'COALESCE(target."{column}" || EXCLUDED."{column}", EXCLUDED."{column}", target."{column}")'
        return f'COALESCE(EXCLUDED."{column}", target."{column}")'

    def measured(self, columns) -> list[str]:
        """The columns whose change is worth a rewrite (everything but the key and the bookkeeping)."""
        return [c for c in columns if c not in self.key and c not in self.overwrite and c not in self.insert_only]


MERGE_RULES: dict[str, MergeRule] = {
    "media_insights_snapshots": MergeRule(
        key=("media_id", "captured_at"),
        # api_version / fetched_at describe the newest capture of the slot; the metrics keep the best known.
        overwrite=frozenset({"fetched_at", "api_version"}),
        merge_json=frozenset({"other_metrics"}),
        # A re-capture of the slot with the same values keeps the first reading's fetched_at: trending reads
        # fetched_at as the time of each reading, so a repeated sync must not move it.
        skip_unchanged=True,
    ),
    "media": MergeRule(
        key=("media_id",),
        overwrite=frozenset({"updated_at"}),
        insert_only=frozenset({"first_seen_at"}),
        skip_unchanged=True,
    ),
    "account_insights_daily": MergeRule(
        key=("ig_user_id", "date"),
        overwrite=frozenset({"api_version", "synced_at"}),
    ),
    "account_profile_snapshots": MergeRule(key=("ig_user_id", "captured_at")),
}

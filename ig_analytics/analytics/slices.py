"""Derived rows computed a slice of accounts at a time (issue 27): every derived table is per account, so the rows
of a set of accounts are the rows of its slices put together, and a run holds one slice's inputs at a time
instead of every account's (a run's memory no longer grows with the accounts it computes)."""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

# Accounts per slice. Measured (BENCHMARKS.md 3d): a run computing 250 sandbox accounts at once (~600 comments each)
# peaked at ~400 MB in conversation_posts against ~190 MB for its other steps, ~0.8 MB per account; 200 accounts
# keep a slice near 160 MB, well under the 500 MB per run, while a slice's fixed cost (one query per input) stays
# small next to its rows.
SLICE_ACCOUNTS = 200


def account_slices(ig_user_ids: Sequence[str], size: int = SLICE_ACCOUNTS) -> list[list[str]]:
    """The accounts, sorted, in slices of ``size`` (one empty slice when there are none)."""
    ids = sorted(set(ig_user_ids))
    return [ids[i:i + size] for i in range(0, len(ids), size)] or [[]]


def concat_slices(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The slices' rows put together (the first frame, typed, when every slice is empty)."""
    full = [f for f in frames if len(f)]
    if len(full) <= 1:
        return full[0].reset_index(drop=True) if full else frames[0]
    # a column missing its values in one slice (None) is object there: back to the other slices' type
    return pd.concat(full, ignore_index=True).infer_objects()


def in_slices(ig_user_ids: Sequence[str], compute: Callable[[list[str]], pd.DataFrame],
              size: int = SLICE_ACCOUNTS) -> pd.DataFrame:
    """``compute(accounts)`` for each slice of ``size`` accounts, concatenated (``compute([])`` when there are
    none). ``compute`` must give each account's rows from that account's inputs only."""
    return concat_slices([compute(part) for part in account_slices(ig_user_ids, size)])

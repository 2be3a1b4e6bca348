"""Account shards: the accounts split into ``IG_ANALYTICS_SHARDS`` stable groups, each synced by its own run.

A shard is picked by a hash of ``ig_user_id`` (SHA-256, so it is the same in every process and Python version,
unlike ``hash()``): an account stays in its shard for as long as the number of shards is unchanged. Each
ingestion schedule tick asks for one run per shard, tagged ``ig_analytics/shard = "i/N"``; the ingestion assets
sync only the accounts of their run's shard. A run without the tag (a backfill from the UI, ``ig-analytics sync``)
syncs every account. The analytics of a shard run compute the derived rows of the same accounts only
(:func:`shard_accounts`), so a tick's analytics cover every account once whatever the shard count. Why runs and not
a static partition dimension, and why the analytics follow the shard: docs/architecture.md, "Shards".
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

from ig_analytics.constants import MAX_SHARDS

__all__ = ["SHARD_TAG", "MAX_SHARDS", "shard_of", "shard_tag", "shard_from_tags", "in_shard", "shard_accounts"]

SHARD_TAG = "ig_analytics/shard"


def shard_of(ig_user_id: str, shards: int) -> int:
    """The shard (0 .. shards-1) of an account."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(str(ig_user_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_tag(index: int, shards: int) -> str:
    return f"{index}/{shards}"


def shard_from_tags(tags: Mapping[str, str]) -> tuple[int, int] | None:
    """(index, shards) from a run's tags; None when the run is not a shard run (it syncs every account)."""
    raw = tags.get(SHARD_TAG)
    if raw is None:
        return None
    index_text, _, shards_text = str(raw).partition("/")
    try:
        index, shards = int(index_text), int(shards_text)
    except ValueError:
        index, shards = -1, 0
    if not (1 <= shards <= MAX_SHARDS and 0 <= index < shards):
        raise ValueError(f"run tag {SHARD_TAG}={raw!r} is not 'INDEX/SHARDS' (e.g. '0/4'): remove the tag to sync "
                         "every account, or relaunch the run from its schedule")
    return index, shards


def in_shard(ig_user_id: str, shard: tuple[int, int] | None) -> bool:
    return shard is None or shard_of(ig_user_id, shard[1]) == shard[0]


def shard_accounts(ig_user_ids: Iterable[str], shard: tuple[int, int] | None) -> list[str] | None:
    """The accounts of ``shard`` among ``ig_user_ids`` (the same hash the capture picks its accounts by); None
    for a run without a shard (every account)."""
    if shard is None:
        return None
    return [i for i in ig_user_ids if in_shard(i, shard)]

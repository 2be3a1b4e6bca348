"""Follower history: ``account_insights_daily.followers_total`` (the total at the end of each day) from the first
sync. Definitions: docs/analytics.md, "Follower history".

The API reports the follower total only *now* (the profile's ``followers_count``) and, per day, the new follows
(``follower_count``, last 30 days) and ``follows_and_unfollows`` (follows + unfollows), which
``breakdown=follow_type`` splits into follows and unfollows (``measured_follows`` / ``measured_unfollows``). So:

- unfollows(d) = measured_unfollows(d) where the API served it (``measured``); else follows_and_unfollows(d) -
  follower_count(d) (``inferred``); where the API version has no ``follows_and_unfollows`` at all, unfollows count
  as 0 (``assumed_zero``: the history then overstates past growth);
- net(d) = follower_count(d) - unfollows(d);
- total at the end of day d = total now - the part of today's net change that has already happened - the net
  change of every day after d ("now": the first profile snapshot of the newest day with one). Today's net is
  not reported until tomorrow: it is estimated as the mean net of the newest 7 reported days times the fraction
  of today elapsed; so is a recent day not reported yet (late data; when only its unfollows are missing, they
  are the mean of those days).
- **Observed**: a profile snapshot taken within :data:`OBSERVE_WITHIN` after a day ended (Pacific midnight; the
  ``follower_anchors`` schedule reads every account's profile then) is that day's total, ``observed``. Every other
  value is ``derived`` and hangs from the nearest observed day that a run of reported daily changes connects it to
  (forwards: + net, backwards: - net); only days no observed anchor reaches fall back to the part-day anchor
  above. A derived value never overwrites an observed one.

Days are the API's: Pacific-time dates (``end_time`` - 1 day; a day ends at 07:00 UTC in summer, 08:00 UTC in
winter): see :func:`insights_day`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.constants import META_DAY_TIMEZONE

_META_ZONE = ZoneInfo(META_DAY_TIMEZONE)
# A reading this soon after Pacific midnight is that day's total: it holds at most these minutes of the new day's
# follows (the anchor schedule reads at 00:01; an account gaining 1,440 a day gains 1 a minute).
OBSERVE_WITHIN = timedelta(minutes=15)
RATE_DAYS = 7  # today's (and a late day's) net change: the mean of this many newest reported days
MAX_LATE_DAYS = 3  # data arrives up to 48 h late: estimate at most this many unreported newest days


def insights_day(t: datetime) -> date:
    """The insights day containing instant ``t``: its Pacific-time date."""
    return t.astimezone(_META_ZONE).date()


def day_end(d: date) -> datetime:
    """The instant day ``d`` ends (its ``end_time``), in UTC: Pacific midnight starting d + 1."""
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=_META_ZONE).astimezone(timezone.utc)


def daily_unfollows(days: Mapping[date, tuple]) -> dict[date, tuple[int | None, str | None]]:
    """(unfollows, source) per day from (follower_count, follows_and_unfollows[, measured_unfollows]): the
    measured value where there is one, else the inference; 0 when the API has no follows_and_unfollows for any day
    (older versions); (None, None) when not known for that day."""
    has_split = any(fau is not None or (rest and rest[0] is not None)
                    for _, fau, *rest in days.values())
    out: dict[date, tuple[int | None, str | None]] = {}
    for d, (follows, fau, *rest) in days.items():
        measured = rest[0] if rest else None
        if measured is not None:
            out[d] = (measured, "measured")
        elif not has_split:
            out[d] = (0, "assumed_zero") if follows is not None else (None, None)
        elif follows is not None and fau is not None and fau >= follows:
            out[d] = (fau - follows, "inferred")
        else:
            out[d] = (None, None)
    return out


def reconstruct(
    days: Mapping[date, tuple],
    snapshots: Sequence[tuple[datetime, int]],
) -> dict[date, tuple[int, str]]:
    """The end-of-day totals that can be known: {day: (followers_total, 'observed' | 'derived')}.

    ``days``: day -> (follower_count, follows_and_unfollows[, measured_unfollows]) as stored; ``snapshots``:
    (captured_at, followers_total) of the profile, any order. Only days that have ended at the newest snapshot get
    a value."""
    snapshots = sorted((t, int(f)) for t, f in snapshots if f is not None)
    if not snapshots:
        return {}
    unfollows = {d: u for d, (u, _) in daily_unfollows(days).items()}
    net = {d: days[d][0] - u for d, u in unfollows.items() if u is not None and days[d][0] is not None}
    observed: dict[date, int] = {}
    for t, total in snapshots:
        d = insights_day(t) - timedelta(days=1)
        if t - day_end(d) < OBSERVE_WITHIN:
            observed.setdefault(d, total)
    out = {d: (round(total), "derived") for d, total in _walk_from_part_day(days, snapshots, net, unfollows).items()}
    out.update({d: (round(total), "derived") for d, total in _hang_from_observed(observed, net).items()})
    out.update({d: (total, "observed") for d, total in observed.items()})
    return out


def _hang_from_observed(observed: Mapping[date, int], net: Mapping[date, int]) -> dict[date, float]:
    """Each day reachable from an observed total through reported daily changes, from the nearest such anchor
    (fewest days walked; both directions are exact where the changes are)."""
    if not observed:
        return {}
    # walking back from the oldest reported change reaches the end of the day before it
    first, last = min([*observed, *(d - timedelta(days=1) for d in net)]), max([*observed, *net])
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    forward: dict[date, tuple[int, float]] = {}  # day -> (days walked, total)
    walked: tuple[int, float] | None = None
    for d in span:
        if d in observed:
            walked = (0, observed[d])
        elif walked is not None and d in net:
            walked = (walked[0] + 1, walked[1] + net[d])  # end of d = end of d-1 + net(d)
        else:
            walked = None
        if walked is not None:
            forward[d] = walked
    out: dict[date, float] = {}
    walked = None
    for d in reversed(span):
        if d in observed:
            walked = (0, observed[d])
        elif walked is not None and d + timedelta(days=1) in net:
            walked = (walked[0] + 1, walked[1] - net[d + timedelta(days=1)])  # end of d = end of d+1 - net(d+1)
        else:
            walked = None
        best = min((w for w in (walked, forward.get(d)) if w is not None), default=None, key=lambda w: w[0])
        if best is not None:
            out[d] = best[1]
    return out


def _walk_from_part_day(days: Mapping[date, tuple], snapshots: Sequence[tuple[datetime, int]],
                        net: Mapping[date, int], unfollows: Mapping[date, int | None]) -> dict[date, float]:
    """Walking back from the part-day anchor (the first snapshot of the newest day that has one), estimating the
    changes not reported yet: the values for days no observed total reaches."""
    recent = sorted(net)[-RATE_DAYS:]
    rate = sum(net[d] for d in recent) / len(recent) if recent else 0.0
    unfollow_rate = sum(unfollows[d] for d in recent) / len(recent) if recent else 0.0
    last_known = max(net) if net else None
    # the FIRST snapshot of the newest day: it leaves the least of its day's change to estimate, and a second sync
    # the same day (same API answers) rebuilds the very same history
    today = insights_day(snapshots[-1][0])
    anchor_t, anchor_total = next((t, f) for t, f in snapshots if insights_day(t) == today)
    start = day_end(today - timedelta(days=1))
    elapsed = (anchor_t - start) / (day_end(today) - start)  # of a 23, 24 or 25 h day
    # the days after the newest reported one may be estimated while they are merely late, never across an old gap
    recent_enough = last_known is not None and last_known >= today - timedelta(days=MAX_LATE_DAYS + 1)
    estimate_from = last_known + timedelta(days=1) if recent_enough else today

    def net_of(d: date) -> float | None:
        if d in net:
            return net[d]
        if d < estimate_from:
            return None
        follows = days[d][0] if d in days else None
        return rate if follows is None else follows - unfollow_rate  # follows arrive before the split

    out: dict[date, float] = {}
    d = today - timedelta(days=1)
    total: float | None = anchor_total - round((net_of(today) or 0.0) * elapsed)
    oldest = min(days, default=d)
    while d >= oldest and total is not None:
        out[d] = total
        step = net_of(d)
        total = None if step is None else total - step
        d -= timedelta(days=1)
    return out


def refresh_follower_history(conn: Connection, ig_user_ids: Iterable[str]) -> int:
    """Recompute followers_total / followers_total_source / unfollows / unfollows_source of the stored days of each
    account from its stored daily rows and profile snapshots (same transaction as the caller). Returns rows changed."""
    changed = 0
    for ig_user_id in ig_user_ids:
        rows = conn.execute(
            sa.text("SELECT date, follower_count, follows_and_unfollows, measured_unfollows"
                    " FROM instagram.account_insights_daily WHERE ig_user_id = :id"),
            {"id": ig_user_id},
        ).all()
        if not rows:
            continue
        days = {r.date: (r.follower_count, r.follows_and_unfollows, r.measured_unfollows) for r in rows}
        snapshots = conn.execute(
            sa.text("SELECT captured_at, followers_total FROM instagram.account_profile_snapshots"
                    " WHERE ig_user_id = :id AND followers_total IS NOT NULL"),
            {"id": ig_user_id},
        ).all()
        totals = reconstruct(days, [tuple(s) for s in snapshots])
        unfollows = daily_unfollows(days)
        ordered = sorted(days)
        params = {
            "id": ig_user_id,
            "d": ordered,
            "total": [totals[d][0] if d in totals else None for d in ordered],
            "source": [totals[d][1] if d in totals else None for d in ordered],
            "unf": [unfollows[d][0] for d in ordered],
            "unf_source": [unfollows[d][1] for d in ordered],
        }
        result = conn.execute(
            sa.text(
                """
                UPDATE instagram.account_insights_daily a SET
                    followers_total = COALESCE(v.total, a.followers_total),
                    followers_total_source = CASE WHEN v.total IS NULL THEN a.followers_total_source ELSE v.source END,
                    unfollows = COALESCE(v.unf, a.unfollows),
                    unfollows_source = CASE WHEN v.unf IS NULL THEN a.unfollows_source ELSE v.unf_source END
                FROM unnest(CAST(:d AS date[]), CAST(:total AS bigint[]), CAST(:source AS text[]),
                            CAST(:unf AS bigint[]), CAST(:unf_source AS text[])) AS v(d, total, source, unf, unf_source)
                WHERE a.ig_user_id = :id AND a.date = v.d
                  -- a derived value never overwrites an observed one
                  AND (v.total IS NULL OR v.source = 'observed' OR a.followers_total_source IS DISTINCT FROM 'observed')
                  AND (a.followers_total, a.followers_total_source, a.unfollows, a.unfollows_source)
                      IS DISTINCT FROM
                      (COALESCE(v.total, a.followers_total),
                       CASE WHEN v.total IS NULL THEN a.followers_total_source ELSE v.source END,
                       COALESCE(v.unf, a.unfollows),
                       CASE WHEN v.unf IS NULL THEN a.unfollows_source ELSE v.unf_source END)
                """
            ),
            params,
        )
        changed += max(result.rowcount, 0)
    return changed

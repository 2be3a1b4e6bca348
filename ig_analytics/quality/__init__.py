"""Data-quality rules on every table, as plain Python: each rule takes a connection (and the window it checks)
and returns a :class:`~ig_analytics.quality.result.CheckResult`. No Dagster here: ``ig_analytics/defs/checks.py``
wires the rules into asset checks (docs/operations.md, "Checks and alerts", explains each one and what to do).

Severity: ERROR when a number users read is wrong or missing without explanation; WARN when the data is
suspicious but is what Meta reports (revisions, estimated reach).

Rules on rates (docs/data-dictionary.md: rates are percentages): every rate must be >= 0, NULL exactly when its
denominator is NULL or 0, and equal to its formula. There is no upper bound on ``engagement_rate_*``,
``comment_rate`` and ``share_rate``: they count actions (one account can comment or share many times, and
non-followers engage), so 100 is exceeded legitimately. ``like_rate`` and ``save_rate`` are one action per account,
so above 100 means Meta's reach estimate is low: a WARN, not an ERROR.

Modules: ``result`` (the result type and the violation-query evaluator), ``account_insights``, ``media`` (posts and
snapshots), ``analytics`` (engagement, trending, best times, reports), ``accounts`` (tokens), ``schema`` (columns).
"""

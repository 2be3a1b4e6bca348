"""The daily token maintenance (docs/operations.md): refresh Instagram-Login tokens at least 24 h old, re-read
every token's expiry and permissions (debug_token, with IG_APP_ID and IG_APP_SECRET), alert 7 days before expiry
and once at expiry. Runs at 01:30 UTC, before the 02:00 account sync, so that sync uses the refreshed tokens."""


import dagster as dg

from ig_analytics import clock
from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.defs.resources import AnalyticsDatabase


@dg.op(out=dg.Out(dg.Nothing), description="Refresh due Instagram-Login tokens, re-read token expiry and "
       "permissions, send expiry alerts. Tokens never appear in logs or metadata.")
def maintain_tokens_op(context: dg.OpExecutionContext, database: AnalyticsDatabase):
    from ig_analytics.accounts.token_lifecycle import load_states, maintain_tokens, token_api

    engine = database.engine()
    now = clock.now()
    report = maintain_tokens(engine, database.vault(), token_api(database.settings()), database.notifier(), now)
    for result in report.refreshed:
        (context.log.info if result.ok else context.log.warning)(result.render())
    notes = {s.ig_user_id: s.notes(now) for s in load_states(engine).values() if s.status != "disabled"}
    notes = {k: v for k, v in notes.items() if v}
    return dg.Output(None, metadata={
        "refreshed": dg.MetadataValue.json([r.ig_user_id for r in report.refreshed if r.ok]),
        "refresh_failed": dg.MetadataValue.json({r.ig_user_id: r.error for r in report.failed_refreshes}),
        "inspected": dg.MetadataValue.int(len(report.inspected)),
        "inspect_failed": dg.MetadataValue.json(report.inspect_errors),
        "alerts": dg.MetadataValue.json([key for key, status in report.alerts if status != "duplicate"]),
        "needs_attention": dg.MetadataValue.json(notes),
    })


@dg.job(description="Daily token maintenance: Instagram-Login refresh, expiry and permission check, expiry alerts.",
        tags={"ig_analytics/kind": "maintenance"})
def token_maintenance_job():
    maintain_tokens_op()


token_maintenance_schedule = dg.ScheduleDefinition(
    name="daily_token_maintenance", job=token_maintenance_job, cron_schedule="30 1 * * *",
    execution_timezone="UTC", default_status=SCHEDULE_STATUS,
)

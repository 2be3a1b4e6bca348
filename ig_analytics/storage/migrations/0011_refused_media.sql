-- Errors by scope (docs/graph-api-client.md, "What an error costs"): a post the API refuses (e.g. code 10 on its
-- /insights while the account's other calls work) costs that post only. Its refusal is kept on the post with the
-- code, the API's words and the time: shown by `ig-analytics status`, and the post is asked again once a day, not
-- every hour. `rejected_metrics_at` dates the remembered metric rejections of 0010, so a refused metric is asked
-- again at least once a day (Meta serves some again later).
ALTER TABLE instagram.media
    ADD COLUMN IF NOT EXISTS insights_refused_code integer,
    ADD COLUMN IF NOT EXISTS insights_refused_reason text,
    ADD COLUMN IF NOT EXISTS insights_refused_at timestamptz,
    ADD COLUMN IF NOT EXISTS rejected_metrics_at timestamptz;

-- A post that rejects a metric (code 100 naming it, e.g. `shares` on some images) rejects it at every capture:
-- remember which, per API version, so the next captures ask without it instead of failing once and re-asking
-- (one extra batch item and one log line per such post per capture). docs/data-dictionary.md explains the columns.
ALTER TABLE instagram.media
    ADD COLUMN IF NOT EXISTS rejected_metrics text[],
    ADD COLUMN IF NOT EXISTS rejected_metrics_api_version text;

-- Analytics additions (docs/analytics.md). Only ADD COLUMN / new tables: nothing in 0001 changes meaning.

-- The per-post inputs next to the rates, so reports and daily roll-ups need no second look-up.
ALTER TABLE instagram.media_engagement
    ADD COLUMN IF NOT EXISTS published_at         timestamptz,
    ADD COLUMN IF NOT EXISTS reach                bigint,
    ADD COLUMN IF NOT EXISTS views                bigint,
    ADD COLUMN IF NOT EXISTS impressions          bigint,
    ADD COLUMN IF NOT EXISTS views_basis          text,    -- 'views', 'impressions' (API without views) or NULL
    ADD COLUMN IF NOT EXISTS followers_at_publish bigint;

-- A slot with fewer than BestTimesParams.min_posts posts is written, but flagged reliable = false.
ALTER TABLE instagram.best_posting_times
    ADD COLUMN IF NOT EXISTS reliable                      boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS account_avg_engagement_rate_reach double precision;

-- One row per account and trending evaluation, also when no post qualified: "which posts are new in the
-- list" needs the previous evaluation even when its list was empty.
CREATE TABLE IF NOT EXISTS instagram.trending_evaluations (
    ig_user_id  text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    as_of       timestamptz NOT NULL,
    candidates  integer     NOT NULL,   -- posts younger than max_age with snapshots
    scored      integer     NOT NULL,   -- candidates with enough baseline evidence
    listed      integer     NOT NULL,   -- rows written to trending_posts
    params      jsonb       NOT NULL,
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, as_of)
);

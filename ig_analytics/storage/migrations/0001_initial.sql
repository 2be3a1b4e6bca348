-- The analytics tables of docs/product.md. Conventions: accounts by ig_user_id (text), posts by media_id
-- (text); timestamptz; counts bigint; a value the API did not report is NULL, never 0; rates are
-- percentages 0-100 in double precision. docs/data-dictionary.md explains every column.

CREATE SCHEMA IF NOT EXISTS instagram;

CREATE TABLE instagram.accounts (
    ig_user_id        text PRIMARY KEY,
    username          text,
    timezone          text        NOT NULL DEFAULT 'UTC',
    status            text        NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'needs_reauth', 'disabled')),
    status_reason     text,
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    token_ciphertext  bytea,                       -- Fernet token; never the plain access token
    token_expires_at  timestamptz,
    followers_total   bigint,                      -- newest profile snapshot
    media_count       bigint,
    profile_synced_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- History of the profile's running totals (followers_count is not a daily insight metric).
CREATE TABLE instagram.account_profile_snapshots (
    ig_user_id      text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    captured_at     timestamptz NOT NULL,
    followers_total bigint,
    follows_total   bigint,
    media_count     bigint,
    PRIMARY KEY (ig_user_id, captured_at)
);

CREATE TABLE instagram.account_insights_daily (
    ig_user_id            text   NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date                  date   NOT NULL,             -- the day the value covers (end_time minus one day)
    reach                 bigint,                      -- unique accounts that day: never sum across days
    views                 bigint,
    impressions           bigint,                      -- retired in v22; NULL on newer versions
    follower_count        bigint,                      -- NEW followers that day (Meta's name), not the total
    followers_total       bigint,                      -- running total, from the first profile snapshot of date+1 (UTC)
    profile_views         bigint,                      -- retired as time series in v21
    website_clicks        bigint,                      -- retired as time series in v21
    accounts_engaged      bigint,
    total_interactions    bigint,
    likes                 bigint,
    comments              bigint,
    saves                 bigint,
    shares                bigint,
    replies               bigint,
    reposts               bigint,
    follows_and_unfollows bigint,
    profile_links_taps    bigint,
    api_version           text        NOT NULL,
    synced_at             timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date)
);

CREATE TABLE instagram.media (
    media_id            text PRIMARY KEY,
    ig_user_id          text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    media_type          text        NOT NULL,         -- IMAGE, VIDEO, CAROUSEL_ALBUM
    media_product_type  text,                         -- FEED, REELS, STORY, AD
    caption             text,
    permalink           text,
    published_at        timestamptz NOT NULL,
    like_count          bigint,                       -- object fields, as last listed
    comments_count      bigint,
    insights_unavailable_reason text,                 -- e.g. posted before the business conversion
    first_seen_at       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX media_account_published_idx ON instagram.media (ig_user_id, published_at DESC);

-- One row per post and capture slot (the hour that was captured). Lifetime counters, so a post's growth
-- curve is its rows ordered by captured_at.
CREATE TABLE instagram.media_insights_snapshots (
    media_id            text        NOT NULL REFERENCES instagram.media ON DELETE CASCADE,
    captured_at         timestamptz NOT NULL,         -- the capture slot: start of the hourly partition
    fetched_at          timestamptz NOT NULL,         -- when the values were actually read from the API
    ig_user_id          text        NOT NULL,
    reach               bigint,
    views               bigint,
    impressions         bigint,
    likes               bigint,
    comments            bigint,
    saved               bigint,
    shares              bigint,
    total_interactions  bigint,
    video_views         bigint,
    plays               bigint,
    follows             bigint,
    profile_visits      bigint,
    replies             bigint,
    reposts             bigint,
    avg_watch_time_ms   bigint,
    total_watch_time_ms bigint,
    other_metrics       jsonb,                        -- metrics without a column of their own
    api_version         text        NOT NULL,
    PRIMARY KEY (media_id, captured_at)
);
CREATE INDEX media_snapshots_account_captured_idx
    ON instagram.media_insights_snapshots (ig_user_id, captured_at);

CREATE VIEW instagram.media_insights_latest AS
SELECT DISTINCT ON (media_id) *
FROM instagram.media_insights_snapshots
ORDER BY media_id, captured_at DESC;

CREATE TABLE instagram.media_engagement (
    media_id                  text PRIMARY KEY REFERENCES instagram.media ON DELETE CASCADE,
    ig_user_id                text        NOT NULL,
    captured_at               timestamptz NOT NULL,   -- the snapshot the numbers come from
    engagement                bigint,
    engagement_rate_reach     double precision,
    engagement_rate_views     double precision,
    engagement_rate_followers double precision,
    like_rate                 double precision,
    comment_rate              double precision,
    save_rate                 double precision,
    share_rate                double precision,
    computed_at               timestamptz NOT NULL
);
CREATE INDEX media_engagement_account_idx ON instagram.media_engagement (ig_user_id);

CREATE TABLE instagram.account_engagement_daily (
    ig_user_id            text   NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date                  date   NOT NULL,            -- day of publication, in the account's timezone
    posts                 bigint NOT NULL,
    engagement            bigint,
    reach                 bigint,                     -- sum of the posts' reach (per-post, not unique accounts)
    engagement_rate_reach double precision,           -- sum(engagement) / sum(reach) * 100
    computed_at           timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date)
);

CREATE TABLE instagram.trending_posts (
    ig_user_id     text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    as_of          timestamptz NOT NULL,
    rank           integer     NOT NULL,
    media_id       text        NOT NULL,
    score          double precision NOT NULL,         -- baseline score (see docs/analytics.md)
    weighted_score double precision,                  -- the story's weighted score, for comparison
    details        jsonb,
    PRIMARY KEY (ig_user_id, as_of, rank)
);

CREATE TABLE instagram.best_posting_times (
    ig_user_id               text     NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    weekday                  smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),   -- ISO, account timezone
    hour                     smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),     -- account timezone
    posts                    bigint   NOT NULL,
    avg_engagement_rate_reach double precision,
    shrunk_engagement_rate_reach double precision,
    computed_at              timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, weekday, hour)
);

CREATE TABLE instagram.performance_reports (
    ig_user_id   text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    period_start date        NOT NULL,
    period_end   date        NOT NULL,
    kind         text        NOT NULL DEFAULT 'rolling_7d',
    generated_at timestamptz NOT NULL,
    report       jsonb       NOT NULL,
    html_path    text,
    PRIMARY KEY (ig_user_id, kind, period_start, period_end)
);

CREATE TABLE instagram.sync_runs (
    dagster_run_id  text        NOT NULL,
    ig_user_id      text        NOT NULL,
    sync_type       text        NOT NULL CHECK (sync_type IN ('account', 'media')),
    partition_key   text,                             -- a key, or 'first...last' for a range
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    status          text        NOT NULL CHECK (status IN ('running', 'success', 'partial', 'failed')),
    api_calls       integer     NOT NULL DEFAULT 0,
    rows_written    bigint      NOT NULL DEFAULT 0,
    throttle_wait_seconds double precision NOT NULL DEFAULT 0,
    items_skipped   integer     NOT NULL DEFAULT 0,
    error           text,
    error_code      integer,
    error_subcode   integer,
    fbtrace_id      text,
    details         jsonb,
    PRIMARY KEY (dagster_run_id, ig_user_id, sync_type)
);
CREATE INDEX sync_runs_account_started_idx ON instagram.sync_runs (ig_user_id, started_at DESC);

CREATE TABLE instagram.notifications (
    dedupe_key   text PRIMARY KEY,                    -- the event; a second send of it is refused
    kind         text        NOT NULL,
    ig_user_id   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    payload      jsonb       NOT NULL,
    delivery     text        NOT NULL CHECK (delivery IN ('pending', 'sent', 'failed', 'recorded')),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    delivered_at timestamptz
);

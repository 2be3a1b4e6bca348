-- Competitors (issue 24): the public professional accounts an account compares itself with, read daily through
-- business discovery (graph-api-facts.md, section 10): profiles, posts with their public like and comment counts,
-- and the weekly benchmarks derived from them. docs/data-dictionary.md explains every column.

CREATE TABLE instagram.competitors (
    ig_user_id            text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    username              text        NOT NULL CHECK (username ~ '^[a-z0-9._]{1,30}$'),
    added_at              timestamptz NOT NULL DEFAULT now(),
    status                text        NOT NULL DEFAULT 'active'
                                      CHECK (status IN ('active', 'not_found', 'not_professional', 'unavailable')),
    status_reason         text,
    status_changed_at     timestamptz,
    competitor_ig_user_id text,
    last_attempt_at       timestamptz,
    last_captured_at      timestamptz,
    PRIMARY KEY (ig_user_id, username)
);

CREATE TABLE instagram.competitor_profiles_daily (
    ig_user_id            text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    username              text        NOT NULL,
    date                  date        NOT NULL,
    is_self               boolean     NOT NULL DEFAULT false,
    competitor_ig_user_id text,
    name                  text,
    followers_count       bigint      CHECK (followers_count >= 0),
    follows_count         bigint      CHECK (follows_count >= 0),
    media_count           bigint      CHECK (media_count >= 0),
    fetched_at            timestamptz NOT NULL,          -- when the capture read it
    PRIMARY KEY (ig_user_id, username, date)
);

CREATE TABLE instagram.competitor_media (
    media_id              text        PRIMARY KEY,
    username              text        NOT NULL,
    competitor_ig_user_id text,
    media_product_type    text,
    media_type            text,
    published_at          timestamptz,
    permalink             text,
    caption               text,
    first_seen_at         timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX competitor_media_username_published ON instagram.competitor_media (username, published_at);

CREATE TABLE instagram.competitor_media_snapshots (
    media_id              text        NOT NULL REFERENCES instagram.competitor_media ON DELETE CASCADE,
    captured_at           timestamptz NOT NULL,
    like_count            bigint      CHECK (like_count >= 0),      -- NULL: the owner hides like counts
    comments_count        bigint      CHECK (comments_count >= 0),
    PRIMARY KEY (media_id, captured_at)
);

CREATE TABLE instagram.competitor_benchmarks (
    ig_user_id                   text             NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    week_start                   date             NOT NULL,
    subject                      text             NOT NULL,
    is_self                      boolean          NOT NULL,
    followers                    bigint,
    follower_growth              bigint,
    follower_growth_pct          double precision,
    posts                        bigint,
    reels                        bigint,
    carousels                    bigint,
    images                       bigint,
    avg_interactions_per_post    double precision,
    engagement_per_follower      double precision,
    rank_follower_growth         integer,
    rank_follower_growth_pct     integer,
    rank_posts                   integer,
    rank_avg_interactions        integer,
    rank_engagement_per_follower integer,
    subjects                     integer,
    computed_at                  timestamptz      NOT NULL,
    PRIMARY KEY (ig_user_id, week_start, subject)
);

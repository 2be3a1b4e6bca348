-- First-sync numbers (issue 10): follower history, the story's post score, trending methods.
-- Only ADD COLUMN: nothing earlier changes meaning.

-- Follower history (docs/analytics.md, "Follower history"): followers_total of each day is either read from a
-- profile snapshot taken within an hour after the day ended ('observed') or reconstructed from the current
-- total and the later days' net change ('derived'). unfollows = follows_and_unfollows - follower_count.
ALTER TABLE instagram.account_insights_daily
    ADD COLUMN IF NOT EXISTS unfollows              bigint,
    ADD COLUMN IF NOT EXISTS followers_total_source text
        CHECK (followers_total_source IN ('observed', 'derived'));

-- The story's post score (docs/product.md): 50 % engagement rate, 30 % save rate, 20 % reach, all by views.
ALTER TABLE instagram.media_engagement
    ADD COLUMN IF NOT EXISTS performance_score double precision;

-- Which method scored a trending post ('same_age_growth' or 'cross_sectional'), and the story's fields.
ALTER TABLE instagram.trending_posts
    ADD COLUMN IF NOT EXISTS method          text NOT NULL DEFAULT 'same_age_growth'
        CHECK (method IN ('same_age_growth', 'cross_sectional')),
    ADD COLUMN IF NOT EXISTS engagement_rate double precision,   -- engagement / reach * 100 of the newest snapshot
    ADD COLUMN IF NOT EXISTS reach           bigint;

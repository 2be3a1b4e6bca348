-- Wide views for the questions analysts ask most (issue 26), so a SQL client needs no join of our tables.
-- Descriptions of every column: storage/tables.py (applied as COMMENT ON by every migration run).
-- A later migration that changes the type of a column these views read must DROP VIEW and create them again
-- (PostgreSQL refuses to alter a column a view depends on).

-- One row per post (stories included, media_product_type says which).
CREATE OR REPLACE VIEW instagram.posts AS
WITH account_tz AS (
    SELECT a.ig_user_id, a.username, a.timezone, COALESCE(z.name, 'UTC') AS tz
    FROM instagram.accounts a LEFT JOIN pg_timezone_names z ON z.name = a.timezone
),
trended AS (
    SELECT media_id, min(as_of) AS first_trended_at, min(rank) AS best_rank
    FROM instagram.trending_posts GROUP BY media_id
),
snapshot_counts AS (
    SELECT media_id, count(*) AS snapshots FROM instagram.media_insights_snapshots GROUP BY media_id
),
tags AS (
    SELECT media_id, array_agg(hashtag ORDER BY hashtag) AS hashtags FROM instagram.media_hashtags GROUP BY media_id
)
SELECT m.media_id, m.ig_user_id, t.username, t.timezone, m.media_type, m.media_product_type,
       m.published_at, (m.published_at AT TIME ZONE t.tz) AS published_local,
       m.caption, m.permalink,
       l.captured_at AS metrics_captured_at, l.reach, l.views, l.likes, l.comments, l.saved, l.shares,
       l.total_interactions, l.follows, l.profile_visits,
       e.engagement, e.engagement_rate_reach, e.engagement_rate_views, e.engagement_rate_followers,
       e.like_rate, e.comment_rate, e.save_rate, e.share_rate, e.performance_score, e.followers_at_publish,
       COALESCE(h.hashtags, '{}'::text[]) AS hashtags,
       tr.first_trended_at IS NOT NULL AS trended, tr.first_trended_at, tr.best_rank AS best_trending_rank,
       COALESCE(s.snapshots, 0) AS snapshots,
       c.top_level_answered AS comments_answered, c.top_level_unanswered AS comments_unanswered,
       c.unanswered_questions, c.median_first_response_minutes
FROM instagram.media m
JOIN account_tz t USING (ig_user_id)
LEFT JOIN instagram.media_insights_latest l USING (media_id)
LEFT JOIN instagram.media_engagement e USING (media_id)
LEFT JOIN tags h USING (media_id)
LEFT JOIN trended tr USING (media_id)
LEFT JOIN snapshot_counts s USING (media_id)
LEFT JOIN instagram.conversation_posts c USING (media_id);

-- One row per account and day with insights. The insight columns cover Meta's day (Pacific time, as
-- account_insights_daily); posts, stories and engagement are those published that day in the account's time zone
-- (as account_engagement_daily).
CREATE OR REPLACE VIEW instagram.account_days AS
WITH account_tz AS (
    SELECT a.ig_user_id, a.username, COALESCE(z.name, 'UTC') AS tz
    FROM instagram.accounts a LEFT JOIN pg_timezone_names z ON z.name = a.timezone
),
published AS (
    SELECT m.ig_user_id, (m.published_at AT TIME ZONE t.tz)::date AS date,
           count(*) FILTER (WHERE m.media_product_type IS DISTINCT FROM 'STORY') AS posts,
           count(*) FILTER (WHERE m.media_product_type = 'STORY') AS stories
    FROM instagram.media m JOIN account_tz t USING (ig_user_id)
    GROUP BY 1, 2
)
SELECT d.ig_user_id, t.username, d.date, d.reach, d.views, d.accounts_engaged, d.total_interactions,
       d.profile_views, COALESCE(d.measured_follows, d.follower_count) AS follows, d.unfollows, d.unfollows_source,
       d.followers_total, d.followers_total_source,
       COALESCE(p.posts, 0) AS posts, COALESCE(p.stories, 0) AS stories,
       e.engagement, e.engagement_rate_reach
FROM instagram.account_insights_daily d
JOIN account_tz t USING (ig_user_id)
LEFT JOIN published p USING (ig_user_id, date)
LEFT JOIN instagram.account_engagement_daily e USING (ig_user_id, date);

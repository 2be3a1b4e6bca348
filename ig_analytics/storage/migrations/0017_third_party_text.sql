-- Text of people who are not our users, kept only where a feature needs it (issue 23 review):
-- no feature reads competitors' captions (the benchmarks use counts and post types), so they are no longer
-- requested or kept. Tagged posts keep caption and username (the report's "Posts that tagged you") until
-- IG_ANALYTICS_COMMENT_TEXT_DAYS after publication; the daily retention job blanks them then.
ALTER TABLE instagram.competitor_media DROP COLUMN IF EXISTS caption;

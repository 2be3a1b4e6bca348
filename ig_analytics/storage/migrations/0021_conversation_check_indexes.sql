-- Indexes that let the conversation checks (quality/conversation.py) read a few pages instead of whole tables
-- (issue 27). Each of the 4 hourly shard runs scanned all of media_comments (~1 GB at 10,000 accounts), twice for
-- `reply_to_a_reply`, and all of tagged_media; judging only the run's accounts (`= ANY(:accounts)`, a quarter of
-- the rows) still made the planner scan them whole. On the tables of a 1,000-account tick (544,372 comments, 154 MB;
-- 255,447 tagged posts, 60 MB), EXPLAIN (ANALYZE, BUFFERS) of one shard run's checks: 51,876 buffers without these,
-- 6,897 with them (43,061 for a run of every account before, 10,190 after).
-- The violation indexes hold only offending rows (none while the data is right): the rules `negative_likes` and
-- `negative_counts` read one page whatever the history.
CREATE INDEX IF NOT EXISTS media_comments_negative_likes ON instagram.media_comments (ig_user_id) WHERE like_count < 0;
CREATE INDEX IF NOT EXISTS tagged_media_negative_counts ON instagram.tagged_media (ig_user_id)
    WHERE like_count < 0 OR comments_count < 0;
-- `future_post` (published_at > now + 10 min): a range at the end of the index.
CREATE INDEX IF NOT EXISTS tagged_media_published ON instagram.tagged_media (published_at);
-- `reply_to_a_reply` joins the replies with the replies (index-only on both sides, an account's replies kept by
-- ig_user_id): replies only, ~10 % of the table's size.
CREATE INDEX IF NOT EXISTS media_comments_replies ON instagram.media_comments (comment_id) INCLUDE (parent_id, ig_user_id)
    WHERE parent_id IS NOT NULL;

-- media_hashtags, narrower (issue 27: a year of one account within 5 MB). One row per post and tag, kept for every
-- post (the `posts` view lists each post's tags), so a year of rows only grows: each row is made smaller.
-- * published_at was the post's publication copied from instagram.media: the one reader that filtered on it
--   (hashtag_performance's read of the tags, analytics/hashtags.py) joins instagram.media instead.
-- * The second index was (ig_user_id, hashtag), ~as large as the table's key; every reader selects by account
--   (the IO manager's replace of a shard's accounts, the hashtags_valid check, the read of a slice of accounts),
--   none by tag. On (ig_user_id) alone it is deduplicated (one entry per account and page: ~7 B a row, not ~48).
-- * CLUSTER rewrites the rows without the dropped column's bytes (DROP COLUMN alone leaves them in every row);
--   a derived table, rebuilt every hour from the captions: the exclusive lock lasts seconds.
DROP INDEX IF EXISTS instagram.media_hashtags_account;
ALTER TABLE instagram.media_hashtags DROP COLUMN IF EXISTS published_at;
CREATE INDEX IF NOT EXISTS media_hashtags_account ON instagram.media_hashtags (ig_user_id);
CLUSTER instagram.media_hashtags USING media_hashtags_pkey;
ALTER TABLE instagram.media_hashtags SET WITHOUT CLUSTER;

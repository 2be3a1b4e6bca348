-- The replies of a comment, found by its id (issue 27): the report's conversation section asks, per top-level
-- comment of the period, for the account's first reply (analytics/report_conversation.py, `r.parent_id =
-- c.comment_id`), and without this index each of those subqueries read the whole table: 6.3 s per account at
-- 200 sandbox accounts (122,559 comments), so the 03:00 reports run of 200 accounts took over an hour; 1.5 ms with it.
-- Numbered 0018: main has 0017_third_party_text.sql.
CREATE INDEX IF NOT EXISTS media_comments_parent ON instagram.media_comments (parent_id) WHERE parent_id IS NOT NULL;

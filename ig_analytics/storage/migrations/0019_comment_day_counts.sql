-- The comments of old posts kept as counts (issue 27: media_comments was 2.9 MB of a 10.9 MB account-year, every
-- row kept forever). Retention (`comment_rows_compact_after_days`, defs/retention.py `compact_comment_rows`)
-- replaces the rows of a post published before its horizon by one row per post and UTC day here: what the
-- report's conversation section reads of them (analytics/report_conversation.py), counts and the account's
-- first-response minutes only, never text or usernames. The open questions (unanswered top-level questions of
-- others) stay as rows in media_comments: a report lists them.
CREATE TABLE instagram.comment_day_counts (
    ig_user_id            text    NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    day                   date    NOT NULL,    -- the UTC day the comments were written
    media_id              text    NOT NULL,
    comments_and_replies  integer NOT NULL,    -- every comment and reply removed, the account's included
    top_level             integer NOT NULL,    -- of which top-level comments of others
    replies               integer NOT NULL,    -- of which replies (the account's included)
    response_minutes      double precision[],  -- per answered top-level comment of others: minutes to the first reply
    PRIMARY KEY (ig_user_id, day, media_id)
);

-- When a post's comment rows were compacted: its comments are not read again (a re-read would store them twice).
ALTER TABLE instagram.media_comment_reads ADD COLUMN rows_compacted_at timestamptz;

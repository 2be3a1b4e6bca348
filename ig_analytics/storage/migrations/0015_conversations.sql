-- Conversations and content (issue 25): comments and replies on the account's posts, the posts of others that tag
-- the account, hashtags parsed from the captions and how they perform, and the conversation metrics derived from
-- the comments. docs/data-dictionary.md explains every column; docs/analytics.md every definition.

-- A comment or a reply on one of the account's posts. Text and username are blanked after
-- IG_ANALYTICS_COMMENT_TEXT_DAYS (the retention job): the row, its times and counts stay.
CREATE TABLE instagram.media_comments (
    comment_id     text        PRIMARY KEY,
    media_id       text        NOT NULL,
    ig_user_id     text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    parent_id      text,                            -- NULL for a top-level comment
    username       text,
    text           text,
    like_count     bigint,
    hidden         boolean,
    published_at   timestamptz NOT NULL,
    is_own         boolean     NOT NULL,            -- written by the account itself
    is_question    boolean     NOT NULL,            -- a top-level comment whose text held a '?' (kept after blanking)
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    text_blanked_at timestamptz                     -- when retention blanked text and username
);
CREATE INDEX media_comments_media ON instagram.media_comments (media_id);
CREATE INDEX media_comments_account_time ON instagram.media_comments (ig_user_id, published_at);

-- What the comment reads of a post have learnt: the comments_count read last (a post is read again only when
-- its count moved), when it was last read in full (deleted comments go then), and whether it refuses its comments.
CREATE TABLE instagram.media_comment_reads (
    media_id         text        PRIMARY KEY,
    ig_user_id       text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    comments_count   bigint,
    read_at          timestamptz NOT NULL,
    full_read_at     timestamptz,
    refused_reason   text
);

-- Whether an account's token may read comments: an account without the permission is told once, not failed.
CREATE TABLE instagram.comment_access (
    ig_user_id  text        PRIMARY KEY REFERENCES instagram.accounts ON DELETE CASCADE,
    status      text        NOT NULL,               -- 'granted' | 'denied'
    reason      text,
    checked_at  timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL
);

CREATE TABLE instagram.conversation_daily (
    ig_user_id                      text   NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date                            date   NOT NULL,
    comments                        bigint NOT NULL,
    replies                         bigint NOT NULL,
    top_level                       bigint NOT NULL,
    top_level_answered              bigint NOT NULL,
    top_level_unanswered            bigint NOT NULL,
    unanswered_questions            bigint NOT NULL,
    answered_that_day               bigint NOT NULL,
    median_first_response_minutes   double precision,
    p90_first_response_minutes      double precision,
    computed_at                     timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date)
);

CREATE TABLE instagram.conversation_posts (
    media_id                        text   PRIMARY KEY,
    ig_user_id                      text   NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    published_at                    timestamptz,
    comments                        bigint NOT NULL,
    replies                         bigint NOT NULL,
    top_level_answered              bigint NOT NULL,
    top_level_unanswered            bigint NOT NULL,
    unanswered_questions            bigint NOT NULL,
    median_first_response_minutes   double precision,
    computed_at                     timestamptz NOT NULL
);

CREATE TABLE instagram.tagged_media (
    ig_user_id          text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    media_id            text        NOT NULL,
    username            text,
    media_type          text,
    media_product_type  text,
    published_at        timestamptz,
    permalink           text,
    caption             text,
    like_count          bigint,
    comments_count      bigint,
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, media_id)
);

CREATE TABLE instagram.media_hashtags (
    media_id      text        NOT NULL,
    hashtag       text        NOT NULL,             -- case-folded, NFC, without '#'
    ig_user_id    text        NOT NULL,
    published_at  timestamptz NOT NULL,
    PRIMARY KEY (media_id, hashtag)
);
CREATE INDEX media_hashtags_account ON instagram.media_hashtags (ig_user_id, hashtag);

CREATE TABLE instagram.hashtag_performance (
    ig_user_id                    text    NOT NULL,
    period_start                  date    NOT NULL,
    period_end                    date    NOT NULL,
    hashtag                       text    NOT NULL,
    posts                         bigint  NOT NULL,
    median_engagement_rate_reach  double precision,
    median_reach                  double precision,
    lift_vs_account_median        double precision,
    account_median_engagement_rate_reach double precision,
    computed_at                   timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, period_start, period_end, hashtag)
);

-- When each account's tagged posts were last read: they are read about once a day (every sync reads them).
CREATE TABLE instagram.tag_reads (
    ig_user_id  text        PRIMARY KEY REFERENCES instagram.accounts ON DELETE CASCADE,
    read_at     timestamptz NOT NULL,
    posts       bigint      NOT NULL
);

-- Followers online per hour (issue 14): the API's online_followers (older versions only; absent from v25) gives,
-- for each of the last 30 days, how many followers were online in each hour. One row per account and hour.
-- docs/data-dictionary.md explains every column.

CREATE TABLE instagram.online_followers (
    ig_user_id       text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    hour_start       timestamptz NOT NULL,          -- the hour's start (the API's hour key h of the day ending at
                                                    -- end_time is end_time - 24 h + h hours)
    followers_online bigint      NOT NULL,          -- followers online during that hour
    api_version      text        NOT NULL,
    fetched_at       timestamptz NOT NULL,          -- a later fetch of the same hour replaces the value
    PRIMARY KEY (ig_user_id, hour_start)
);

-- Audience demographics (issue 14): Meta serves only the current lifetime picture, so one snapshot per account and
-- day is the history. docs/data-dictionary.md explains every column.

CREATE TABLE instagram.audience_demographics (
    ig_user_id  text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date        date        NOT NULL,              -- the UTC day whose end the picture shows (taken 02:20 UTC next day)
    metric      text        NOT NULL CHECK (metric IN ('follower_demographics', 'engaged_audience_demographics')),
    breakdown   text        NOT NULL CHECK (breakdown IN ('age', 'gender', 'country', 'city')),
    key         text        NOT NULL,              -- e.g. '25-34', 'F', 'US', 'Paris, Ile-de-France'
    value       bigint      NOT NULL,              -- accounts; only the top 45 keys, only known demographics
    timeframe   text,                              -- the timeframe asked (engaged: this_month); NULL: none asked
    api_version text        NOT NULL,
    fetched_at  timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date, metric, breakdown, key)
);

-- One row per account, day, metric and breakdown: whether the API had a picture, and the follower total then.
CREATE TABLE instagram.audience_demographics_status (
    ig_user_id      text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date            date        NOT NULL,
    metric          text        NOT NULL,
    breakdown       text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('ok', 'not_available', 'rejected')),
    reason          text,                          -- why not available / rejected (redacted)
    timeframe       text,
    followers_total bigint,                        -- the profile's followers_count when fetched
    api_version     text        NOT NULL,
    fetched_at      timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date, metric, breakdown)
);

-- sync_runs records the demographics syncs too: add 'demographics' to whatever sync types the check allows now
-- (other migrations may have added their own).
DO $$
DECLARE def text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO def FROM pg_constraint
     WHERE conname = 'sync_runs_sync_type_check' AND conrelid = 'instagram.sync_runs'::regclass;
    IF def IS NOT NULL AND position('demographics' IN def) = 0 THEN
        ALTER TABLE instagram.sync_runs DROP CONSTRAINT sync_runs_sync_type_check;
        EXECUTE 'ALTER TABLE instagram.sync_runs ADD CONSTRAINT sync_runs_sync_type_check '
             || regexp_replace(def, '\](\)+)$', ', ''demographics''::text]\1');
    END IF;
END $$;

-- Issue 14, second part. docs/data-dictionary.md explains every column.
--
-- 1. Age x gender crossed: the audience picture asked with breakdown=age,gender. audience_demographics keeps the
--    breakdowns of the public contract (age, gender, country, city; its age and gender rows are the margins of the
--    crossed cells), so the cells have a table of their own. The view puts both in one shape for the readers
--    (report, checks): breakdown 'age,gender', key '<age>|<gender>'.
CREATE TABLE IF NOT EXISTS instagram.audience_age_gender (
    ig_user_id  text        NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date        date        NOT NULL,
    metric      text        NOT NULL CHECK (metric IN ('follower_demographics', 'engaged_audience_demographics')),
    age         text        NOT NULL,
    gender      text        NOT NULL,
    value       bigint      NOT NULL,
    timeframe   text,
    api_version text        NOT NULL,
    fetched_at  timestamptz NOT NULL,
    PRIMARY KEY (ig_user_id, date, metric, age, gender)
);
CREATE OR REPLACE VIEW instagram.audience_pictures AS
    SELECT ig_user_id, date, metric, breakdown, key, value, timeframe, api_version, fetched_at
    FROM instagram.audience_demographics
    UNION ALL
    SELECT ig_user_id, date, metric, 'age,gender', age || '|' || gender, value, timeframe, api_version, fetched_at
    FROM instagram.audience_age_gender;

-- 2. Follows and unfollows measured: follows_and_unfollows with breakdown=follow_type (FOLLOWER = follows,
--    NON_FOLLOWER = unfollows), one day per call. unfollows takes the measured value where the API served one and
--    the inference (follows_and_unfollows - follower_count) elsewhere; unfollows_source says which.
ALTER TABLE instagram.account_insights_daily
    ADD COLUMN IF NOT EXISTS measured_follows   bigint,
    ADD COLUMN IF NOT EXISTS measured_unfollows bigint,
    ADD COLUMN IF NOT EXISTS unfollows_source   text
        CHECK (unfollows_source IN ('measured', 'inferred', 'assumed_zero'));

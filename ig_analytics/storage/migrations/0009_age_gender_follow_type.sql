-- Issue 14, second part. docs/data-dictionary.md explains every column.
--
-- 1. Age x gender crossed: the audience picture asked with breakdown=age,gender is stored as breakdown 'age,gender',
--    key '<age>|<gender>' (e.g. '18-24|F'); the 'age' and 'gender' rows become its margins.
ALTER TABLE instagram.audience_demographics DROP CONSTRAINT IF EXISTS audience_demographics_breakdown_check;
ALTER TABLE instagram.audience_demographics ADD CONSTRAINT audience_demographics_breakdown_check
    CHECK (breakdown IN ('age', 'gender', 'country', 'city', 'age,gender'));

-- 2. Follows and unfollows measured: follows_and_unfollows with breakdown=follow_type (FOLLOWER = follows,
--    NON_FOLLOWER = unfollows), one day per call. unfollows takes the measured value where the API served one and
--    the inference (follows_and_unfollows - follower_count) elsewhere; unfollows_source says which.
ALTER TABLE instagram.account_insights_daily
    ADD COLUMN IF NOT EXISTS measured_follows   bigint,
    ADD COLUMN IF NOT EXISTS measured_unfollows bigint,
    ADD COLUMN IF NOT EXISTS unfollows_source   text
        CHECK (unfollows_source IN ('measured', 'inferred', 'assumed_zero'));

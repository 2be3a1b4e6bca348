-- Issue 27 (session 10): the audience history packed. A picture is ~160 rows of ~255 B in audience_demographics and
-- audience_age_gender (heap ~150 B a row, primary-key index ~95 B: the five-column key is repeated in every row), and
-- retention keeps ~30 a year per account. The pictures of the days before retention's audience_pack_after_days (1:
-- all but the newest day, the one the daily sync may still write) are moved (storage/audience_packing.py) into one
-- row per account and day here: one array element per row of the picture, in the shape of the view audience_pictures (breakdown 'age,gender', key '<age>|<gender>' for the crossed
-- cells), parallel arrays ordered by metric, breakdown and key, which PostgreSQL compresses (~2.5 kB a picture).
-- audience_demographics keeps its columns and key (the public contract) and holds the newest pictures; the view
-- audience_pictures, what the report, the check and the analysts read, shows every picture, packed or not.
CREATE TABLE IF NOT EXISTS instagram.audience_pictures_packed (
    ig_user_id  text          NOT NULL REFERENCES instagram.accounts ON DELETE CASCADE,
    date        date          NOT NULL,
    metric      text[]        NOT NULL,
    breakdown   text[]        NOT NULL,
    key         text[]        NOT NULL,
    value       bigint[]      NOT NULL,
    timeframe   text[]        NOT NULL,   -- elements NULL where the row's timeframe was NULL
    api_version text[]        NOT NULL,
    fetched_at  timestamptz[] NOT NULL,
    PRIMARY KEY (ig_user_id, date)
);
-- Compressed but kept in the row (STORAGE MAIN; out of line only past ~8 kB): a compressed picture (~2.4 kB) just
-- over the 2 kB TOAST threshold went out of line in chunks, ~6 kB a picture with the TOAST table's pages and churn
-- (40 days of 3 sandbox accounts: 72 kB per account with the default storage, 53 kB with MAIN).
ALTER TABLE instagram.audience_pictures_packed ALTER COLUMN metric SET STORAGE MAIN,
    ALTER COLUMN breakdown SET STORAGE MAIN, ALTER COLUMN key SET STORAGE MAIN, ALTER COLUMN value SET STORAGE MAIN,
    ALTER COLUMN timeframe SET STORAGE MAIN, ALTER COLUMN api_version SET STORAGE MAIN,
    ALTER COLUMN fetched_at SET STORAGE MAIN;

CREATE OR REPLACE VIEW instagram.audience_pictures AS
    SELECT ig_user_id, date, metric, breakdown, key, value, timeframe, api_version, fetched_at
    FROM instagram.audience_demographics
    UNION ALL
    SELECT ig_user_id, date, metric, 'age,gender', age || '|' || gender, value, timeframe, api_version, fetched_at
    FROM instagram.audience_age_gender
    UNION ALL
    SELECT p.ig_user_id, p.date, u.metric, u.breakdown, u.key, u.value, u.timeframe, u.api_version, u.fetched_at
    FROM instagram.audience_pictures_packed p,
         unnest(p.metric, p.breakdown, p.key, p.value, p.timeframe, p.api_version, p.fetched_at)
             AS u(metric, breakdown, key, value, timeframe, api_version, fetched_at);

-- Trending's curves packed, one row per post (issue 27: the snapshots of a post's first 8.25 days were kept
-- hourly for 90 days because trending interpolates the earlier posts' engagement curves at a candidate's age,
-- ~5,600 of the 9,621 snapshot rows a year of one account keeps, ~300 B a row). Retention
-- (analytics/trending_curves.py `compact_snapshots`) now compacts those snapshots like any other and moves the rows
-- it deletes that trending reads (a non-story post published within trending's baseline_days, fetched within its
-- curve_span) into the post's row here, in the same transaction: each point is in exactly one place. Trending reads
-- a post's points from both. The row goes when the post leaves the baseline (`drop_curves`).
-- Element i of every array is one deleted snapshot, ascending by capture slot. Raw counters, not the engagement: a
-- changed engagement definition still applies. Times as int4 milliseconds after published_at (the post's
-- publication when packed; +-24.8 days, the span is 8.25): ~40 B a point where timestamptz arrays took ~49. The
-- fetch time is floored to the millisecond, which keeps trending's ages (whole seconds, rounded) and its cutoffs
-- (whole seconds) exact.
CREATE TABLE instagram.media_curves (
    media_id           text          PRIMARY KEY REFERENCES instagram.media ON DELETE CASCADE,
    published_at       timestamptz   NOT NULL,  -- the base of the offsets below
    captured_after_ms  integer[]     NOT NULL,  -- capture slot - published_at
    fetched_after_ms   integer[]     NOT NULL,  -- fetched_at - published_at, floored
    reach              bigint[]      NOT NULL,
    likes              bigint[]      NOT NULL,
    comments           bigint[]      NOT NULL,
    saved              bigint[]      NOT NULL,
    shares             bigint[]      NOT NULL,
    total_interactions bigint[]      NOT NULL
);

-- The packed points as rows, with the snapshots' column names (what trending and retention read).
CREATE VIEW instagram.media_curve_points AS
SELECT c.media_id,
       c.published_at + p.captured_after_ms * interval '1 millisecond' AS captured_at,
       c.published_at + p.fetched_after_ms * interval '1 millisecond' AS fetched_at,
       p.reach, p.likes, p.comments, p.saved, p.shares, p.total_interactions
FROM instagram.media_curves c
CROSS JOIN LATERAL unnest(c.captured_after_ms, c.fetched_after_ms, c.reach, c.likes, c.comments, c.saved, c.shares,
                          c.total_interactions)
    AS p(captured_after_ms, fetched_after_ms, reach, likes, comments, saved, shares, total_interactions);

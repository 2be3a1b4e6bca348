-- Trending's parameters once per distinct set, not on every evaluation row (issue 27). Each hourly evaluation row
-- held its parameters as ~500 B of JSON, the same every hour: ~70 % of the row. The evaluation now names its set
-- (params_id); the view trending_evaluations_with_params shows the rows with their parameters as before.
-- Numbered 0020: 0019 is another branch's.
CREATE TABLE IF NOT EXISTS instagram.trending_parameter_sets (
    params_id     integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    params        jsonb       NOT NULL UNIQUE,
    first_used_at timestamptz NOT NULL
);

INSERT INTO instagram.trending_parameter_sets (params, first_used_at)
SELECT params, min(computed_at) FROM instagram.trending_evaluations GROUP BY params ORDER BY 2
ON CONFLICT (params) DO NOTHING;

ALTER TABLE instagram.trending_evaluations
    ADD COLUMN IF NOT EXISTS params_id integer REFERENCES instagram.trending_parameter_sets;
UPDATE instagram.trending_evaluations e SET params_id = s.params_id
FROM instagram.trending_parameter_sets s WHERE s.params = e.params;
-- Dropping the column does not rewrite the rows: each keeps its JSON bytes until retention deletes it (the hourly
-- rows after 7 days, the daily ones after 35); the weekly rows kept for good keep theirs (~500 B each, 52 a year per
-- account) unless an operator runs VACUUM FULL instagram.trending_evaluations (an exclusive lock while it copies).
ALTER TABLE instagram.trending_evaluations ALTER COLUMN params_id SET NOT NULL, DROP COLUMN params;

CREATE OR REPLACE VIEW instagram.trending_evaluations_with_params AS
    SELECT e.ig_user_id, e.as_of, e.candidates, e.scored, e.listed, s.params, e.computed_at, e.params_id
    FROM instagram.trending_evaluations e JOIN instagram.trending_parameter_sets s USING (params_id);

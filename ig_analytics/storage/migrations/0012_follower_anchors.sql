-- Follower totals anchored at Meta's day end (docs/analytics.md, section 0).
--
-- 1. sync_runs records the daily anchor reads ('followers'): add it to whatever sync types the check allows now
--    (other migrations may have added their own).
DO $$
DECLARE def text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO def FROM pg_constraint
     WHERE conname = 'sync_runs_sync_type_check' AND conrelid = 'instagram.sync_runs'::regclass;
    IF def IS NOT NULL AND position('''followers''' IN def) = 0 THEN
        ALTER TABLE instagram.sync_runs DROP CONSTRAINT sync_runs_sync_type_check;
        EXECUTE 'ALTER TABLE instagram.sync_runs ADD CONSTRAINT sync_runs_sync_type_check '
             || regexp_replace(def, '\](\)+)$', ', ''followers''::text]\1');
    END IF;
END $$;

-- 2. "Observed" used to mean "read within an hour after 07:00 UTC", which in winter is 23:00-24:00 Pacific, before
--    the day ended. Relabel those values derived: the next follower-history refresh recomputes every day from the
--    stored profile snapshots under the Pacific-midnight rule (a derived value may then be replaced).
UPDATE instagram.account_insights_daily SET followers_total_source = 'derived'
 WHERE followers_total_source = 'observed';

-- Counts are bigint by the contract (docs/product.md, "Tables"): the two integer counts of sync_runs follow.
ALTER TABLE instagram.sync_runs
    ALTER COLUMN api_calls     TYPE bigint,
    ALTER COLUMN items_skipped TYPE bigint;

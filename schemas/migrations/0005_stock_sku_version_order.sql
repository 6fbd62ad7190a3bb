-- Per-SKU versions in commit order.
--
-- Versions come from one sequence, assigned when a row is written. Two transactions writing
-- different locations of the same SKU could otherwise commit in the opposite order of their
-- versions (T1 takes 5, T2 takes 8, T2 commits first): the SKU-level view would then see 8 before
-- 5, and a change at 5 arriving after 8 could never be published with a newer SKU version.
-- Taking a per-SKU transaction-scoped advisory lock before drawing the version serialises the
-- writers of one SKU until commit, so per SKU, version order = commit order = CDC order.
--
-- Writers touching several SKUs should do so in a consistent order (e.g. sorted by sku) to avoid
-- deadlocks; Postgres detects any that remain (SQLSTATE 40P01) and the writer retries.

CREATE OR REPLACE FUNCTION stock_levels_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('stock_levels:' || NEW.sku, 0));
  NEW.version := nextval('stock_version_seq');
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END;
$$;

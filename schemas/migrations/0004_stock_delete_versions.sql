-- Deletes of stock rows, made safe for version-ordered consumers.
--
-- 1. REPLICA IDENTITY FULL: the WAL (and so the Debezium event) carries the whole old row for
--    updates and deletes. A delete event then knows the version of the row it removes, so a
--    replayed delete can never remove a newer re-inserted row, and a replayed older insert can
--    never resurrect a deleted one.
-- 2. A delete assigns no new version (there is no new row image). So that a SKU's published
--    version still increases after one of its locations is deleted, the remaining rows of that
--    SKU are re-stamped after the delete (same transaction, later in the WAL): consumers see a
--    strictly newer SKU version carrying the post-delete availability. AFTER ROW triggers run at
--    the end of the statement, so deleting every row of a SKU at once re-stamps nothing; the
--    last delete then carries deleted=true, which supersedes the same version (docs/data-model.md).

ALTER TABLE stock_levels REPLICA IDENTITY FULL;

CREATE OR REPLACE FUNCTION stock_levels_restamp_siblings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE stock_levels SET version = 0 WHERE sku = OLD.sku AND location_id <> OLD.location_id;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS stock_levels_delete_restamp ON stock_levels;
CREATE TRIGGER stock_levels_delete_restamp
  AFTER DELETE ON stock_levels
  FOR EACH ROW EXECUTE FUNCTION stock_levels_restamp_siblings();

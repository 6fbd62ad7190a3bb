/**
 * The kit catalog as every gateway holds it (docs/kits.md): read from Postgres (migration 0017:
 * `kits`, `kit_components`) in one REPEATABLE READ snapshot, kept current by polling the version
 * of `kit_config` (lib/config-watcher.ts). A catalog is only ever replaced by a newer one.
 */
import type pg from 'pg';
import { EMPTY_KIT_CATALOG, kitCatalog, type Kit, type KitCatalog } from './contracts/kits.ts';
import { VersionedWatcher, type VersionedSource, type VersionedWatcherOptions } from './config-watcher.ts';
import { inTransaction } from './pg.ts';

/** The whole catalog, in one snapshot (the version and the rows agree). */
export async function loadKitCatalog(pool: pg.Pool): Promise<KitCatalog> {
  return inTransaction(
    pool,
    async (c) => {
      const v = await c.query<{ version: string }>('SELECT version FROM kit_config WHERE id');
      const rows = await c.query<{ sku: string; base: string; components: Array<{ sku: string; qty: number }> }>(
        `SELECT k.sku, k.version_base AS base,
                jsonb_agg(jsonb_build_object('sku', c.component_sku, 'qty', c.quantity) ORDER BY c.component_sku) AS components
           FROM kits k JOIN kit_components c ON c.kit_sku = k.sku
          GROUP BY k.sku, k.version_base ORDER BY k.sku`,
      );
      const kits: Kit[] = rows.rows.map((r) => ({ sku: r.sku, base: Number(r.base), components: r.components }));
      return kitCatalog(Number(v.rows[0]?.version ?? 0), kits);
    },
    { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' },
  );
}

export async function kitCatalogVersion(pool: pg.Pool): Promise<number> {
  const r = await pool.query<{ version: string }>('SELECT version FROM kit_config WHERE id');
  return Number(r.rows[0]?.version ?? 0);
}

const KIT_SOURCE: VersionedSource<KitCatalog> = {
  what: 'kit catalog',
  empty: EMPTY_KIT_CATALOG,
  load: loadKitCatalog,
  version: kitCatalogVersion,
  describe: (c) => ({ kits: c.kits.size }),
};

/** Holds the current kit catalog; without one (Postgres down at start) no SKU is a kit until a poll loads it. */
export class KitWatcher extends VersionedWatcher<KitCatalog> {
  constructor(opts: VersionedWatcherOptions<KitCatalog>) {
    super(KIT_SOURCE, opts);
  }
}

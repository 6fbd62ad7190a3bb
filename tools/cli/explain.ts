/**
 * `npm run inspect -- explain <sku> [--location L] [--json]` (docs/ledger.md): how a SKU's rows
 * reached their current figures — the ledger's baseline, every movement in order with what moved
 * and why, and whether they add up to the row as it is now. Exit 0 when they do, 1 when a row has
 * figures the ledger does not explain (or Postgres is not reachable), 2 usage.
 */
import pg from 'pg';
import { explainSku, type RowExplanation } from '../../connectors/ledger.ts';
import type { Config } from '../../lib/config.ts';
import { MOVEMENT_BUCKETS, type MovementBucket } from '../../lib/contracts/movements.ts';

const LABEL: Record<MovementBucket, string> = { onHand: 'on hand', reserved: 'reserved', safetyStock: 'safety', incoming: 'incoming', backordered: 'backordered' };

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

function moved(d: Record<MovementBucket, number>): string {
  return MOVEMENT_BUCKETS.filter((b) => d[b] !== 0).map((b) => `${LABEL[b]} ${signed(d[b])}`).join(', ') || 'nothing';
}

function figures(f: Record<MovementBucket, number>): string {
  return MOVEMENT_BUCKETS.filter((b) => b === 'onHand' || b === 'reserved' || b === 'safetyStock' || f[b] !== 0).map((b) => `${LABEL[b]} ${f[b]}`).join(', ');
}

export function formatExplanation(rows: readonly RowExplanation[]): string {
  const out: string[] = [];
  for (const r of rows) {
    out.push(`${r.sku} @ ${r.locationId}`);
    const since = r.baseline.throughAt === null ? 'ledger start' : `through ${new Date(r.baseline.throughAt).toISOString()}`;
    out.push(`  baseline (${since}): ${figures(r.baseline)}`);
    for (const m of r.movements) {
      const why = [m.kind + (m.reason ? `/${m.reason}` : ''), m.reference, m.actor && `by ${m.actor}`, m.sourceSystem && `from ${m.sourceSystem}`].filter(Boolean).join(' ');
      const dated = m.effectiveAt !== m.recordedAt ? ` (as of ${new Date(m.effectiveAt).toISOString()})` : '';
      out.push(`  #${m.movementId} ${new Date(m.recordedAt).toISOString()}${dated}  ${moved(m.delta)}  → ${figures(m.after)}  v${m.version}${m.deleted ? ' deleted' : ''}  ${why}`);
    }
    out.push(r.current ? `  now: ${figures(r.current)} (version ${r.current.version})` : '  now: no row');
    const off = MOVEMENT_BUCKETS.filter((b) => r.unexplained[b] !== 0);
    out.push(off.length === 0 ? '  explained: baseline + movements = now' : `  NOT EXPLAINED: the ledger adds up to ${off.map((b) => `${LABEL[b]} ${signed(r.unexplained[b])}`).join(', ')} beside the row`);
  }
  return out.join('\n') + '\n';
}

export async function explain(config: Config, sku: string, location: string | undefined, json: boolean): Promise<number> {
  const pool = new pg.Pool({ connectionString: config.pg.url, max: 3, connectionTimeoutMillis: 3000 });
  try {
    const rows = await explainSku(pool, sku, location);
    if (json) process.stdout.write(`${JSON.stringify({ sku, rows })}\n`);
    else if (rows.length === 0) process.stdout.write(`no movements, baseline or row for ${sku}${location ? ` @ ${location}` : ''}\n`);
    else process.stdout.write(formatExplanation(rows));
    return rows.every((r) => MOVEMENT_BUCKETS.every((b) => r.unexplained[b] === 0)) ? 0 : 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

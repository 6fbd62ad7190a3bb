/** Reads SKU states from the Redis views (for snapshots and HTTP reads). */
import type { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { summarize, type SkuSummary } from '../../stream-processors/domain/fold.ts';
import type { SkuState } from '../domain/protocol.ts';

/** Summaries of the SKUs that have a view; the others are listed as unknown. */
export async function readSummaries(views: RedisViews, skus: string[]): Promise<{ summaries: SkuSummary[]; unknown: string[] }> {
  const rows = await views.readRows(skus);
  const summaries: SkuSummary[] = [];
  const unknown: string[] = [];
  for (const sku of skus) {
    const r = rows.get(sku);
    if (r) summaries.push(summarize(sku, r));
    else unknown.push(sku);
  }
  return { summaries, unknown };
}

/** The WebSocket form: locations serialised once, to be forwarded as text. */
export function toState(s: SkuSummary): SkuState {
  return {
    sku: s.sku,
    available: s.available,
    onHand: s.onHand,
    reserved: s.reserved,
    safetyStock: s.safetyStock,
    version: s.version,
    deleted: s.deleted,
    commitTs: s.commitTs,
    locationsJson: JSON.stringify(s.locations),
  };
}

export async function readStates(views: RedisViews, skus: string[]): Promise<{ states: SkuState[]; unknown: string[] }> {
  const { summaries, unknown } = await readSummaries(views, skus);
  return { states: summaries.map(toState), unknown };
}

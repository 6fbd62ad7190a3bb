/**
 * `npm run simulate -- erp`: an ERP — fewer, larger documents: goods receipts and inventory
 * counts, and now and then a bulk correction (a run of counts at one location under one
 * reference), as adjustments on `stock.adjustments`.
 */
import type { Config } from '../../../lib/config.ts';
import type { StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { newAdjustment, pickLocation, pickSku, produceAdjustments, type AdjustmentRun } from './adjustments.ts';
import { weighted, type RunOptions } from './common.ts';

/** One ERP document: a goods receipt, an inventory count, or a bulk correction (many counts). */
function erpDocument(o: RunOptions, run: AdjustmentRun): StockAdjustment[] {
  const m = run.model;
  run.docs++;
  const doc = `${String(run.docs).padStart(6, '0')}`;
  const kind = weighted(run.rng, { receipt: 60, count: 35, correction: 5 });
  const s = pickSku(run, o.skus);
  const l = pickLocation(run, o.locations);
  if (kind === 'receipt') {
    const q = 24 * (1 + Math.floor(run.rng() * 20));
    m.add(s, l, q);
    return [newAdjustment(o, run, s, l, 'RECEIPT', q, `ERP-GR-${run.runId}-${doc}`)];
  }
  if (kind === 'count') {
    const here = m.get(s, l);
    const figure = Math.max(here.reserved, here.onHand + Math.floor(run.rng() * 11) - 5);
    m.set(s, l, figure);
    return [newAdjustment(o, run, s, l, 'COUNT', figure, `ERP-INV-${run.runId}-${doc}`)];
  }
  // A bulk correction: a run of consecutive SKUs recounted at one location under one reference.
  const size = Math.min(o.skus, 20 + Math.floor(run.rng() * 81));
  const first = 1 + Math.floor(run.rng() * (o.skus - size + 1));
  const reference = `ERP-CORR-${run.runId}-${doc}`;
  return Array.from({ length: size }, (_, i) => {
    const here = m.get(first + i, l);
    const figure = Math.max(here.reserved, here.onHand + Math.floor(run.rng() * 7) - 3);
    m.set(first + i, l, figure);
    return newAdjustment(o, run, first + i, l, 'COUNT', figure, reference);
  });
}

export function erp(o: RunOptions, config: Config): Promise<number> {
  return produceAdjustments('erp', o, config, (due, run) => Array.from({ length: due }, () => erpDocument(o, run)).flat());
}

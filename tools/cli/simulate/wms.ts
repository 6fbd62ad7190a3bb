/**
 * `npm run simulate -- wms`: a warehouse system — receipts, picks, counts, transfers, returns and
 * damage as adjustments on `stock.adjustments`, over the seeded catalog SKU-000001... x WH-1...;
 * popular SKUs move more.
 */
import type { Config } from '../../../lib/config.ts';
import type { AdjustmentKind, StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { newAdjustment, pickLocation, pickSku, produceAdjustments, type AdjustmentRun } from './adjustments.ts';
import { weighted, type RunOptions } from './common.ts';

const CASE_SIZES = [6, 12, 24, 48];

/** One warehouse event, kept consistent with the model (no pick beyond what is there). */
function wmsEvent(o: RunOptions, run: AdjustmentRun): StockAdjustment {
  const m = run.model;
  const s = pickSku(run, o.skus);
  const l = pickLocation(run, o.locations);
  const here = m.get(s, l);
  const ref = (prefix: string) => `${prefix}-${String(10_000 + Math.floor(run.rng() * 90_000))}`;
  let kind = weighted(run.rng, { PICK: 40, RECEIPT: 20, COUNT: 12, TRANSFER: 10, RETURN: 10, DAMAGE: 8 } as Record<AdjustmentKind, number>);
  if ((kind === 'PICK' || kind === 'DAMAGE') && here.sellable < 1) kind = 'RECEIPT';
  if (kind === 'TRANSFER' && (o.locations < 2 || here.sellable < 2)) kind = 'RECEIPT';
  switch (kind) {
    case 'PICK': {
      const q = 1 + Math.floor(run.rng() * Math.min(4, here.sellable));
      m.add(s, l, -q);
      return newAdjustment(o, run, s, l, 'PICK', q, ref('SO'));
    }
    case 'DAMAGE':
      m.add(s, l, -1);
      return newAdjustment(o, run, s, l, 'DAMAGE', 1, ref('DMG'));
    case 'RETURN': {
      const q = 1 + Math.floor(run.rng() * 2);
      m.add(s, l, q);
      return newAdjustment(o, run, s, l, 'RETURN', q, ref('RMA'));
    }
    case 'COUNT': {
      const discrepancy = [-2, -1, 0, 0, 0, 1][Math.floor(run.rng() * 6)]!;
      const figure = Math.max(here.reserved, here.onHand + discrepancy);
      m.set(s, l, figure);
      return newAdjustment(o, run, s, l, 'COUNT', figure, ref('CC'));
    }
    case 'TRANSFER': {
      const to = ((l + Math.floor(run.rng() * (o.locations - 1))) % o.locations) + 1;
      const q = 1 + Math.floor(run.rng() * Math.min(10, here.sellable - 1));
      m.add(s, l, -q);
      m.add(s, to, q);
      return newAdjustment(o, run, s, l, 'TRANSFER', q, ref('TR'), to);
    }
    default: {
      const q = CASE_SIZES[Math.floor(run.rng() * CASE_SIZES.length)]!;
      m.add(s, l, q);
      return newAdjustment(o, run, s, l, 'RECEIPT', q, ref('PO'));
    }
  }
}

export function wms(o: RunOptions, config: Config): Promise<number> {
  return produceAdjustments('wms', o, config, (due, run) => Array.from({ length: due }, () => wmsEvent(o, run)));
}

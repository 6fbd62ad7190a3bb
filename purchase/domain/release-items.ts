/** What an order gives back to the customer's per-SKU limit count. Pure. */
import type { GateItem } from './ports.ts';

/** An order's units per SKU (a SKU may appear on several lines). */
export function releaseItems(lines: Array<{ sku: string; qty: number }>): GateItem[] {
  const per = new Map<string, number>();
  for (const l of lines) per.set(l.sku, (per.get(l.sku) ?? 0) + l.qty);
  return [...per].map(([sku, qty]) => ({ sku, qty }));
}

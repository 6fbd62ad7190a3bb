/**
 * The rules of a hold's lifecycle after it was placed (docs/purchase-path.md, "Hold lifecycle"):
 * how far an extend moves the expiry, what a change of quantities asks of the gate and of
 * Postgres, and the request bodies (the port the Postgres side implements is in ports.ts).
 * Pure: no I/O.
 */
import { z } from 'zod';
import { toValidation, type Validation } from '../../lib/validation.ts';
import type { ExtendPlan, GateItem, LineChange, OrderLine } from './ports.ts';
import { MAX_ITEMS, MAX_QTY, skuSchema } from './request.ts';

export type { ExtendPlan, ExtendResult, HoldsPort, LineChange, ResizeResult } from './ports.ts';

/** One extend moves the expiry at most this far from now (the maximum lifetime bounds it further). */
export const MAX_EXTEND_S = 24 * 3600;

const wholeNumber = { message: 'must be a whole number' };

/** `POST /v1/orders/:id/extend`: `{"seconds": n}`, how much longer from now. */
export const extendSchema = z.strictObject({
  seconds: z.number(wholeNumber).int(wholeNumber.message).min(1, 'must be at least 1').max(MAX_EXTEND_S, `must be at most ${MAX_EXTEND_S}`),
});

/** `PATCH /v1/orders/:id`: the target quantity of lines of the hold (0 removes a line). */
export const changeSchema = z.strictObject({
  items: z
    .array(
      z.strictObject({
        sku: skuSchema,
        qty: z.number(wholeNumber).int(wholeNumber.message).min(0, 'must be at least 0').max(MAX_QTY, `must be at most ${MAX_QTY}`),
      }),
    )
    .min(1, 'must list at least one item')
    .max(MAX_ITEMS, `must list at most ${MAX_ITEMS} items`)
    .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, 'must not list a SKU twice'),
});

export type ExtendBody = z.infer<typeof extendSchema>;
export type ChangeBody = z.infer<typeof changeSchema>;

export function validateExtend(body: unknown): Validation<ExtendBody> {
  return toValidation(extendSchema.safeParse(body));
}

export function validateChange(body: unknown): Validation<ChangeBody> {
  return toValidation(changeSchema.safeParse(body));
}

/**
 * Where an extend puts the expiry: now + seconds, clamped to creation + the maximum lifetime, and
 * never earlier than it already is. All times in ms, from one clock (Postgres').
 */
export function planExtend(a: { nowMs: number; createdAtMs: number; expiresAtMs: number; seconds: number; maxLifetimeMs: number }): ExtendPlan {
  const maxExpiresAtMs = a.createdAtMs + a.maxLifetimeMs;
  const wanted = a.nowMs + a.seconds * 1000;
  const target = Math.min(wanted, maxExpiresAtMs);
  if (target > a.expiresAtMs) return { kind: 'extend', expiresAtMs: target, clamped: target < wanted };
  return wanted > maxExpiresAtMs ? { kind: 'at_limit', maxExpiresAtMs } : { kind: 'unchanged' };
}

export type ChangePlan =
  | { ok: true; lines: LineChange[]; increases: GateItem[]; decreases: GateItem[] }
  | { ok: false; field: string; message: string };

/**
 * What a change asks for, from the order's lines and the requested quantities: only lines of the
 * hold (a new SKU is a new purchase; qty 0 of a SKU the hold no longer has is already true), and
 * never every line at 0 (that is a cancel). Lines asked at their current quantity are left out; no
 * line left means nothing to do.
 */
export function planChange(lines: readonly Pick<OrderLine, 'sku' | 'qty'>[], items: readonly GateItem[]): ChangePlan {
  const current = new Map(lines.map((l) => [l.sku, l.qty]));
  const changes: LineChange[] = [];
  for (const [i, item] of items.entries()) {
    const from = current.get(item.sku);
    // A line at 0 is no line: asking 0 of a removed line is that removal's retry, nothing to do.
    if (from === undefined && item.qty === 0) continue;
    if (from === undefined) return { ok: false, field: `items[${i}].sku`, message: `the hold has no line for SKU ${item.sku}; buy it with POST /v1/purchases` };
    if (from !== item.qty) changes.push({ sku: item.sku, from, to: item.qty });
  }
  const after = new Map(current);
  for (const c of changes) after.set(c.sku, c.to);
  if ([...after.values()].every((q) => q === 0)) return { ok: false, field: 'items', message: 'a change must leave at least one unit on the hold; cancel it instead' };
  return {
    ok: true,
    lines: changes,
    increases: changes.filter((c) => c.to > c.from).map((c) => ({ sku: c.sku, qty: c.to - c.from })),
    decreases: changes.filter((c) => c.to < c.from).map((c) => ({ sku: c.sku, qty: c.from - c.to })),
  };
}

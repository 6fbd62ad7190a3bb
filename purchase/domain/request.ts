/**
 * Purchase requests: validation (strict: unknown fields are refused) and the canonical hash an
 * Idempotency-Key is bound to. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { toValidation, type Validation } from '../../lib/validation.ts';

export const MAX_ITEMS = 20;
export const MAX_QTY = 1000;

const sku = z.string().min(1, 'must be 1 to 128 characters').max(128, 'must be 1 to 128 characters');

export const purchaseSchema = z.strictObject({
  customerId: z.string().min(1, 'must be 1 to 128 characters').max(128, 'must be 1 to 128 characters'),
  items: z
    .array(
      z.strictObject({
        sku,
        qty: z
          .number({ message: 'must be a whole number' })
          .int('must be a whole number')
          .min(1, 'must be at least 1')
          .max(MAX_QTY, `must be at most ${MAX_QTY}`),
      }),
    )
    .min(1, 'must list at least one item')
    .max(MAX_ITEMS, `must list at most ${MAX_ITEMS} items`)
    .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, 'must not list a SKU twice'),
});

export type PurchaseRequest = z.infer<typeof purchaseSchema>;

/** Validates a parsed JSON body; the error names the first offending field (`items[0].qty`). */
export function validatePurchase(body: unknown): Validation<PurchaseRequest> {
  return toValidation(purchaseSchema.safeParse(body));
}

const KEY_RE = /^[\x21-\x7e]{1,128}$/;

/** Idempotency keys: 1 to 128 printable ASCII characters, no spaces. */
export function validIdempotencyKey(key: string | undefined): key is string {
  return key !== undefined && KEY_RE.test(key);
}

/** Hash of the request's meaning: items in SKU order, so reordering items is the same request. */
export function requestHash(req: PurchaseRequest): string {
  const items = [...req.items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)).map((i) => [i.sku, i.qty]);
  return createHash('sha256').update(JSON.stringify([req.customerId, items])).digest('base64url').slice(0, 32);
}

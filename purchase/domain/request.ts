/**
 * Purchase requests: validation (strict: unknown fields are refused) and the canonical hash an
 * Idempotency-Key is bound to. Pure: no I/O.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { CHANNEL_ID } from '../../lib/contracts/channels.ts';
import type { KitLine } from '../../lib/contracts/kits.ts';
import { toValidation, type Validation } from '../../lib/validation.ts';

export const MAX_ITEMS = 20;
export const MAX_QTY = 1000;

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** Why a customer id is not acceptable (1 to 128 characters, no control characters), or undefined. */
export function customerIdProblem(id: string): string | undefined {
  if (id.length < 1 || id.length > 128) return 'must be 1 to 128 characters';
  if (CONTROL_RE.test(id)) return 'must not contain control characters';
  return undefined;
}

const noControl = (s: string) => !CONTROL_RE.test(s);
/** A SKU in a request body (purchases, hold changes). */
export const skuSchema = z.string().min(1, 'must be 1 to 128 characters').max(128, 'must be 1 to 128 characters').refine(noControl, 'must not contain control characters');

/**
 * The body. `customerId` is only honoured for a service credential with `purchase:act-for` (the
 * customer it acts for) or in the development anonymous mode; a customer's id comes from its token.
 */
export const purchaseSchema = z.strictObject({
  customerId: z.string().min(1, 'must be 1 to 128 characters').max(128, 'must be 1 to 128 characters').refine(noControl, 'must not contain control characters').optional(),
  items: z
    .array(
      z.strictObject({
        sku: skuSchema,
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
  /** The sales channel to sell on; the credential must allow it (docs/channels.md). */
  channel: z.string().regex(CHANNEL_ID, 'must be a sales channel id (a-z, 0-9, _ . -, at most 64)').optional(),
});

export type PurchaseBody = z.infer<typeof purchaseSchema>;
/** A purchase with its customer resolved from the credential. */
export interface PurchaseRequest {
  customerId: string;
  items: PurchaseBody['items'];
  /** The sales channel resolved from the credential (and the body); null or absent: the pooled figure. */
  channel?: string | null;
  /**
   * The kit lines the customer asked for (docs/kits.md); `items` are then the expanded components
   * (expandKits in lib/contracts/kits.ts), which the gate and the write-back reserve.
   */
  kits?: KitLine[];
}

/** Validates a parsed JSON body; the error names the first offending field (`items[0].qty`). */
export function validatePurchase(body: unknown): Validation<PurchaseBody> {
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
  // A channel is part of the request's meaning; without one the hash is what it always was.
  const meaning: unknown[] = req.channel ? [req.customerId, items, req.channel] : [req.customerId, items];
  // Kits too (what was asked, not only its components); without kits the hash is what it always was.
  if (req.kits && req.kits.length > 0) meaning.push(['kits', [...req.kits].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)).map((k) => [k.sku, k.qty])]);
  return hash('sha256', JSON.stringify(meaning), 'base64url').slice(0, 32);
}

/**
 * An inbound stock adjustment (Avro `StockAdjustment`, schemas/avro/StockAdjustment.avsc):
 * validation, its effect on the on-hand figures of one or two locations, and the hash that binds
 * an adjustment id to one payload. The same rules serve `stock.adjustments` and
 * `POST /v1/adjustments`. Pure: no I/O.
 *
 * Semantics (docs/connectors.md): `quantity` is a positive number of units for RECEIPT and
 * RETURN (on hand rises), PICK and DAMAGE (on hand falls) and TRANSFER (units leave
 * `locationId` and arrive at `toLocationId`); for COUNT it is the absolute counted figure (0 or
 * more). The direction comes from the kind, never from a sign.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { toValidation, type Validation } from '../../../lib/validation.ts';
import { ADJUSTMENT_KIND_SYMBOLS, type AdjustmentKind, type StockAdjustment } from '../../../schemas/generated/avro-types.ts';

/** Largest on-hand figure (and quantity): Postgres `int` and Avro `int`. */
export const MAX_UNITS = 2_147_483_647;

/** How each kind changes on hand: `+` adds, `-` subtracts, `=` sets, `move` subtracts at the source and adds at the target. */
export const KIND_EFFECT: Readonly<Record<AdjustmentKind, '+' | '-' | '=' | 'move'>> = {
  RECEIPT: '+',
  RETURN: '+',
  PICK: '-',
  DAMAGE: '-',
  COUNT: '=',
  TRANSFER: 'move',
};

const text = (max: number) =>
  z
    .string({ message: `must be a string of 1 to ${max} characters` })
    .min(1, `must be 1 to ${max} characters`)
    .max(max, `must be 1 to ${max} characters`)
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

const fields = {
  adjustmentId: text(128),
  sku: text(128),
  locationId: text(64),
  kind: z.enum(ADJUSTMENT_KIND_SYMBOLS, { message: `must be one of ${ADJUSTMENT_KIND_SYMBOLS.join(', ')}` }),
  quantity: z
    .number({ message: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .max(MAX_UNITS, `must be at most ${MAX_UNITS}`),
  toLocationId: text(64).nullable().default(null),
  occurredAt: z
    .number({ message: 'must be a whole number of milliseconds since the epoch' })
    .int('must be a whole number of milliseconds since the epoch')
    .min(0, 'must be 0 or more')
    .max(Number.MAX_SAFE_INTEGER, 'is too large'),
  sourceSystem: text(128),
  // Free text, but never NUL: Postgres text cannot hold it, and the row could never be written.
  reference: z
    .string({ message: 'must be a string or null' })
    .max(256, 'must be at most 256 characters')
    .regex(/^[^\u0000]*$/, 'must not contain NUL characters')
    .nullable()
    .default(null),
  // Compare-and-set (docs/connectors.md#compare-and-set): null (or absent) means no check.
  expectedOnHand: z
    .number({ message: 'must be a whole number of units or null' })
    .int('must be a whole number of units or null')
    .min(0, 'must be 0 or more')
    .max(MAX_UNITS, `must be at most ${MAX_UNITS}`)
    .nullable()
    .default(null),
  // A stock_levels version (Postgres bigint from one sequence); Avro long decodes to a JS number,
  // so past 2^53 it could not be compared exactly anyway.
  expectedVersion: z
    .number({ message: 'must be a whole number or null' })
    .int('must be a whole number or null')
    .min(0, 'must be 0 or more')
    .max(Number.MAX_SAFE_INTEGER, 'is too large')
    .nullable()
    .default(null),
  // A dated COUNT (docs/ledger.md#dated-counts): when the units were counted; null: as of now.
  countedAt: z
    .number({ message: 'must be a whole number of milliseconds since the epoch or null' })
    .int('must be a whole number of milliseconds since the epoch or null')
    .min(0, 'must be 0 or more')
    .max(Number.MAX_SAFE_INTEGER, 'is too large')
    .nullable()
    .default(null),
};

function crossFieldRules(a: StockAdjustment, ctx: z.RefinementCtx): void {
  if (a.kind !== 'COUNT' && a.quantity < 1) {
    ctx.addIssue({ code: 'custom', path: ['quantity'], message: `must be at least 1 for ${a.kind} (the kind gives the direction; only COUNT takes 0)` });
  }
  if (a.countedAt !== null && a.kind !== 'COUNT') {
    ctx.addIssue({ code: 'custom', path: ['countedAt'], message: `must be null for ${a.kind} (only a COUNT is dated)` });
  }
  if (a.kind === 'TRANSFER') {
    if (a.toLocationId === null) ctx.addIssue({ code: 'custom', path: ['toLocationId'], message: 'is required for TRANSFER' });
    else if (a.toLocationId === a.locationId) ctx.addIssue({ code: 'custom', path: ['toLocationId'], message: 'must differ from locationId' });
  } else if (a.toLocationId !== null) {
    ctx.addIssue({ code: 'custom', path: ['toLocationId'], message: `must be null for ${a.kind} (only TRANSFER has a target)` });
  }
}

/** HTTP bodies: unknown fields are refused (like the purchase path). */
const strictSchema = z.strictObject(fields).superRefine(crossFieldRules);
/**
 * Decoded Avro records: they were read through the consumer's reader schema, so they carry only
 * fields it knows, plus (under a newer reader schema) optional fields this code does not use yet.
 */
const recordSchema = z.object(fields).superRefine(crossFieldRules);

// The validated shape is the generated Avro type, both ways: a schema change that the rules above
// do not follow fails to compile here.
type Validated = z.output<typeof strictSchema>;
const sameShape: [Validated, StockAdjustment] extends [StockAdjustment, Validated] ? true : never = true;
void sameShape;

export type { Validation };

/**
 * Validates an adjustment; the error names the first offending field. `strict` (HTTP bodies)
 * refuses unknown fields; records decoded from Avro may carry optional fields added to the
 * schema later, which are ignored.
 */
export function validateAdjustment(input: unknown, { strict }: { strict: boolean }): Validation<StockAdjustment> {
  return toValidation((strict ? strictSchema : recordSchema).safeParse(input));
}

/**
 * The payload an adjustment id is bound to: every field of the adjustment (schema version 1), in a
 * fixed order. The same id with another hash is an `adjustment_id_conflict`. Fields added to the
 * schema later are not part of it, so an old and a new producer sending the same adjustment agree.
 * That includes the compare-and-set expectations: they are a condition on applying, not part of
 * what is applied, so a redelivered adjustment that applied is a duplicate whatever it expected.
 */
export function adjustmentHash(a: StockAdjustment): string {
  const canonical: unknown[] = [a.adjustmentId, a.sku, a.locationId, a.kind, a.quantity, a.toLocationId, a.occurredAt, a.sourceSystem, a.reference];
  // A dated count applies another figure than the same count undated: part of the payload, but
  // only when set, so every adjustment without it keeps the hash it always had.
  if (a.countedAt !== null && a.countedAt !== undefined) canonical.push({ countedAt: a.countedAt });
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 32);
}

/** The locations an adjustment touches: one, or two for a TRANSFER (source first). */
export function locationsOf(a: StockAdjustment): string[] {
  return a.kind === 'TRANSFER' && a.toLocationId !== null ? [a.locationId, a.toLocationId] : [a.locationId];
}

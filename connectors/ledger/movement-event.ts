/**
 * What the movement relay needs from a Debezium change event of `public.stock_levels` (JSON, no
 * embedded schema): the row and the version whose movement to publish (docs/ledger.md), and a
 * ledger movement as the Avro StockMovement of `stock.movements`. Pure: no I/O.
 *
 * Creates, updates and snapshot reads name the row after the change (`after`); a delete names the
 * row it removed (`before`, REPLICA IDENTITY FULL) and its version, which is the version its
 * movement carries. Tombstones and events of other kinds carry no movement (null). Anything that
 * does not have that shape is refused with a SchemaError (dead-lettered).
 */
import { z } from 'zod';
import { SchemaError } from '../../lib/errors.ts';
import type { Movement } from '../../lib/contracts/movements.ts';
import type { StockMovement } from '../../schemas/generated/avro-types.ts';

export interface MovementKey {
  sku: string;
  locationId: string;
  version: number;
}

const image = z.object({
  sku: z.string().min(1),
  location_id: z.string().min(1),
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
const envelope = z.object({ op: z.enum(['c', 'r', 'u', 'd', 't', 'm']), before: z.unknown().nullable().optional(), after: z.unknown().nullable().optional() });

/** The movement a stock_levels change event stands for, or null when it stands for none. */
export function movementKeyFromCdc(value: Buffer | null): MovementKey | null {
  if (value === null || value.length === 0) return null;
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    throw new SchemaError('stock_levels change event is not JSON');
  }
  const env = envelope.safeParse(json);
  if (!env.success) throw new SchemaError(`stock_levels change event has no valid op: ${env.error.issues[0]?.message ?? 'invalid'}`);
  const { op } = env.data;
  if (op === 't' || op === 'm') return null;
  const side = op === 'd' ? 'before' : 'after';
  const row = image.safeParse(env.data[side]);
  if (!row.success) {
    const issue = row.error.issues[0];
    throw new SchemaError(`stock_levels change event: ${side}.${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'}`);
  }
  return { sku: row.data.sku, locationId: row.data.location_id, version: row.data.version };
}

/** A ledger movement as the Avro record of `stock.movements`. */
export function toStockMovement(m: Movement): StockMovement {
  return {
    movementId: m.movementId,
    sku: m.sku,
    locationId: m.locationId,
    kind: m.kind,
    reason: m.reason,
    sourceSystem: m.sourceSystem,
    reference: m.reference,
    actor: m.actor,
    details: m.details === null ? null : JSON.stringify(m.details),
    onHandDelta: m.delta.onHand,
    reservedDelta: m.delta.reserved,
    safetyStockDelta: m.delta.safetyStock,
    incomingDelta: m.delta.incoming,
    backorderedDelta: m.delta.backordered,
    onHand: m.after.onHand,
    reserved: m.after.reserved,
    safetyStock: m.after.safetyStock,
    incoming: m.after.incoming,
    backordered: m.after.backordered,
    version: m.version,
    deleted: m.deleted,
    recordedAt: m.recordedAt,
    effectiveAt: m.effectiveAt,
  };
}

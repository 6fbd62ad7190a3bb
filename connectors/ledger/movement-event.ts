/**
 * A Debezium change event of `public.stock_movements` (JSON, no embedded schema) as the Avro
 * StockMovement it publishes on `stock.movements` (docs/ledger.md). Pure: no I/O.
 *
 * The ledger is append-only: creates (`c`) and snapshot reads (`r`, an incremental snapshot after
 * a lost replication slot) are movements; deletes (`d`, housekeeping pruning) and tombstones are
 * not, and decode to null. Anything else that does not have a movement's shape is refused with a
 * SchemaError (dead-lettered).
 */
import { z } from 'zod';
import { SchemaError } from '../../lib/errors.ts';
import type { StockMovement } from '../../schemas/generated/avro-types.ts';

const int = z.number().int().min(-2_147_483_648).max(2_147_483_647);
const long = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
/** timestamptz as Debezium writes it (ISO 8601 string); a number is taken as epoch ms. */
const instant = z.union([z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO 8601 time'), long]);

const row = z.object({
  movement_id: long,
  sku: z.string().min(1),
  location_id: z.string().min(1),
  kind: z.string().min(1),
  reason: z.string().nullable().optional(),
  source_system: z.string().nullable().optional(),
  reference: z.string().nullable().optional(),
  actor: z.string().nullable().optional(),
  // io.debezium.data.Json: the JSON text
  details: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().optional(),
  on_hand_delta: int,
  reserved_delta: int,
  safety_stock_delta: int,
  incoming_delta: int.optional().default(0),
  backordered_delta: int.optional().default(0),
  on_hand: int,
  reserved: int,
  safety_stock: int,
  incoming: int.optional().default(0),
  backordered: int.optional().default(0),
  version: long,
  deleted: z.boolean().optional().default(false),
  recorded_at: instant,
  effective_at: instant,
});

const envelope = z.object({ op: z.enum(['c', 'r', 'u', 'd', 't', 'm']), after: z.unknown().nullable().optional() });

function epochMs(v: string | number): number {
  return typeof v === 'number' ? v : Date.parse(v);
}

/** The movement a change event carries, or null when it carries none (see above). */
export function movementFromCdc(value: Buffer | null): StockMovement | null {
  if (value === null || value.length === 0) return null;
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    throw new SchemaError('stock_movements change event is not JSON');
  }
  const env = envelope.safeParse(json);
  if (!env.success) throw new SchemaError(`stock_movements change event has no valid op: ${env.error.issues[0]?.message ?? 'invalid'}`);
  if (env.data.op !== 'c' && env.data.op !== 'r') return null;
  const r = row.safeParse(env.data.after);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SchemaError(`stock_movements change event: ${issue?.path.join('.') || 'after'}: ${issue?.message ?? 'invalid'}`);
  }
  const m = r.data;
  return {
    movementId: m.movement_id,
    sku: m.sku,
    locationId: m.location_id,
    kind: m.kind,
    reason: m.reason ?? null,
    sourceSystem: m.source_system ?? null,
    reference: m.reference ?? null,
    actor: m.actor ?? null,
    details: m.details === null || m.details === undefined ? null : typeof m.details === 'string' ? m.details : JSON.stringify(m.details),
    onHandDelta: m.on_hand_delta,
    reservedDelta: m.reserved_delta,
    safetyStockDelta: m.safety_stock_delta,
    incomingDelta: m.incoming_delta,
    backorderedDelta: m.backordered_delta,
    onHand: m.on_hand,
    reserved: m.reserved,
    safetyStock: m.safety_stock,
    incoming: m.incoming,
    backordered: m.backordered,
    version: m.version,
    deleted: m.deleted,
    recordedAt: epochMs(m.recorded_at),
    effectiveAt: epochMs(m.effective_at),
  };
}

/**
 * Messages for the CDC topic the stock processor reads (`cdc.public.stock_levels`, Debezium JSON
 * without schema): well-formed change events for the run's SKUs, and poison — bytes that are not
 * JSON, JSON that is not a change event, and mutations of real events (wrong op, missing
 * `source.ts_ms`, another table, a delete without its version, non-integer or overflowing
 * quantities, oversized values). Every key carries the run id, so the dead letters of this run can
 * be counted by key.
 */
import { movementKeyFromCdc } from '../../connectors/ledger/movement-event.ts';
import { decodeStockChange } from '../../stream-processors/domain/stock-change.ts';
import { caseRng, mutateJson, randomJson, type Rng } from './rng.ts';

export interface CdcCase {
  index: number;
  label: string;
  key: Buffer;
  value: Buffer | null;
  /** What the processor must do with it, by the decoder's rules: dead-letter it, apply it, or skip it (a tombstone). */
  expect: 'dlq' | 'apply' | 'skip';
  /** What the movement relay (same topic, its own group) must do with it, by its decoder's rules. */
  relayExpect: 'dlq' | 'read';
}

/** The movement relay's verdict on a value: dead-letter what its decoder refuses; read the movement of the rest. */
function relayVerdict(value: Buffer | null): 'dlq' | 'read' {
  try {
    movementKeyFromCdc(value);
    return 'read';
  } catch {
    return 'dlq';
  }
}

export function cdcEvent(r: Rng, sku: string, locationId: string, version: number, op: 'c' | 'u' | 'd' | 'r' = 'u'): Record<string, unknown> {
  const row: Record<string, unknown> = { sku, location_id: locationId, on_hand: r.int(0, 1000), reserved: r.int(0, 10), safety_stock: r.int(0, 5), version, updated_at: new Date().toISOString() };
  // Rows since migration 0018 carry the incoming figures (docs/incoming.md); older events do not.
  if (r.bool(0.6)) {
    Object.assign(row, {
      incoming: r.int(0, 100),
      backordered: r.int(0, 10),
      next_eta: r.bool(0.5) ? null : new Date(Date.now() + r.int(0, 1e9)).toISOString(),
      backorder_policy: r.pick(['none', 'backorder', 'preorder']),
      backorder_limit: r.bool(0.5) ? null : r.int(0, 50),
    });
  }
  const ts = Date.now();
  return {
    before: op === 'd' ? row : null,
    after: op === 'd' ? null : row,
    source: { version: '3.0.8.Final', connector: 'postgresql', name: 'cdc', ts_ms: ts, snapshot: 'false', db: 'inventory', schema: 'public', table: 'stock_levels', txId: 1, lsn: 1 },
    op,
    ts_ms: ts + 1,
  };
}

export function cdcCase(seed: number, index: number, ctx: { id: string; skus: string[]; locations: string[]; version: () => number }): CdcCase {
  const r = caseRng(seed, index);
  const sku = r.pick(ctx.skus);
  const loc = r.pick(ctx.locations);
  const key = Buffer.from(JSON.stringify({ sku }));
  const valid = () => cdcEvent(r, sku, loc, ctx.version(), r.pick(['c', 'u', 'u', 'r', 'd']));
  const built = r.weighted<() => { label: string; value: Buffer | null; key?: Buffer }>([
    [4, () => ({ label: 'valid event', value: Buffer.from(JSON.stringify(valid())) })],
    [4, () => ({ label: 'mutated event', value: Buffer.from(JSON.stringify(mutateJson(r, mutateJson(r, valid()))) ?? 'null') })],
    [1, () => ({ label: 'random bytes', value: r.bytes(r.size(2000)) })],
    [1, () => ({ label: 'random JSON', value: Buffer.from(JSON.stringify(randomJson(r)) ?? 'null') })],
    [1, () => ({ label: 'JSON but not an event', value: Buffer.from(r.pick(['null', '[]', '1', '"x"', 'true', '{}', '{"op":"u"}', '{"op":"t","source":{"ts_ms":1}}'])) })],
    [1, () => ({ label: 'truncated event', value: Buffer.from(JSON.stringify(valid()).slice(0, r.int(1, 200))) })],
    [1, () => {
      const e = valid() as { after: Record<string, unknown> | null; before: Record<string, unknown> | null };
      const row = (e.after ?? e.before)!;
      const field = r.pick(['on_hand', 'reserved', 'safety_stock', 'version', 'incoming', 'backordered', 'backorder_limit', 'next_eta', 'backorder_policy']);
      row[field] = r.pick<unknown>([-1, 1.5, '7', null, 2 ** 31, 2 ** 53, 1e308, -(2 ** 31) - 1, 'soon', '1970-01-01T00:00:00Z', 'preorder', 'always', 2 ** 31 - 1]);
      return { label: `${field}=${JSON.stringify(row[field])}`, value: Buffer.from(JSON.stringify(e)) };
    }],
    [1, () => {
      const e = valid() as { source: Record<string, unknown> };
      e.source.table = r.pick(['orders', 'outbox', '', 'stock_levels ']);
      return { label: `table ${JSON.stringify(e.source.table)}`, value: Buffer.from(JSON.stringify(e)) };
    }],
    [1, () => {
      const e = cdcEvent(r, sku, loc, ctx.version(), 'd') as { before: Record<string, unknown> };
      delete e.before.version;
      return { label: 'delete without version', value: Buffer.from(JSON.stringify(e)) };
    }],
    [1, () => ({ label: 'tombstone', value: null })],
    [1, () => ({ label: 'oversized value', value: Buffer.alloc(r.pick([100_000, 900_000]), 0x7b) })],
    [1, () => ({ label: 'garbage key', value: Buffer.from(JSON.stringify(valid())), key: Buffer.concat([r.bytes(r.size(40)), Buffer.from(ctx.id)]) })],
    [1, () => ({ label: 'invalid UTF-8 inside JSON', value: Buffer.concat([Buffer.from(JSON.stringify(valid()).slice(0, 30)), Buffer.from([0xff, 0xfe, 0xc0, 0x80]), Buffer.from('"}')]) })],
  ])();
  const k = built.key ?? key;
  const decoded = decodeStockChange(built.value?.toString('utf8') ?? null, k.toString('utf8'));
  const expect = !decoded.ok ? 'dlq' : 'change' in decoded ? 'apply' : 'skip';
  const preview = built.value === null ? 'null' : JSON.stringify(built.value.subarray(0, 200).toString('utf8'));
  return { index, label: `${built.label}: key=${JSON.stringify(k.toString('utf8').slice(0, 80))} value=${preview}${built.value && built.value.length > 200 ? `…(${built.value.length} bytes)` : ''}`, key: k, value: built.value, expect, relayExpect: relayVerdict(built.value) };
}

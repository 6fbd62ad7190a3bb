/**
 * Decodes a Debezium change event for `public.stock_levels` (JSON converter, no embedded schema)
 * into a typed `StockChange`. Pure: no Kafka, no I/O. Anything that is not a well-formed change
 * event yields a `DecodeFailure` with a reason, so the caller can dead-letter it.
 *
 * Event shape (Debezium PostgreSQL connector): { before, after, source: { ts_ms, lsn, txId,
 * snapshot, ... }, op: c|u|d|r|t, ts_ms }. A Kafka tombstone (null value) follows a delete.
 */
import { POLICY_CODE } from '../../lib/contracts/backorder.ts';

export type StockOp = 'create' | 'update' | 'delete' | 'snapshot';

export interface StockRow {
  sku: string;
  locationId: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
  version: number;
  updatedAt: string;
  /**
   * Incoming stock and backorders (migration 0018, docs/incoming.md). Events captured before the
   * columns existed lack them: zero, no ETA, policy none.
   */
  incoming: number;
  backordered: number;
  /** Earliest open ETA at this location, ms since the epoch; 0: none. */
  nextEta: number;
  /** POLICY_CODE of lib/contracts/backorder.ts. */
  policy: number;
  /** -1: none. */
  limit: number;
}

export interface StockChange {
  op: StockOp;
  sku: string;
  locationId: string;
  /** Row after the change; null for a delete. */
  row: StockRow | null;
  /** The row version: of the new image, or for a delete of the image it removes. */
  version: number;
  /** Postgres commit time (ms since epoch), from `source.ts_ms`. */
  commitTs: number;
  /** Time Debezium produced the event (ms since epoch). */
  capturedTs: number;
  lsn: number | null;
  txId: number | null;
}

export type DecodeResult =
  | { ok: true; change: StockChange }
  | { ok: true; tombstone: true; key: { sku: string; locationId?: string } | null }
  | { ok: false; reason: string };

const OPS: Record<string, StockOp> = { c: 'create', u: 'update', d: 'delete', r: 'snapshot' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** Largest quantity: stock_levels columns are Postgres `int` (with CHECK >= 0), and the Avro effects carry `int`. */
export const MAX_QUANTITY = 2_147_483_647;

/** A quantity as Postgres can hold it: a whole number in 0..MAX_QUANTITY. */
function quantity(v: unknown): number | undefined {
  const n = int(v);
  return n !== undefined && n >= 0 && n <= MAX_QUANTITY ? n : undefined;
}

function decodeRow(raw: unknown): StockRow | string {
  if (!isObject(raw)) return 'row is not an object';
  const { sku, location_id, on_hand, reserved, safety_stock, version, updated_at } = raw;
  if (typeof sku !== 'string' || sku === '') return 'sku missing';
  if (typeof location_id !== 'string' || location_id === '') return 'location_id missing';
  // Out of range can only be a forged or corrupted event; applied, it would make the Avro effects
  // unencodable and stop the partition (found by the fuzzer), so it is dead-lettered here.
  const onHand = quantity(on_hand);
  const res = quantity(reserved);
  const safety = quantity(safety_stock);
  const ver = int(version);
  if (onHand === undefined || res === undefined || safety === undefined) return `quantities must be whole numbers from 0 to ${MAX_QUANTITY}`;
  if (ver === undefined || ver < 0) return 'version must be a non-negative integer';
  const incoming = raw.incoming === undefined ? 0 : quantity(raw.incoming);
  const backordered = raw.backordered === undefined ? 0 : quantity(raw.backordered);
  if (incoming === undefined || backordered === undefined) return `incoming and backordered must be whole numbers from 0 to ${MAX_QUANTITY}`;
  // Debezium's JSON converter writes timestamptz as an ISO 8601 string (ZonedTimestamp).
  let nextEta = 0;
  if (raw.next_eta !== undefined && raw.next_eta !== null) {
    const ms = typeof raw.next_eta === 'string' ? Date.parse(raw.next_eta) : NaN;
    if (!Number.isFinite(ms) || ms <= 0) return 'next_eta must be an ISO 8601 timestamp';
    nextEta = ms;
  }
  const policyName = raw.backorder_policy ?? 'none';
  const policy = typeof policyName === 'string' && Object.hasOwn(POLICY_CODE, policyName) ? POLICY_CODE[policyName as keyof typeof POLICY_CODE] : undefined;
  if (policy === undefined) return 'backorder_policy must be none, backorder or preorder';
  const limit = raw.backorder_limit === undefined || raw.backorder_limit === null ? -1 : quantity(raw.backorder_limit);
  if (limit === undefined) return `backorder_limit must be a whole number from 0 to ${MAX_QUANTITY}`;
  return {
    sku,
    locationId: location_id,
    onHand,
    reserved: res,
    safetyStock: safety,
    version: ver,
    updatedAt: typeof updated_at === 'string' ? updated_at : '',
    incoming,
    backordered,
    nextEta,
    policy,
    limit,
  };
}

function decodeKey(key: string | null): { sku: string; locationId?: string } | null {
  if (!key) return null;
  try {
    const k = JSON.parse(key) as unknown;
    // The connector keys events by sku (message.key.columns); older keys also carry location_id.
    if (isObject(k) && typeof k.sku === 'string') {
      return typeof k.location_id === 'string' ? { sku: k.sku, locationId: k.location_id } : { sku: k.sku };
    }
  } catch {
    // fall through
  }
  return null;
}

/** `value` is the Kafka message value as text (null for a tombstone); `key` likewise. */
export function decodeStockChange(value: string | null, key: string | null = null): DecodeResult {
  if (value === null) return { ok: true, tombstone: true, key: decodeKey(key) };
  let event: unknown;
  try {
    event = JSON.parse(value);
  } catch {
    return { ok: false, reason: 'value is not JSON' };
  }
  if (!isObject(event)) return { ok: false, reason: 'event is not an object' };
  const op = typeof event.op === 'string' ? OPS[event.op] : undefined;
  if (!op) return { ok: false, reason: `unsupported op ${JSON.stringify(event.op)}` };
  const source = isObject(event.source) ? event.source : undefined;
  const commitTs = int(source?.ts_ms);
  if (commitTs === undefined) return { ok: false, reason: 'source.ts_ms missing' };
  if (source?.table !== undefined && source.table !== 'stock_levels') {
    return { ok: false, reason: `event is for table ${String(source.table)}, not stock_levels` };
  }
  const image = op === 'delete' ? event.before : event.after;
  let row: StockRow | null = null;
  let sku: string;
  let locationId: string;
  let version: number;
  if (op === 'delete') {
    // REPLICA IDENTITY FULL (migration 0004) puts the whole removed row, version included, in `before`.
    if (!isObject(image) || typeof image.sku !== 'string' || typeof image.location_id !== 'string') {
      return { ok: false, reason: 'delete without key columns in before' };
    }
    const v = int(image.version);
    if (v === undefined) return { ok: false, reason: 'delete without the removed row version (stock_levels needs REPLICA IDENTITY FULL)' };
    sku = image.sku;
    locationId = image.location_id;
    version = v;
  } else {
    const decoded = decodeRow(image);
    if (typeof decoded === 'string') return { ok: false, reason: `after: ${decoded}` };
    row = decoded;
    sku = decoded.sku;
    locationId = decoded.locationId;
    version = decoded.version;
  }
  return {
    ok: true,
    change: {
      op,
      sku,
      locationId,
      row,
      version,
      commitTs,
      capturedTs: int(event.ts_ms) ?? commitTs,
      lsn: int(source?.lsn) ?? null,
      txId: int(source?.txId) ?? null,
    },
  };
}

/** Sellable units: on hand minus reserved minus safety stock, never below zero. */
export function available(row: Pick<StockRow, 'onHand' | 'reserved' | 'safetyStock'>): number {
  return Math.max(0, row.onHand - row.reserved - row.safetyStock);
}

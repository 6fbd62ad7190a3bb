/**
 * The stock view as stored in Redis, shared by its writer (stream-processors, through
 * lua/apply-rows-4.lua) and its readers (the gateway, reconciliation): how a row is encoded in
 * the `<p>:{<sku>}:rows` hash, the (version, deleted) order of states, and how a SKU's rows add
 * up to the state every consumer sees, which is exactly the Avro `StockLevel` record (generated
 * type, never a hand copy). Pure: no Redis client.
 */
import type { IncomingLevel, LocationLevel, StockLevel } from '../../schemas/generated/avro-types.ts';
import { backorderAllowance, POLICY_CODE, policyFromCode } from './backorder.ts';

/**
 * The figures of incoming stock and backorders a row carries (migration 0018, docs/incoming.md).
 * Absent in rows written before them (and in deletions): zero, no ETA, policy none.
 */
export interface RowIncoming {
  /** Open expected units at this location. */
  incoming?: number;
  /** Units promised to orders against incoming, counted at this location. */
  backordered?: number;
  /** Earliest ETA of the open expected units (ms since the epoch); 0: none. */
  nextEta?: number;
  /** The SKU's policy (POLICY_CODE: 0 none, 1 backorder, 2 preorder), copied onto every row. */
  policy?: number;
  /** The SKU's backorder limit; -1: none. */
  limit?: number;
}

export interface RowState extends RowIncoming {
  onHand: number;
  reserved: number;
  safetyStock: number;
  version: number;
  deleted: boolean;
  commitTs: number;
}

/** A SKU's rows by location, as stored. */
export type SkuRows = Record<string, RowState>;

/**
 * A state's position in its history: version * 2, plus 1 for a delete (a delete carries the
 * version of the row it removes, so at equal version it supersedes the upsert).
 */
export function rank(version: number, deleted: boolean): number {
  return version * 2 + (deleted ? 1 : 0);
}

export function availableOf(r: { onHand: number; reserved: number; safetyStock: number }): number {
  return Math.max(0, r.onHand - r.reserved - r.safetyStock);
}

/** Totals over live locations. Per-location availability is summed (each location sells its own). */
export function summarize(sku: string, rows: SkuRows): StockLevel {
  let onHand = 0;
  let reserved = 0;
  let safetyStock = 0;
  let available = 0;
  let version = 0;
  let topRank = -1;
  let deleted = false;
  let commitTs = 0;
  const locations: LocationLevel[] = [];
  for (const locationId of Object.keys(rows).sort()) {
    const r = rows[locationId]!;
    const rk = rank(r.version, r.deleted);
    if (rk > topRank) {
      topRank = rk;
      deleted = r.deleted;
    }
    version = Math.max(version, r.version);
    commitTs = Math.max(commitTs, r.commitTs);
    if (r.deleted) continue;
    const a = availableOf(r);
    onHand += r.onHand;
    reserved += r.reserved;
    safetyStock += r.safetyStock;
    available += a;
    locations.push({ locationId, onHand: r.onHand, reserved: r.reserved, safetyStock: r.safetyStock, available: a, version: r.version });
  }
  // Field order matters: the HTTP API serialises this object as it is.
  return { sku, onHand, reserved, safetyStock, available, version, deleted, commitTs, locations, channels: null, incoming: incomingOf(rows) };
}

/**
 * The SKU's incoming stock and backorders over its live rows (the Lua twin is the summary step of
 * apply-rows-4.lua): null when nothing is expected, nothing is backordered and the policy is none,
 * so SKUs that never use the feature look exactly as before.
 */
export function incomingOf(rows: SkuRows): IncomingLevel | null {
  let incoming = 0;
  let backordered = 0;
  let nextEta = 0;
  let policy = 0;
  let limit = -1;
  for (const r of Object.values(rows)) {
    if (r.deleted) continue;
    incoming += r.incoming ?? 0;
    backordered += r.backordered ?? 0;
    const eta = r.nextEta ?? 0;
    if (eta > 0 && (nextEta === 0 || eta < nextEta)) nextEta = eta;
    policy = Math.max(policy, r.policy ?? 0);
    limit = Math.max(limit, r.limit ?? -1);
  }
  if (incoming === 0 && backordered === 0 && policy === POLICY_CODE.none) return null;
  const name = policyFromCode(policy);
  const backorderable = backorderAllowance({ policy: name, limit: limit < 0 ? null : limit, incoming, backordered });
  return { incoming, nextEta: nextEta > 0 ? nextEta : null, backordered, backorderable, policy: name };
}

/**
 * Serialised row as stored in Redis:
 * "onHand|reserved|safetyStock|version|deleted|commitTs|incoming|backordered|nextEta|policy|limit".
 * Rows of six fields (written before migration 0018's figures) still decode.
 */
export function encodeRow(r: RowState): string {
  return `${r.onHand}|${r.reserved}|${r.safetyStock}|${r.version}|${r.deleted ? 1 : 0}|${r.commitTs}|${r.incoming ?? 0}|${r.backordered ?? 0}|${r.nextEta ?? 0}|${r.policy ?? 0}|${r.limit ?? -1}`;
}

/**
 * A stored row (encodeRow's text) as a RowState; undefined for text of another shape (not 6 or 11
 * fields, or a field that is not a finite number). The common case, fields of plain decimal
 * integers, is read without splitting (the fold decodes every row of a SKU on every change);
 * anything else takes the general path, with the same result.
 */
export function decodeRow(text: string): RowState | undefined {
  const f = ROW_FIELDS;
  let n = 0;
  let value = 0;
  let digits = 0;
  let negative = false;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 124; // the end closes the last field like a '|'
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++digits > 15) return decodeRowGeneral(text); // past exact integers: let Number decide
    } else if (c === 124) {
      if (digits === 0 || n === 11) return decodeRowGeneral(text);
      f[n++] = negative ? -value : value;
      value = 0;
      digits = 0;
      negative = false;
    } else if (c === 45 && digits === 0 && !negative) {
      negative = true;
    } else {
      return decodeRowGeneral(text);
    }
  }
  if (n !== 6 && n !== 11) return undefined;
  return n === 6
    ? { onHand: f[0]!, reserved: f[1]!, safetyStock: f[2]!, version: f[3]!, deleted: f[4] === 1, commitTs: f[5]!, incoming: 0, backordered: 0, nextEta: 0, policy: 0, limit: -1 }
    : { onHand: f[0]!, reserved: f[1]!, safetyStock: f[2]!, version: f[3]!, deleted: f[4] === 1, commitTs: f[5]!, incoming: f[6]!, backordered: f[7]!, nextEta: f[8]!, policy: f[9]!, limit: f[10]! };
}

/** Scratch space of decodeRow (synchronous, so one is enough). */
const ROW_FIELDS: number[] = new Array<number>(11).fill(0);

function decodeRowGeneral(text: string): RowState | undefined {
  const parts = text.split('|');
  if (parts.length !== 6 && parts.length !== 11) return undefined;
  const nums = parts.map(Number);
  if (nums.some((n) => !Number.isFinite(n))) return undefined;
  const [onHand, reserved, safetyStock, version, deleted, commitTs, incoming = 0, backordered = 0, nextEta = 0, policy = 0, limit = -1] = nums as [number, number, number, number, number, number, ...number[]];
  return { onHand, reserved, safetyStock, version, deleted: deleted === 1, commitTs, incoming, backordered, nextEta, policy, limit };
}

export function decodeRows(hash: Record<string, string>): SkuRows {
  const rows: SkuRows = {};
  for (const [loc, text] of Object.entries(hash)) {
    const r = decodeRow(text);
    if (r) rows[loc] = r;
  }
  return rows;
}

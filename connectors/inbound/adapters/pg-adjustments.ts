/**
 * Applies adjustments to Postgres, exactly once: one transaction per batch that
 *   1. locks every `stock_levels` row the batch may touch, in (sku, location_id) order — the
 *      order every writer of several rows uses (purchase write-back too), so transfers and
 *      batches do not deadlock each other;
 *   2. reads, after the locks are held, which of the batch's ids were applied already and which
 *      SKUs and locations the catalog knows;
 *   3. decides every adjustment in order (domain/decide.ts), compare-and-set expectations
 *      included: they are checked against the rows as locked here, so of two writers racing with
 *      the same expectation the second to get the lock sees the first's change and is refused;
 *   4. writes each changed row once (guarded by the figure read under lock), and records every
 *      applied adjustment in `applied_adjustments` — its primary key is the last word on
 *      "exactly once" — then commits.
 * Deadlocks, serialization failures and a concurrent insert of the same id or row (two paths
 * applying the same adjustment at once) roll the batch back and retry it: the retry sees the
 * other transaction's outcome. Refused adjustments write nothing.
 *
 * Errors leave `apply` classified (lib/driver-errors.ts): UnavailableError (Postgres not there
 * now: retry later), ContentionError (still contended after the retries: retry later),
 * InvalidDataError (Postgres refused the data, SQLSTATE class 22/23: retrying cannot help; the
 * consumer dead-letters it), InternalError (anything else).
 *
 * Owns: the SQL. Must not: hold rules (domain/) or know where adjustments come from.
 */
import type pg from 'pg';
import { fromPgError } from '../../../lib/driver-errors.ts';
import { checkout } from '../../../lib/pg.ts';
import { ContentionError } from '../../../lib/errors.ts';
import { retry } from '../../../lib/retry.ts';
import type { StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { adjustmentHash } from '../domain/adjustment.ts';
import {
  datedKey,
  decideBatch,
  rowKey,
  rowsToLock,
  type DatedCountState,
  type Decision,
  type LedgerEntry,
  type LocationChange,
  type RefusalCode,
  type RowState,
} from '../domain/decide.ts';
import { encodeMovementContext, MOVEMENT_SETTING, rowContextKey, type MovementContext, type MovementReason } from '../../../lib/contracts/movements.ts';

/** What an applied adjustment did; stored in the ledger and reported again for its duplicates. */
export interface AppliedResult {
  /** Version of the adjustment's rows after the transaction (the highest, for a transfer). */
  version: number;
  locations: LocationChange[];
}

export type ApplyOutcome =
  | { outcome: 'applied'; adjustment: StockAdjustment; result: AppliedResult }
  | { outcome: 'duplicate'; adjustment: StockAdjustment; result: AppliedResult }
  | { outcome: 'refused'; adjustment: StockAdjustment; code: RefusalCode; message: string; details: Record<string, unknown> };

export interface ApplyItem {
  adjustment: StockAdjustment;
  /** Where it came from, recorded with it: `kafka:<topic>/<partition>@<offset>` or `http:<subject>`. */
  via: string;
}

/**
 * Besides deadlocks and serialization failures, a unique violation (23505) here is a concurrent
 * insert of the same adjustment id or stock row: "another transaction got in the way", retry.
 */
const CONTENTION = { contention: ['23505'] } as const;

/** The error a driver threw, classified at this edge. */
function classified(err: unknown) {
  return fromPgError(err, CONTENTION);
}

/**
 * What the dated counts of a batch need from the movement ledger (docs/ledger.md#dated-counts),
 * read after the rows' locks are held: per (row, countedAt) the on-hand movements that took effect
 * after it and the newest count applied after it; the ledger's horizon; the transaction's clock.
 * Undefined when the batch has no dated count (no query).
 */
async function readDatedCounts(client: pg.PoolClient, adjustments: readonly StockAdjustment[]): Promise<DatedCountState | undefined> {
  const counts = adjustments.filter((a) => a.kind === 'COUNT' && a.countedAt !== null);
  if (counts.length === 0) return undefined;
  const r = await client.query<{ sku: string | null; location_id: string | null; counted_at: string | null; moved: string | null; newer: string | null; horizon: string; now: string }>(
    `SELECT k.sku, k.location_id, k.counted_at::text AS counted_at,
            (SELECT coalesce(sum(m.on_hand_delta), 0) FROM stock_movements m
              WHERE m.sku = k.sku AND m.location_id = k.location_id AND m.effective_at > to_timestamp(k.counted_at / 1000.0))::text AS moved,
            (SELECT floor(extract(epoch FROM max(m.effective_at)) * 1000) FROM stock_movements m
              WHERE m.sku = k.sku AND m.location_id = k.location_id AND m.effective_at > to_timestamp(k.counted_at / 1000.0)
                AND m.kind = 'adjustment' AND ('+' || m.reason || '+') LIKE '%+COUNT+%')::text AS newer,
            floor(extract(epoch FROM h.horizon) * 1000)::text AS horizon,
            floor(extract(epoch FROM clock_timestamp()) * 1000)::text AS now
       FROM stock_movement_horizon h
       LEFT JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(sku, location_id, counted_at) ON true`,
    [counts.map((a) => a.sku), counts.map((a) => a.locationId), counts.map((a) => a.countedAt)],
  );
  const rows = new Map<string, { movedSince: number; newerCountAt: number | null }>();
  for (const x of r.rows) {
    if (x.sku === null || x.location_id === null || x.counted_at === null) continue;
    rows.set(datedKey(x.sku, x.location_id, Number(x.counted_at)), { movedSince: Number(x.moved ?? 0), newerCountAt: x.newer === null ? null : Number(x.newer) });
  }
  const first = r.rows[0];
  return { now: Number(first?.now ?? Date.now()), horizon: first ? Number(first.horizon) : null, rows };
}

/**
 * What the movement ledger records for the rows a batch writes (docs/ledger.md): kind
 * `adjustment`; per row the adjustments that moved it — their kinds as the reason (`RECEIPT`,
 * `PICK+COUNT` for two), the source system, reference and channel of arrival of the first, every
 * adjustment id in `details`; a row moved only by one dated count takes effect when it was counted.
 */
export function adjustmentContext(decisions: readonly Decision[], items: readonly ApplyItem[]): MovementContext {
  const byRow = new Map<string, Array<{ a: StockAdjustment; via: string }>>();
  for (const [index, d] of decisions.entries()) {
    if (d.outcome !== 'applied') continue;
    for (const c of d.changes) {
      const key = rowContextKey(d.adjustment.sku, c.locationId);
      const list = byRow.get(key) ?? [];
      list.push({ a: d.adjustment, via: items[index]!.via });
      byRow.set(key, list);
    }
  }
  const rowsCtx: Record<string, MovementReason> = {};
  for (const [key, list] of byRow) {
    const first = list[0]!;
    const dated = list.length === 1 && first.a.kind === 'COUNT' && first.a.countedAt !== null ? { countedAt: first.a.countedAt } : {};
    rowsCtx[key] = {
      reason: list.map((x) => x.a.kind).join('+'),
      source: first.a.sourceSystem,
      reference: first.a.reference,
      actor: first.via,
      details: { adjustmentIds: list.map((x) => x.a.adjustmentId), ...(dated.countedAt !== undefined ? { countedAt: dated.countedAt } : {}) },
      ...dated,
    };
  }
  return { kind: 'adjustment', rows: rowsCtx };
}

export class AdjustmentStore {
  private readonly pool: pg.Pool;
  private readonly onRetry: ((err: unknown, attempt: number) => void) | undefined;

  constructor(deps: { pool: pg.Pool; onRetry?: (err: unknown, attempt: number) => void }) {
    this.pool = deps.pool;
    this.onRetry = deps.onRetry;
  }

  /** Applies `items` in order in one transaction; one outcome per item, in the same order. */
  async apply(items: readonly ApplyItem[]): Promise<ApplyOutcome[]> {
    if (items.length === 0) return [];
    return retry(() => this.applyOnce(items), {
      retries: 8,
      initialDelayMs: 5,
      maxDelayMs: 500,
      // Only contention is retried here; a Postgres that is down is the caller's to wait out.
      retriable: (err) => err instanceof ContentionError,
      onRetry: (err, attempt) => this.onRetry?.(err, attempt),
    });
  }

  private async applyOnce(items: readonly ApplyItem[]): Promise<ApplyOutcome[]> {
    const inputs = items.map((i) => ({ adjustment: i.adjustment, hash: adjustmentHash(i.adjustment) }));
    const lockKeys = rowsToLock(inputs);
    const client = await checkout(this.pool).catch((err: unknown) => {
      throw classified(err);
    });
    let released = false;
    try {
      await client.query('BEGIN');
      const locked = await client.query<{ sku: string; location_id: string; on_hand: number; reserved: number; version: string }>(
        `SELECT s.sku, s.location_id, s.on_hand, s.reserved, s.version
           FROM stock_levels s
           JOIN unnest($1::text[], $2::text[]) AS k(sku, location_id) ON s.sku = k.sku AND s.location_id = k.location_id
          ORDER BY s.sku, s.location_id
            FOR UPDATE OF s`,
        [lockKeys.map((k) => k.sku), lockKeys.map((k) => k.locationId)],
      );
      const rows = new Map<string, RowState>();
      const versions = new Map<string, number>();
      for (const r of locked.rows) {
        rows.set(rowKey(r.sku, r.location_id), { onHand: r.on_hand, reserved: r.reserved, version: Number(r.version) });
        versions.set(rowKey(r.sku, r.location_id), Number(r.version));
      }

      // A separate statement, after the locks: it sees whatever committed while we waited for them.
      const ids = [...new Set(inputs.map((i) => i.adjustment.adjustmentId))];
      const skus = [...new Set(inputs.map((i) => i.adjustment.sku))];
      const locationIds = [...new Set(inputs.flatMap((i) => [i.adjustment.locationId, ...(i.adjustment.toLocationId ? [i.adjustment.toLocationId] : [])]))];
      const known = await client.query<{ t: 'a' | 'p' | 'l'; k: string; h: string | null; r: AppliedResult | null }>(
        `SELECT 'a' AS t, adjustment_id AS k, payload_hash AS h, result AS r FROM applied_adjustments WHERE adjustment_id = ANY($1::text[])
         UNION ALL SELECT 'p', sku, NULL, NULL FROM products WHERE sku = ANY($2::text[])
         UNION ALL SELECT 'l', location_id, NULL, NULL FROM locations WHERE location_id = ANY($3::text[])`,
        [ids, skus, locationIds],
      );
      const ledger = new Map<string, LedgerEntry>();
      const products = new Set<string>();
      const locations = new Set<string>();
      for (const r of known.rows) {
        if (r.t === 'a') ledger.set(r.k, { hash: r.h!, result: r.r });
        else if (r.t === 'p') products.add(r.k);
        else locations.add(r.k);
      }

      const dated = await readDatedCounts(client, inputs.map((i) => i.adjustment));
      const { decisions, writes } = decideBatch(inputs, { rows, ledger, products, locations, ...(dated ? { dated } : {}) });

      if (writes.length > 0) {
        // Existing rows: guarded by the figure read under lock (it cannot have changed; if it
        // did, something is badly wrong and the batch must not commit). New rows: a plain insert —
        // a concurrent insert of the same row fails it with 23505 and the batch is retried.
        const written = await client.query<{ sku: string; location_id: string; version: string }>(
          `WITH ctx AS MATERIALIZED (
             SELECT set_config('${MOVEMENT_SETTING}', $5::text, true) AS c
           ), d AS (
             SELECT d.* FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS d(sku, location_id, before, after), ctx
           ), u AS (
             UPDATE stock_levels s SET on_hand = d.after
               FROM d
              WHERE d.before IS NOT NULL AND s.sku = d.sku AND s.location_id = d.location_id AND s.on_hand = d.before
             RETURNING s.sku, s.location_id, s.version
           ), i AS (
             INSERT INTO stock_levels (sku, location_id, on_hand)
             SELECT sku, location_id, after FROM d WHERE before IS NULL ORDER BY sku, location_id
             RETURNING sku, location_id, version
           )
           SELECT * FROM u UNION ALL SELECT * FROM i`,
          [
            writes.map((w) => w.sku),
            writes.map((w) => w.locationId),
            writes.map((w) => w.onHandBefore),
            writes.map((w) => w.onHandAfter),
            encodeMovementContext(adjustmentContext(decisions, items)),
          ],
        );
        if (written.rowCount !== writes.length) {
          throw new Error(`adjustments: wrote ${written.rowCount} of ${writes.length} stock rows; a locked row changed under its lock`);
        }
        for (const r of written.rows) versions.set(rowKey(r.sku, r.location_id), Number(r.version));
      }

      // A compare-and-set refusal reports the row as this transaction leaves it (on hand, version):
      // what a sender retrying must expect now. For a batch of one (HTTP) that is the row as read.
      const finalOnHand = new Map(writes.map((w) => [rowKey(w.sku, w.locationId), w.onHandAfter]));
      const asCommitted = (sku: string, locationId: string) => {
        const key = rowKey(sku, locationId);
        return { onHand: finalOnHand.get(key) ?? rows.get(key)?.onHand ?? 0, version: versions.get(key) ?? null };
      };

      const outcomes: ApplyOutcome[] = [];
      const ledgerRows: Array<Record<string, unknown>> = [];
      for (const [index, d] of decisions.entries()) {
        if (d.outcome === 'applied') {
          const version = Math.max(...d.changes.map((c) => versions.get(rowKey(d.adjustment.sku, c.locationId)) ?? 0));
          const result: AppliedResult = { version, locations: d.changes };
          outcomes.push({ outcome: 'applied', adjustment: d.adjustment, result });
          const a = d.adjustment;
          ledgerRows.push({
            adjustment_id: a.adjustmentId,
            payload_hash: d.hash,
            sku: a.sku,
            location_id: a.locationId,
            to_location_id: a.toLocationId,
            kind: a.kind,
            quantity: a.quantity,
            occurred_at_ms: a.occurredAt,
            source_system: a.sourceSystem,
            reference: a.reference,
            received_via: items[index]!.via,
            result,
          });
        } else if (d.outcome === 'duplicate') {
          const first = 'index' in d.first ? (outcomes[d.first.index] as { result: AppliedResult }).result : (d.first.result as AppliedResult);
          outcomes.push({ outcome: 'duplicate', adjustment: d.adjustment, result: first });
        } else if (d.code === 'stock_changed') {
          outcomes.push({ ...d, details: { ...d.details, ...asCommitted(d.adjustment.sku, d.adjustment.locationId) } });
        } else {
          outcomes.push(d);
        }
      }
      if (ledgerRows.length > 0) {
        await client.query(
          `INSERT INTO applied_adjustments (adjustment_id, payload_hash, sku, location_id, to_location_id, kind, quantity, occurred_at,
                                            source_system, reference, received_via, result)
           SELECT adjustment_id, payload_hash, sku, location_id, to_location_id, kind, quantity, to_timestamp(occurred_at_ms / 1000.0),
                  source_system, reference, received_via, result
             FROM jsonb_to_recordset($1::jsonb) AS x(adjustment_id text, payload_hash text, sku text, location_id text, to_location_id text,
                                                     kind text, quantity int, occurred_at_ms bigint, source_system text, reference text,
                                                     received_via text, result jsonb)`,
          [JSON.stringify(ledgerRows)],
        );
      }
      await client.query('COMMIT');
      return outcomes;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        // The connection is broken: do not return it to the pool.
        released = true;
        client.release(true);
      });
      throw classified(err);
    } finally {
      if (!released) client.release();
    }
  }
}

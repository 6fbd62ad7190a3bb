/**
 * Housekeeping that keeps a long-lived install healthy (docs/operations.md, "Housekeeping"):
 * on a schedule, prunes
 *   - outbox rows older than their retention (default 1 h): Debezium reads outbox INSERTs from
 *     the WAL, which the `invsync_outbox` replication slot retains until they are published, so
 *     the row itself is not needed once committed. The one case where it is: a lost slot, which is
 *     recovered by re-snapshotting the table. So while that slot does not exist, nothing is
 *     pruned from the outbox (`outboxKept: 'no_slot'`).
 *   - `applied_adjustments` rows older than their retention (default 30 days): the exactly-once
 *     window of stock.adjustments. An adjustment redelivered after its row is gone would apply
 *     again, so the retention must be longer than that topic's retention and any replay.
 *   - ledger movements (`stock_movements`) older than their retention (default 90 days), folded
 *     into their rows' baselines so the ledger still adds up to the figures; the ledger's horizon
 *     moves up with them (a dated count older than it is refused: docs/ledger.md).
 *   - the Postgres idempotency records of orders (`orders.idempotency_key`, `request_hash`)
 *     older than their retention (default 30 days, at least PURCHASE_IDEMPOTENCY_TTL_S): the
 *     order stays, only its key is forgotten. Orders still `reserved` keep their key.
 *
 * Any number of processes may run it: one run at a time holds a session advisory lock
 * (`pg_try_advisory_lock`); the others skip that round. Deletes go in bounded batches so no run
 * holds many row locks or a long transaction.
 */
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import { PROJECT_ROOT } from './config.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';

export const HOUSEKEEPING_LOCK_KEY = 0x1_5e_7d; // arbitrary, constant: "invsync housekeeping" (migrations use 0x15e7c)

export interface Retention {
  outboxMs: number;
  adjustmentsMs: number;
  idempotencyMs: number;
  /** Movement ledger (docs/ledger.md); absent: the default 90 days. */
  movementsMs?: number;
}

export interface HousekeepingResult {
  /** Another instance holds the lock: this round did nothing. */
  skipped: boolean;
  outbox: number;
  adjustments: number;
  idempotencyKeys: number;
  /** Ledger movements folded into their rows' baselines (stock_movements_prune). */
  movements?: number;
  /** Why outbox rows were kept although old ('no_slot': the outbox replication slot is missing). */
  outboxKept?: 'no_slot';
}

/** The replication slot of the outbox connector, from its config in debezium/connectors/outbox.json. */
export function outboxSlotName(file = path.join(PROJECT_ROOT, 'debezium', 'connectors', 'outbox.json')): string {
  const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as { config?: Record<string, string> };
  const slot = spec.config?.['slot.name'];
  if (!slot) throw new Error(`${file} names no slot.name`);
  return slot;
}

/** How long itemised ledger movements are kept by default: 90 days (a dated count may be that old). */
export const DEFAULT_MOVEMENTS_RETENTION_MS = 90 * 86_400_000;

const interval = (ms: number) => `${Math.floor(ms)} milliseconds`;

export class Housekeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly pruned: Counter | undefined;

  constructor(
    private readonly deps: {
      pool: pg.Pool;
      logger: Logger;
      retention: Retention;
      /** Replication slot whose existence makes outbox pruning safe. */
      outboxSlot: string;
      /** Rows per delete statement. */
      batch?: number;
      registry?: Registry;
    },
  ) {
    this.log = deps.logger.child({ component: 'housekeeping' });
    if (deps.registry) {
      this.pruned = new Counter({ name: 'invsync_housekeeping_pruned_total', help: 'Rows pruned by housekeeping', labelNames: ['what'], registers: [deps.registry] });
    }
  }

  /** One round. Throws on a database error (the schedule logs it and tries next interval). */
  async runOnce(): Promise<HousekeepingResult> {
    const client = await this.deps.pool.connect();
    // A checked-out client has no pool error listener: without this, Postgres going away while
    // we hold it would be an unhandled 'error' event (a crash).
    const onError = (err: Error) => this.log.warn({ err: err.message }, 'postgres connection error during housekeeping');
    client.on('error', onError);
    let locked = false;
    try {
      const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [HOUSEKEEPING_LOCK_KEY]);
      locked = lock.rows[0]!.ok;
      if (!locked) return { skipped: true, outbox: 0, adjustments: 0, idempotencyKeys: 0 };
      const r = this.deps.retention;
      const batch = this.deps.batch ?? 5000;
      const result: HousekeepingResult = { skipped: false, outbox: 0, adjustments: 0, idempotencyKeys: 0 };

      const slot = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [this.deps.outboxSlot]);
      if (slot.rowCount === 0) {
        result.outboxKept = 'no_slot';
        this.log.warn({ slot: this.deps.outboxSlot }, 'outbox replication slot missing: outbox rows kept for its recovery snapshot');
      } else {
        const o = await client.query<{ n: string }>('SELECT outbox_prune($1::interval) AS n', [interval(r.outboxMs)]);
        result.outbox = Number(o.rows[0]!.n);
      }
      result.adjustments = await this.drain(client, batch, (limit) => [
        `WITH gone AS (DELETE FROM applied_adjustments WHERE adjustment_id IN (
           SELECT adjustment_id FROM applied_adjustments WHERE applied_at < clock_timestamp() - $1::interval LIMIT $2)
         RETURNING 1) SELECT count(*) AS n FROM gone`,
        [interval(r.adjustmentsMs), limit],
      ]);
      result.idempotencyKeys = await this.drain(client, batch, (limit) => [
        `WITH gone AS (UPDATE orders SET idempotency_key = NULL, request_hash = NULL WHERE id IN (
           SELECT id FROM orders WHERE idempotency_key IS NOT NULL AND status <> 'reserved'
              AND created_at < clock_timestamp() - $1::interval LIMIT $2)
         RETURNING 1) SELECT count(*) AS n FROM gone`,
        [interval(r.idempotencyMs), limit],
      ]);
      result.movements = await this.drain(client, batch, (limit) => [
        'SELECT stock_movements_prune($1::interval, $2) AS n',
        [interval(r.movementsMs ?? DEFAULT_MOVEMENTS_RETENTION_MS), limit],
      ]);
      this.pruned?.inc({ what: 'stock_movements' }, result.movements);
      this.pruned?.inc({ what: 'outbox' }, result.outbox);
      this.pruned?.inc({ what: 'applied_adjustments' }, result.adjustments);
      this.pruned?.inc({ what: 'idempotency_keys' }, result.idempotencyKeys);
      return result;
    } finally {
      if (locked) await client.query('SELECT pg_advisory_unlock($1)', [HOUSEKEEPING_LOCK_KEY]).catch(() => undefined);
      client.off('error', onError);
      client.release();
    }
  }

  private async drain(client: pg.PoolClient, batch: number, stmt: (limit: number) => [string, unknown[]]): Promise<number> {
    let total = 0;
    for (;;) {
      const [sql, params] = stmt(batch);
      const r = await client.query<{ n: string }>(sql, params);
      const n = Number(r.rows[0]!.n);
      total += n;
      if (n < batch || this.stopped) return total;
    }
  }

  /** Runs every `intervalMs`; the first round a minute after start (or one interval, if shorter). */
  start(intervalMs: number): void {
    const tick = () => {
      this.running = this.runOnce()
        .then((r) => {
          if (!r.skipped) this.log.info(r, 'housekeeping: pruned');
        })
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'housekeeping failed; will retry next interval'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    this.timer = setTimeout(tick, Math.min(intervalMs, 60_000));
  }

  /** Stops the schedule; a round in progress finishes its current batch. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}

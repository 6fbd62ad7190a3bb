/**
 * Postgres side of the CDC watchdog: reads pg_replication_slots, keeps the recovery record
 * (cdc_slot_recovery), writes Debezium signals (cdc_signal) and counts the incremental snapshot's
 * watermarks. Owns SQL only; decisions are in domain/cdc-slots.ts.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { LossReason, RecoveryRecord, SlotObservation } from '../domain/cdc-slots.ts';
import { snapshotSignalData } from '../domain/cdc-slots.ts';

type Queryable = Pick<pg.ClientBase, 'query'>;

const num = (v: string | null): number | null => (v === null ? null : Number(v));

export async function observeSlots(db: Queryable, slots: readonly string[]): Promise<SlotObservation[]> {
  const { rows } = await db.query<{ name: string; present: boolean; active: boolean | null; wal_status: string | null; retained: string | null; lag: string | null; safe: string | null }>(
    `SELECT s.name, r.slot_name IS NOT NULL AS present, r.active, r.wal_status,
            pg_wal_lsn_diff(pg_current_wal_lsn(), r.restart_lsn)::bigint::text AS retained,
            pg_wal_lsn_diff(pg_current_wal_lsn(), r.confirmed_flush_lsn)::bigint::text AS lag,
            r.safe_wal_size::text AS safe
       FROM unnest($1::text[]) AS s(name)
       LEFT JOIN pg_replication_slots r ON r.slot_name = s.name`,
    [slots],
  );
  return rows.map((r) => ({
    slot: r.name,
    present: r.present,
    active: r.active === true,
    walStatus: r.wal_status,
    retainedBytes: num(r.retained),
    flushLagBytes: num(r.lag),
    safeWalSizeBytes: num(r.safe),
  }));
}

interface RecoveryRow {
  slot: string;
  reason: LossReason;
  stage: RecoveryRecord['stage'];
  detected_at: Date;
  signal_id: string | null;
  signalled_at: Date | null;
  window_baseline: number | null;
}

export async function openRecoveries(db: Queryable): Promise<Map<string, RecoveryRecord>> {
  const { rows } = await db.query<RecoveryRow>(`SELECT slot, reason, stage, detected_at, signal_id, signalled_at, window_baseline FROM cdc_slot_recovery WHERE stage <> 'done'`);
  return new Map(
    rows.map((r) => [
      r.slot,
      {
        slot: r.slot,
        reason: r.reason,
        stage: r.stage,
        detectedAt: r.detected_at.getTime(),
        signalId: r.signal_id,
        signalledAt: r.signalled_at ? r.signalled_at.getTime() : null,
        windowBaseline: r.window_baseline,
      },
    ]),
  );
}

/** Opens (or re-opens) the recovery of a slot at stage await_slot. */
export async function recordLoss(db: Queryable, slot: string, reason: LossReason): Promise<void> {
  await db.query(
    `INSERT INTO cdc_slot_recovery (slot, reason, detected_at, stage) VALUES ($1, $2, now(), 'await_slot')
     ON CONFLICT (slot) DO UPDATE SET reason = EXCLUDED.reason, detected_at = now(), stage = 'await_slot',
       signal_id = NULL, signalled_at = NULL, window_baseline = NULL, finished_at = NULL`,
    [slot, reason],
  );
}

/** Drops a slot whose WAL is lost, only if nothing streams from it (false: it was not dropped). */
export async function dropLostSlot(db: Queryable, slot: string): Promise<boolean> {
  const { rows } = await db.query<{ dropped: boolean }>(
    `SELECT pg_drop_replication_slot(slot_name) IS NULL AS dropped FROM pg_replication_slots WHERE slot_name = $1 AND NOT active AND wal_status = 'lost'`,
    [slot],
  );
  return rows.length > 0;
}

export async function countWindowCloses(db: Queryable, signalTable: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteTable(signalTable)} WHERE type = 'snapshot-window-close'`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Requests an incremental snapshot through the signal table and moves the recovery to
 * snapshotting, in one transaction (the caller passes a client inside BEGIN).
 */
export async function signalSnapshot(db: Queryable, slot: string, signalTable: string, collections: readonly string[]): Promise<string> {
  const id = `invsync-recovery-${randomUUID()}`;
  const baseline = await countWindowCloses(db, signalTable);
  await db.query(`INSERT INTO ${quoteTable(signalTable)} (id, type, data) VALUES ($1, 'execute-snapshot', $2)`, [id, snapshotSignalData(collections)]);
  await db.query(`UPDATE cdc_slot_recovery SET stage = 'snapshotting', signal_id = $2, signalled_at = now(), window_baseline = $3 WHERE slot = $1`, [slot, id, baseline]);
  return id;
}

export async function finishRecovery(db: Queryable, slot: string): Promise<void> {
  await db.query(`UPDATE cdc_slot_recovery SET stage = 'done', finished_at = now() WHERE slot = $1`, [slot]);
}

/** `schema.table` from a connector config, quoted; refuses anything else. */
export function quoteTable(name: string): string {
  const m = /^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$/.exec(name);
  if (!m) throw new Error(`not a schema-qualified table name: ${name}`);
  return `"${m[1]}"."${m[2]}"`;
}

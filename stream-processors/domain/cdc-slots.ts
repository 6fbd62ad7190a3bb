/**
 * Decisions of the CDC watchdog (stream-processors/cdc-watchdog.ts, docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery):
 * what to do about one replication slot, given what Postgres shows of it, the open recovery (if
 * any), the connector's state and the incremental snapshot's progress. Pure: no I/O, no clock.
 *
 * A recovery goes through three stages, one step per watchdog tick:
 *   await_slot    the slot is missing or its WAL is lost; a lost, inactive slot is dropped so the
 *                 connector can create a fresh one, and a FAILED connector is restarted. Changes
 *                 committed meanwhile will never be streamed.
 *   snapshotting  the connector streams again from a new slot; an incremental snapshot of the
 *                 captured tables was requested through the signal table. It is taken as finished
 *                 when its chunk watermarks stop appearing (settle time), or after a timeout.
 *   done          the views were reconciled with Postgres (repairing what the snapshot did not).
 */

/** What pg_replication_slots shows for one slot (present = false when the row is missing). */
export interface SlotObservation {
  slot: string;
  present: boolean;
  active: boolean;
  /** reserved | extended | unreserved | lost (Postgres 13+); null when missing. */
  walStatus: string | null;
  /** WAL the slot holds back: current LSN - restart_lsn, in bytes. */
  retainedBytes: number | null;
  /** current LSN - confirmed_flush_lsn, in bytes: how far the consumer's confirmation trails. */
  flushLagBytes: number | null;
  /** Bytes that can still be written before the slot is invalidated (null: no limit). */
  safeWalSizeBytes: number | null;
}

export type LossReason = 'missing' | 'lost';
export type RecoveryStage = 'await_slot' | 'snapshotting' | 'done';

export interface RecoveryRecord {
  slot: string;
  reason: LossReason;
  stage: RecoveryStage;
  /** ms since epoch */
  detectedAt: number;
  signalId: string | null;
  signalledAt: number | null;
  /** Snapshot window-close watermarks in the signal table when the snapshot was requested. */
  windowBaseline: number | null;
}

export interface SnapshotProgress {
  /** Window-close watermarks in the signal table now. */
  windowCloses: number;
  /** When the count last changed, as first seen by this watchdog (ms since epoch). */
  lastChangeAt: number;
}

export interface SlotPolicy {
  /** Tables to snapshot after a loss; empty: the slot is only recreated (e.g. the outbox). */
  snapshotCollections: readonly string[];
  /** Quiet time after the last watermark before the snapshot counts as finished. */
  settleMs: number;
  /** After this long since the signal, reconcile anyway. */
  timeoutMs: number;
}

export interface SlotInput {
  observation: SlotObservation;
  /** The open recovery (stage await_slot or snapshotting), or null. */
  recovery: RecoveryRecord | null;
  /** The connector or one of its tasks is FAILED (null: unknown, Connect unreachable). */
  connectorFailed: boolean | null;
  snapshot: SnapshotProgress | null;
  now: number;
}

export type SlotAction =
  | { kind: 'none' }
  | { kind: 'record_loss'; reason: LossReason }
  | { kind: 'drop_lost_slot' }
  | { kind: 'restart_connector' }
  | { kind: 'wait'; why: string }
  | { kind: 'signal_snapshot'; collections: readonly string[] }
  | { kind: 'finish'; reconcile: boolean; timedOut: boolean };

export function lossOf(o: SlotObservation): LossReason | null {
  if (!o.present) return 'missing';
  if (o.walStatus === 'lost') return 'lost';
  return null;
}

export function decideSlotAction(input: SlotInput, policy: SlotPolicy): SlotAction {
  const { observation: o, recovery: r } = input;
  const loss = lossOf(o);
  if (!r || r.stage === 'done') return loss ? { kind: 'record_loss', reason: loss } : { kind: 'none' };

  if (r.stage === 'snapshotting') {
    // Lost again while snapshotting: start over (the snapshot in flight is gone with the slot).
    if (loss) return { kind: 'record_loss', reason: loss };
    const signalledAt = r.signalledAt ?? r.detectedAt;
    if (input.now - signalledAt >= policy.timeoutMs) return { kind: 'finish', reconcile: true, timedOut: true };
    const p = input.snapshot;
    if (p && r.windowBaseline !== null && p.windowCloses > r.windowBaseline && input.now - p.lastChangeAt >= policy.settleMs) {
      return { kind: 'finish', reconcile: true, timedOut: false };
    }
    return { kind: 'wait', why: 'incremental snapshot in progress' };
  }

  // await_slot
  if (loss === 'lost') {
    if (!o.active) return { kind: 'drop_lost_slot' };
    return { kind: 'wait', why: 'lost slot still held by a walsender; the connector fails and releases it' };
  }
  if (loss === 'missing' || !o.active) {
    if (input.connectorFailed === true) return { kind: 'restart_connector' };
    return { kind: 'wait', why: loss === 'missing' ? 'slot missing; the connector creates it when it starts' : 'slot not streaming yet' };
  }
  // Present, streaming, WAL intact: the connector runs on a new slot.
  if (policy.snapshotCollections.length === 0) return { kind: 'finish', reconcile: false, timedOut: false };
  return { kind: 'signal_snapshot', collections: policy.snapshotCollections };
}

/** The `execute-snapshot` signal's data column (Debezium's source signalling channel). */
export function snapshotSignalData(collections: readonly string[]): string {
  return JSON.stringify({ 'data-collections': collections, type: 'incremental' });
}

/** Folds a new watermark count into the progress tracked across ticks. */
export function nextProgress(prev: SnapshotProgress | null, windowCloses: number, now: number): SnapshotProgress {
  if (!prev || prev.windowCloses !== windowCloses) return { windowCloses, lastChangeAt: now };
  return prev;
}

/** Alert levels for one slot (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery); pure so the thresholds are tested. */
export interface SlotThresholds {
  retainedWarnBytes: number;
  retainedCriticalBytes: number;
}

export function slotHealth(o: SlotObservation, t: SlotThresholds): 'ok' | 'warning' | 'critical' {
  if (!o.present || o.walStatus === 'lost') return 'critical';
  if (o.walStatus === 'unreserved') return 'critical';
  const retained = o.retainedBytes ?? 0;
  if (retained >= t.retainedCriticalBytes) return 'critical';
  if (retained >= t.retainedWarnBytes || o.walStatus === 'extended' || !o.active) return 'warning';
  return 'ok';
}

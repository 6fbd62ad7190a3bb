/**
 * The CDC watchdog, run by the stock processor service (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery).
 *
 * Every tick it reads pg_replication_slots for the connectors' slots and exports their health as
 * metrics (every processor does; it is one cheap query). Then, if it holds the watchdog's Postgres
 * advisory lock (one processor at a time; the others only export metrics), it drives the recovery
 * of a missing or invalidated slot one step per tick (domain/cdc-slots.ts): record the loss, drop
 * a lost slot so the connector can create a new one, restart a FAILED connector, request an
 * incremental snapshot through Debezium's signal table once the connector streams again, and
 * reconcile the Redis views with Postgres when the snapshot has settled. The recovery's stage is
 * kept in Postgres (cdc_slot_recovery), so a processor that dies mid-way leaves it to the next.
 */
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { PROJECT_ROOT } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { connectorStatuses } from '../tools/stack/connectors.ts';
import { decideSlotAction, nextProgress, slotHealth, type SlotAction, type SlotObservation, type SlotThresholds, type SnapshotProgress } from './domain/cdc-slots.ts';
import { countWindowCloses, dropLostSlot, finishRecovery, observeSlots, openRecoveries, recordLoss, signalSnapshot } from './adapters/pg-cdc-slots.ts';
import type { CdcMetrics } from './metrics.ts';

/** One connector's slot, as the watchdog needs it (from debezium/connectors/*.json). */
export interface WatchedSlot {
  slot: string;
  connector: string;
  /** `signal.data.collection`; null: the connector takes no signals, nothing is snapshotted. */
  signalTable: string | null;
  /** Tables re-read by the incremental snapshot after a loss. */
  snapshotCollections: string[];
}

/** Tables of the connector's own plumbing, never snapshotted. */
const PLUMBING = new Set(['public.cdc_heartbeat', 'public.cdc_signal', 'public.cdc_warmup']);

export function watchedSlotsFromConfig(dir = path.join(PROJECT_ROOT, 'debezium', 'connectors')): WatchedSlot[] {
  const out: WatchedSlot[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { name?: string; config?: Record<string, string> };
    const c = spec.config ?? {};
    if (!spec.name || !c['slot.name']) continue;
    const signalTable = c['signal.data.collection'] ?? null;
    const tables = (c['table.include.list'] ?? '').split(',').map((t) => t.trim()).filter((t) => t && !PLUMBING.has(t) && t !== signalTable);
    out.push({ slot: c['slot.name'], connector: spec.name, signalTable, snapshotCollections: signalTable ? tables : [] });
  }
  return out;
}

/** Advisory lock key of the watchdog (distinct from migrations' and housekeeping's). */
export const WATCHDOG_LOCK_KEY = 727_001_011;

export interface CdcWatchdogDeps {
  pool: pg.Pool;
  logger: Logger;
  metrics: CdcMetrics;
  connectUrl: string;
  slots: WatchedSlot[];
  intervalMs: number;
  settleMs: number;
  timeoutMs: number;
  thresholds: SlotThresholds;
  /** Reconciles the Redis views with Postgres (views-maintenance reconcile with repair). */
  reconcile: () => Promise<void>;
  now?: () => number;
}

export class CdcWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly progress = new Map<string, SnapshotProgress>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly deps: CdcWatchdogDeps) {
    this.log = deps.logger.child({ component: 'cdc-watchdog' });
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: unknown) => {
          this.deps.metrics.watchdogRuns.inc({ result: 'error' });
          this.log.warn({ err: errorMessage(err) }, 'CDC watchdog tick failed; will retry');
        })
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(loop, this.deps.intervalMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round: metrics, then (holding the lock) one recovery step per slot. */
  async tick(): Promise<void> {
    const client = await this.deps.pool.connect();
    // A checked-out client has no pool error listener: without this, Postgres going away while
    // it is held would be an unhandled 'error' event.
    const onError = (err: Error) => this.log.warn({ err: err.message }, 'watchdog connection error');
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      const observations = await observeSlots(client, this.deps.slots.map((s) => s.slot));
      this.export(observations);
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [WATCHDOG_LOCK_KEY]);
      if (!rows[0]?.locked) {
        this.deps.metrics.watchdogRuns.inc({ result: 'standby' });
        return;
      }
      try {
        await this.recover(client, observations);
        this.deps.metrics.watchdogRuns.inc({ result: 'ok' });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [WATCHDOG_LOCK_KEY]);
      }
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private export(observations: SlotObservation[]): void {
    const m = this.deps.metrics;
    for (const o of observations) {
      m.present.set({ slot: o.slot }, o.present ? 1 : 0);
      m.active.set({ slot: o.slot }, o.active ? 1 : 0);
      m.retained.set({ slot: o.slot }, o.retainedBytes ?? 0);
      m.flushLag.set({ slot: o.slot }, o.flushLagBytes ?? 0);
      if (o.safeWalSizeBytes === null) m.safeWalSize.remove({ slot: o.slot });
      else m.safeWalSize.set({ slot: o.slot }, o.safeWalSizeBytes);
      for (const status of ['reserved', 'extended', 'unreserved', 'lost', 'missing']) {
        m.walStatus.set({ slot: o.slot, status }, (o.present ? o.walStatus : 'missing') === status ? 1 : 0);
      }
      const health = slotHealth(o, this.deps.thresholds);
      m.health.set({ slot: o.slot }, health === 'ok' ? 0 : health === 'warning' ? 1 : 2);
    }
  }

  private async connectorFailed(name: string): Promise<boolean | null> {
    try {
      const s = (await connectorStatuses(this.deps.connectUrl)).find((c) => c.name === name);
      if (!s) return null;
      return s.state === 'FAILED' || s.tasks.some((t) => t.state === 'FAILED');
    } catch {
      return null; // Connect unreachable: decide without it
    }
  }

  private async recover(client: pg.PoolClient, observations: SlotObservation[]): Promise<void> {
    const recoveries = await openRecoveries(client);
    for (const o of observations) {
      const slot = this.deps.slots.find((s) => s.slot === o.slot)!;
      const recovery = recoveries.get(o.slot) ?? null;
      if (!recovery && o.present && o.walStatus !== 'lost') continue; // the common case: healthy, nothing open
      let snapshot: SnapshotProgress | null = null;
      if (recovery?.stage === 'snapshotting' && slot.signalTable) {
        snapshot = nextProgress(this.progress.get(o.slot) ?? null, await countWindowCloses(client, slot.signalTable), this.now());
        this.progress.set(o.slot, snapshot);
      }
      const needsConnector = recovery?.stage === 'await_slot' && (!o.present || !o.active);
      const action = decideSlotAction(
        { observation: o, recovery, connectorFailed: needsConnector ? await this.connectorFailed(slot.connector) : false, snapshot, now: this.now() },
        { snapshotCollections: slot.snapshotCollections, settleMs: this.deps.settleMs, timeoutMs: this.deps.timeoutMs },
      );
      await this.apply(client, slot, action);
    }
  }

  private async apply(client: pg.PoolClient, slot: WatchedSlot, action: SlotAction): Promise<void> {
    const log = this.log.child({ slot: slot.slot, connector: slot.connector });
    const m = this.deps.metrics;
    switch (action.kind) {
      case 'none':
      case 'wait':
        if (action.kind === 'wait') log.debug({ why: action.why }, 'slot recovery waiting');
        return;
      case 'record_loss':
        await recordLoss(client, slot.slot, action.reason);
        this.progress.delete(slot.slot);
        m.losses.inc({ slot: slot.slot, reason: action.reason });
        log.error(
          { reason: action.reason },
          slot.snapshotCollections.length
            ? 'replication slot lost: changes committed while it is gone will not be streamed; recovering (new slot, incremental snapshot, reconcile)'
            : 'replication slot lost: changes committed while it is gone will not be streamed and are not re-published; waiting for a new slot',
        );
        return;
      case 'drop_lost_slot':
        if (await dropLostSlot(client, slot.slot)) log.warn('dropped the invalidated slot so the connector can create a new one');
        return;
      case 'restart_connector': {
        const url = `${this.deps.connectUrl}/connectors/${encodeURIComponent(slot.connector)}/restart?includeTasks=true&onlyFailed=true`;
        const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(15_000) }).catch((err: unknown) => err as Error);
        if (res instanceof Error || !res.ok) log.warn({ err: res instanceof Error ? res.message : `HTTP ${res.status}` }, 'connector restart refused; will retry');
        else log.warn('restarted the FAILED connector so it recreates its slot');
        return;
      }
      case 'signal_snapshot': {
        if (!slot.signalTable) return;
        await client.query('BEGIN');
        try {
          const id = await signalSnapshot(client, slot.slot, slot.signalTable, action.collections);
          await client.query('COMMIT');
          log.warn({ signal: id, collections: action.collections }, 'connector streams from a new slot; incremental snapshot requested');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        return;
      }
      case 'finish':
        if (action.reconcile) await this.deps.reconcile();
        await finishRecovery(client, slot.slot);
        this.progress.delete(slot.slot);
        m.recoveries.inc({ slot: slot.slot, result: action.timedOut ? 'timeout' : 'ok' });
        if (action.timedOut) log.warn('incremental snapshot did not settle in time; views reconciled with Postgres anyway');
        else log.warn({ reconciled: action.reconcile }, 'slot recovery finished');
        return;
    }
  }
}

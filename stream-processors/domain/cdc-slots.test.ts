import { describe, expect, it } from 'vitest';
import { decideSlotAction, nextProgress, slotHealth, snapshotSignalData, type RecoveryRecord, type SlotInput, type SlotObservation, type SlotPolicy } from './cdc-slots.ts';

const healthy: SlotObservation = { slot: 's', present: true, active: true, walStatus: 'reserved', retainedBytes: 1000, flushLagBytes: 100, safeWalSizeBytes: null };
const missing: SlotObservation = { slot: 's', present: false, active: false, walStatus: null, retainedBytes: null, flushLagBytes: null, safeWalSizeBytes: null };
const lost: SlotObservation = { ...healthy, walStatus: 'lost', active: false };
const policy: SlotPolicy = { snapshotCollections: ['public.stock_levels'], settleMs: 3000, timeoutMs: 60_000 };
const awaiting: RecoveryRecord = { slot: 's', reason: 'missing', stage: 'await_slot', detectedAt: 1000, signalId: null, signalledAt: null, windowBaseline: null };
const snapshotting: RecoveryRecord = { ...awaiting, stage: 'snapshotting', signalId: 'sig', signalledAt: 10_000, windowBaseline: 4 };

const input = (over: Partial<SlotInput>): SlotInput => ({ observation: healthy, recovery: null, connectorFailed: false, snapshot: null, now: 20_000, ...over });

describe('decideSlotAction', () => {
  it('does nothing for a healthy slot without a recovery', () => {
    expect(decideSlotAction(input({}), policy)).toEqual({ kind: 'none' });
  });

  it('records a missing slot and a slot whose WAL is lost', () => {
    expect(decideSlotAction(input({ observation: missing }), policy)).toEqual({ kind: 'record_loss', reason: 'missing' });
    expect(decideSlotAction(input({ observation: lost }), policy)).toEqual({ kind: 'record_loss', reason: 'lost' });
    // a finished recovery does not hide a new loss
    expect(decideSlotAction(input({ observation: missing, recovery: { ...snapshotting, stage: 'done' } }), policy)).toEqual({ kind: 'record_loss', reason: 'missing' });
  });

  it('waits for the connector to recreate a missing slot, restarting it when FAILED', () => {
    expect(decideSlotAction(input({ observation: missing, recovery: awaiting }), policy).kind).toBe('wait');
    expect(decideSlotAction(input({ observation: missing, recovery: awaiting, connectorFailed: null }), policy).kind).toBe('wait');
    expect(decideSlotAction(input({ observation: missing, recovery: awaiting, connectorFailed: true }), policy)).toEqual({ kind: 'restart_connector' });
  });

  it('drops a lost slot only once nothing streams from it', () => {
    const r = { ...awaiting, reason: 'lost' as const };
    expect(decideSlotAction(input({ observation: lost, recovery: r }), policy)).toEqual({ kind: 'drop_lost_slot' });
    expect(decideSlotAction(input({ observation: { ...lost, active: true }, recovery: r }), policy).kind).toBe('wait');
  });

  it('waits while a recreated slot is not streaming yet', () => {
    expect(decideSlotAction(input({ observation: { ...healthy, active: false }, recovery: awaiting }), policy).kind).toBe('wait');
  });

  it('requests the incremental snapshot once the new slot streams', () => {
    expect(decideSlotAction(input({ recovery: awaiting }), policy)).toEqual({ kind: 'signal_snapshot', collections: ['public.stock_levels'] });
  });

  it('finishes without reconciling when the slot captures nothing to snapshot', () => {
    expect(decideSlotAction(input({ recovery: awaiting }), { ...policy, snapshotCollections: [] })).toEqual({ kind: 'finish', reconcile: false, timedOut: false });
  });

  it('waits for the snapshot watermarks to settle, then reconciles', () => {
    const r = snapshotting;
    // no watermark since the signal yet
    expect(decideSlotAction(input({ recovery: r, snapshot: { windowCloses: 4, lastChangeAt: 5000 } }), policy).kind).toBe('wait');
    // watermarks still arriving
    expect(decideSlotAction(input({ recovery: r, snapshot: { windowCloses: 6, lastChangeAt: 19_000 } }), policy).kind).toBe('wait');
    // quiet for the settle time
    expect(decideSlotAction(input({ recovery: r, snapshot: { windowCloses: 6, lastChangeAt: 17_000 } }), policy)).toEqual({ kind: 'finish', reconcile: true, timedOut: false });
  });

  it('reconciles anyway after the timeout', () => {
    expect(decideSlotAction(input({ recovery: snapshotting, snapshot: null, now: 70_000 }), policy)).toEqual({ kind: 'finish', reconcile: true, timedOut: true });
  });

  it('starts over when the slot is lost again during the snapshot', () => {
    expect(decideSlotAction(input({ observation: missing, recovery: snapshotting }), policy)).toEqual({ kind: 'record_loss', reason: 'missing' });
  });
});

describe('snapshot helpers', () => {
  it('builds the execute-snapshot signal data', () => {
    expect(JSON.parse(snapshotSignalData(['public.stock_levels', 'public.products']))).toEqual({ 'data-collections': ['public.stock_levels', 'public.products'], type: 'incremental' });
  });

  it('tracks when the watermark count last changed', () => {
    const a = nextProgress(null, 3, 100);
    expect(a).toEqual({ windowCloses: 3, lastChangeAt: 100 });
    expect(nextProgress(a, 3, 200)).toBe(a);
    expect(nextProgress(a, 4, 300)).toEqual({ windowCloses: 4, lastChangeAt: 300 });
  });
});

describe('slotHealth', () => {
  const t = { retainedWarnBytes: 1024, retainedCriticalBytes: 4096 };
  it('grades retained WAL, status and activity', () => {
    expect(slotHealth({ ...healthy, retainedBytes: 10 }, t)).toBe('ok');
    expect(slotHealth({ ...healthy, retainedBytes: 2048 }, t)).toBe('warning');
    expect(slotHealth({ ...healthy, retainedBytes: 10, active: false }, t)).toBe('warning');
    expect(slotHealth({ ...healthy, retainedBytes: 10, walStatus: 'extended' }, t)).toBe('warning');
    expect(slotHealth({ ...healthy, retainedBytes: 5000 }, t)).toBe('critical');
    expect(slotHealth({ ...healthy, walStatus: 'unreserved' }, t)).toBe('critical');
    expect(slotHealth(lost, t)).toBe('critical');
    expect(slotHealth(missing, t)).toBe('critical');
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { available, decodeStockChange } from './stock-change.ts';

const fixture = (name: string) => fs.readFileSync(path.join(PROJECT_ROOT, 'tests', 'fixtures', 'cdc', name), 'utf8');

describe('decodeStockChange', () => {
  it('decodes a recorded Debezium update event', () => {
    const d = decodeStockChange(fixture('stock-levels-update.json'));
    expect(d).toEqual({
      ok: true,
      change: {
        op: 'update',
        sku: 'T1',
        locationId: 'L1',
        // Recorded before migration 0018: the incoming figures read as none.
        row: { sku: 'T1', locationId: 'L1', onHand: 15, reserved: 0, safetyStock: 0, version: 3, updatedAt: '2026-11-21T04:42:15.779917Z', incoming: 0, backordered: 0, nextEta: 0, policy: 0, limit: -1 },
        version: 3,
        commitTs: 1795236135779,
        capturedTs: 1795236135840,
        lsn: 31572752,
        txId: 736,
      },
    });
  });

  it('decodes the incoming figures of migration 0018 and refuses malformed ones', () => {
    const event = JSON.parse(fixture('stock-levels-update.json'));
    Object.assign(event.after, { incoming: 12, backordered: 3, next_eta: '2026-12-24T09:00:00.000000Z', backorder_policy: 'preorder', backorder_limit: null });
    const d = decodeStockChange(JSON.stringify(event));
    expect(d.ok && 'change' in d && d.change.row).toMatchObject({ incoming: 12, backordered: 3, nextEta: Date.parse('2026-12-24T09:00:00Z'), policy: 2, limit: -1 });
    for (const bad of [{ incoming: -1 }, { backordered: 1.5 }, { next_eta: 'soon' }, { backorder_policy: 'always' }, { backorder_limit: -3 }]) {
      const e = JSON.parse(fixture('stock-levels-update.json'));
      Object.assign(e.after, bad);
      expect(decodeStockChange(JSON.stringify(e)).ok, JSON.stringify(bad)).toBe(false);
    }
  });

  it('decodes a delete from the full old row in before, with its version', () => {
    const event = JSON.parse(fixture('stock-levels-update.json'));
    event.op = 'd';
    event.before = { sku: 'T1', location_id: 'L1', on_hand: 4, reserved: 0, safety_stock: 0, version: 41, updated_at: null };
    event.after = null;
    const d = decodeStockChange(JSON.stringify(event));
    expect(d.ok && 'change' in d && d.change).toMatchObject({ op: 'delete', sku: 'T1', locationId: 'L1', row: null, version: 41 });
  });

  it('refuses a delete that lacks the removed version (replica identity not FULL)', () => {
    const event = JSON.parse(fixture('stock-levels-update.json'));
    event.op = 'd';
    event.before = { sku: 'T1', location_id: 'L1' };
    event.after = null;
    expect(decodeStockChange(JSON.stringify(event))).toMatchObject({ ok: false, reason: expect.stringContaining('REPLICA IDENTITY FULL') });
  });

  it('reports a tombstone with its key', () => {
    expect(decodeStockChange(null, '{"sku":"A"}')).toEqual({ ok: true, tombstone: true, key: { sku: 'A' } });
    expect(decodeStockChange(null, '{"sku":"A","location_id":"B"}')).toEqual({
      ok: true,
      tombstone: true,
      key: { sku: 'A', locationId: 'B' },
    });
  });

  it.each([
    ['not json', 'value is not JSON'],
    ['[]', 'event is not an object'],
    ['{"op":"x","source":{"ts_ms":1}}', 'unsupported op "x"'],
    ['{"op":"u","source":{}}', 'source.ts_ms missing'],
    ['{"op":"u","source":{"ts_ms":1},"after":{"sku":"A","location_id":"B","on_hand":"5","reserved":0,"safety_stock":0,"version":1}}', 'after: quantities must be whole numbers from 0 to 2147483647'],
    ['{"op":"u","source":{"ts_ms":1,"table":"outbox"},"after":{}}', 'event is for table outbox, not stock_levels'],
  ])('refuses %s with a reason', (value, reason) => {
    expect(decodeStockChange(value)).toEqual({ ok: false, reason });
  });
});

describe('available', () => {
  it('is on hand minus reserved minus safety stock, never below zero', () => {
    expect(available({ onHand: 10, reserved: 3, safetyStock: 2 })).toBe(5);
    expect(available({ onHand: 1, reserved: 3, safetyStock: 2 })).toBe(0);
  });

  // Found by the fuzzer (docs/security.md#fuzzing-attacks-tried-and-their-results): quantities beyond Postgres/Avro `int` decoded fine,
  // were applied, and then the StockDelta could not be encoded: the batch failed with a
  // non-retriable error and the processor's consumer stopped for good.
  it.each([
    ['on_hand', 2 ** 31],
    ['reserved', 2 ** 53 - 1],
    ['safety_stock', -(2 ** 31) - 1],
    ['on_hand', -1],
  ])('refuses %s = %d (outside a Postgres int >= 0)', (field, value) => {
    const event = JSON.parse(fixture('stock-levels-update.json'));
    event.after[field] = value;
    expect(decodeStockChange(JSON.stringify(event))).toEqual({ ok: false, reason: 'after: quantities must be whole numbers from 0 to 2147483647' });
  });

  it('accepts the largest Postgres int', () => {
    const event = JSON.parse(fixture('stock-levels-update.json'));
    event.after.on_hand = 2_147_483_647;
    expect(decodeStockChange(JSON.stringify(event)).ok).toBe(true);
  });
});


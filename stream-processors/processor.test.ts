import { describe, expect, it } from 'vitest';
import type { RowChange } from './domain/fold.ts';
import { dlqMessage, shouldEmit } from './processor.ts';

const change = (version: number): RowChange => ({ sku: 'A', locationId: 'L', deleted: false, onHand: 1, reserved: 0, safetyStock: 0, version, commitTs: 0 });

describe('shouldEmit', () => {
  it('emits applied changes, and duplicates whose effects were not yet published', () => {
    expect(shouldEmit({ outcome: 'applied', published: 99, change: change(5) }, -1)).toBe(true);
    expect(shouldEmit({ outcome: 'duplicate', published: -1, change: change(5) }, -1)).toBe(true);
    expect(shouldEmit({ outcome: 'duplicate', published: 5, change: change(5) }, -1)).toBe(false);
    expect(shouldEmit({ outcome: 'duplicate', published: 3, change: change(5) }, 5)).toBe(false);
    expect(shouldEmit({ outcome: 'stale', published: -1, change: change(5) }, -1)).toBe(false);
  });
});

describe('dlqMessage', () => {
  it('keeps key and value untouched and says why and where in headers', () => {
    const m = dlqMessage(
      { reason: 'undecodable CDC event: value is not JSON', topic: 'cdc.public.stock_levels', partition: 2, message: { key: Buffer.from('k'), value: Buffer.from('v'), offset: '41', timestamp: '0', attributes: 0, headers: {} } },
      'grp',
      new Date('2026-11-21T00:00:00Z'),
    );
    expect(m.key).toEqual(Buffer.from('k'));
    expect(m.value).toEqual(Buffer.from('v'));
    expect(m.headers).toEqual({
      'dlq.reason': 'undecodable CDC event: value is not JSON',
      'dlq.source.topic': 'cdc.public.stock_levels',
      'dlq.source.partition': '2',
      'dlq.source.offset': '41',
      'dlq.processor': 'grp',
      'dlq.failed.at': '2026-11-21T00:00:00.000Z',
    });
  });
});

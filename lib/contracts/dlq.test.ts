import { describe, expect, it } from 'vitest';
import { decodeDeadLetter, DLQ_REASONS, dlqReason, encodeDeadLetter, reasonCode } from './dlq.ts';

const source = { key: Buffer.from('k'), value: Buffer.from('v'), offset: '41' };

describe('DLQ format', () => {
  it('keeps key and value untouched and says why and where in headers (the wire format readers rely on)', () => {
    const m = encodeDeadLetter(
      { code: DLQ_REASONS.cdcUndecodable, detail: 'value is not JSON', topic: 'cdc.public.stock_levels', partition: 2, message: source },
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

  it('adds the adjustment id for inbound adjustments that decoded', () => {
    const m = encodeDeadLetter({ code: 'negative_on_hand', detail: 'PICK of 5', topic: 'stock.adjustments', partition: 0, message: source, adjustmentId: 'adj-1' }, 'g');
    expect(m.headers?.['dlq.adjustment.id']).toBe('adj-1');
    expect(m.headers?.['dlq.reason']).toBe('negative_on_hand: PICK of 5');
  });

  it('reads back what it writes, from kafkajs Buffers or from strings', () => {
    const m = encodeDeadLetter({ code: 'invalid', detail: 'quantity: must be at least 1', topic: 't', partition: 3, message: source, adjustmentId: 'a' }, 'g', new Date(5));
    const asBuffers = Object.fromEntries(Object.entries(m.headers!).map(([k, v]) => [k, Buffer.from(String(v))]));
    for (const headers of [m.headers as Record<string, string>, asBuffers]) {
      expect(decodeDeadLetter({ key: m.key as Buffer, value: m.value as Buffer, headers })).toEqual({
        key: source.key,
        value: source.value,
        reason: 'invalid: quantity: must be at least 1',
        code: 'invalid',
        source: { topic: 't', partition: 3, offset: '41' },
        processor: 'g',
        failedAt: new Date(5),
        adjustmentId: 'a',
      });
    }
    expect(decodeDeadLetter({ key: null, value: 'x', headers: {} })).toBeNull();
  });

  it('has the code before the first colon, the detail may hold more', () => {
    expect(dlqReason('apply failed', 'ERR user_script:1: boom')).toBe('apply failed: ERR user_script:1: boom');
    expect(reasonCode('apply failed: ERR user_script:1: boom')).toBe('apply failed');
  });
});

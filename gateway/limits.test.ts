import { describe, expect, it } from 'vitest';
import { chunkItems, ConnectionCounter, hasControlChars, Semaphore, TokenBucket, validCursor } from './limits.ts';

describe('TokenBucket', () => {
  it('allows a burst, then the rate, and never more than the burst after a pause', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(1, 0), b.take(1, 0), b.take(1, 0), b.take(1, 0)]).toEqual([true, true, true, false]);
    expect(b.take(1, 499)).toBe(false);
    expect(b.take(1, 500)).toBe(true); // 2/s: one token per 500 ms
    expect(b.take(5, 60_000)).toBe(false); // a cost above the burst never passes
    expect(b.take(3, 60_000)).toBe(true);
  });

  it('takes nothing when refusing', () => {
    const b = new TokenBucket(1, 10, 0);
    expect(b.take(11, 0)).toBe(false);
    expect(b.take(10, 0)).toBe(true);
  });
});

describe('ConnectionCounter', () => {
  it('caps per address and in total; exempt addresses count in the total only', () => {
    const c = new ConnectionCounter(4, 2, new Set(['127.0.0.1']));
    expect(c.admit('10.0.0.1')).toEqual({ ok: true });
    expect(c.admit('10.0.0.1')).toEqual({ ok: true });
    expect(c.admit('10.0.0.1')).toEqual({ ok: false, reason: 'address' });
    expect(c.admit('127.0.0.1')).toEqual({ ok: true });
    expect(c.admit('127.0.0.1')).toEqual({ ok: true });
    expect(c.admit('10.0.0.2')).toEqual({ ok: false, reason: 'total' });
    c.release('10.0.0.1');
    expect(c.of('10.0.0.1')).toBe(1);
    expect(c.admit('10.0.0.2')).toEqual({ ok: true });
    expect(c.total).toBe(4);
  });
});

describe('Semaphore', () => {
  it('lets at most n through and hands slots on in order', async () => {
    const s = new Semaphore(2);
    const order: number[] = [];
    const r1 = await s.acquire();
    const r2 = await s.acquire();
    const third = s.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const fourth = s.acquire().then((r) => {
      order.push(4);
      return r;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    r1();
    r1(); // releasing twice frees one slot only
    const r3 = await third;
    expect(order).toEqual([3]);
    r2();
    (await fourth)();
    r3();
    expect(order).toEqual([3, 4]);
  });
});

describe('hasControlChars', () => {
  it('finds NUL, CR, LF, ESC and DEL; allows other text', () => {
    for (const bad of ['a\u0000b', 'x\r\n', '\u001b[31m', 'del\u007f', '\t']) expect(hasControlChars(bad)).toBe(true);
    for (const ok of ['SKU-1', 'ä-ß-€', 'a b', '']) expect(hasControlChars(ok)).toBe(false);
  });
});

describe('chunkItems', () => {
  it('keeps every group within the bound, items in order, and at least one group', () => {
    const items = Array.from({ length: 20 }, (_, i) => `{"sku":"S-${i}"}`);
    const groups = chunkItems(items, 50);
    expect(groups.flat()).toEqual(items);
    expect(groups.every((g) => g.reduce((n, s) => n + s.length + 1, 0) <= 50)).toBe(true);
    expect(chunkItems([], 50)).toEqual([[]]);
    expect(chunkItems(['x'.repeat(100), 'y'], 50)).toEqual([['x'.repeat(100)], ['y']]);
  });
});

describe('validCursor', () => {
  it('accepts stream ids whose halves fit in 64 bits', () => {
    expect(validCursor('0-0')).toBe(true);
    expect(validCursor('1795236135779-12')).toBe(true);
    expect(validCursor('18446744073709551615-18446744073709551615')).toBe(true);
    expect(validCursor('18446744073709551616-0')).toBe(false);
    expect(validCursor('99999999999999999999999-0')).toBe(false);
    expect(validCursor('1-')).toBe(false);
    expect(validCursor('-1-1')).toBe(false);
  });
});

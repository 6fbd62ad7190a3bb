import { describe, expect, it } from 'vitest';
import { compare, decodeRow, encodeRow, foldRow, rank, summarize, type RowChange, type SkuRows } from './fold.ts';
import { diffSku, repairFor } from './reconcile.ts';

const up = (locationId: string, version: number, onHand: number, extra: Partial<RowChange> = {}): RowChange => ({
  sku: 'S',
  locationId,
  deleted: false,
  onHand,
  reserved: 0,
  safetyStock: 0,
  version,
  commitTs: version * 10,
  ...extra,
});
const del = (locationId: string, version: number): RowChange => ({ ...up(locationId, version, 0), deleted: true });

describe('foldRow', () => {
  it('applies newer versions, ignores equal (duplicate) and older (stale) ones', () => {
    let rows: SkuRows = {};
    rows = foldRow(rows, up('A', 2, 10)).rows;
    expect(foldRow(rows, up('A', 2, 99)).outcome).toBe('duplicate');
    expect(foldRow(rows, up('A', 1, 99)).outcome).toBe('stale');
    const next = foldRow(rows, up('A', 3, 7));
    expect(next.outcome).toBe('applied');
    expect(next.rows.A).toMatchObject({ onHand: 7, version: 3 });
    expect(rows.A!.onHand).toBe(10); // pure: the input is not mutated
  });

  it('a delete supersedes the upsert of the same version, and blocks its replay', () => {
    let rows = foldRow({}, up('A', 4, 10)).rows;
    const d = foldRow(rows, del('A', 4));
    expect(d.outcome).toBe('applied');
    rows = d.rows;
    expect(rows.A).toMatchObject({ deleted: true, version: 4 });
    expect(foldRow(rows, up('A', 4, 10)).outcome).toBe('stale');
    expect(foldRow(rows, up('A', 9, 1)).outcome).toBe('applied'); // a later re-insert
    expect(rank(4, true)).toBeGreaterThan(rank(4, false));
    expect(compare(undefined, up('A', 1, 1))).toBe('applied');
  });
});

describe('summarize', () => {
  it('sums live locations, clamps each location at zero, and orders locations', () => {
    let rows: SkuRows = {};
    rows = foldRow(rows, up('B', 5, 10, { reserved: 2, safetyStock: 1 })).rows;
    rows = foldRow(rows, up('A', 6, 1, { reserved: 3 })).rows; // oversubscribed location: 0, not -2
    rows = foldRow(rows, up('C', 2, 50)).rows;
    rows = foldRow(rows, del('C', 2)).rows;
    const s = summarize('S', rows);
    expect(s).toMatchObject({ onHand: 11, reserved: 5, safetyStock: 1, available: 7, version: 6, deleted: false, commitTs: 60 });
    expect(s.locations.map((l) => [l.locationId, l.available])).toEqual([
      ['A', 0],
      ['B', 7],
    ]);
  });

  it('marks a SKU deleted when its newest event is a deletion', () => {
    const rows = foldRow(foldRow({}, up('A', 3, 5)).rows, del('A', 3)).rows;
    expect(summarize('S', rows)).toMatchObject({ available: 0, version: 3, deleted: true, locations: [] });
  });
});

describe('row encoding', () => {
  it('round-trips and refuses garbage', () => {
    const r = { onHand: 1, reserved: 2, safetyStock: 3, version: 1234567890123, deleted: true, commitTs: 1795236135779, incoming: 7, backordered: 2, nextEta: 1795300000000, policy: 2, limit: -1 };
    expect(decodeRow(encodeRow(r))).toEqual(r);
    // A row written before the incoming figures (six fields) reads them as none.
    expect(decodeRow('1|2|3|4|0|5')).toEqual({ onHand: 1, reserved: 2, safetyStock: 3, version: 4, deleted: false, commitTs: 5, incoming: 0, backordered: 0, nextEta: 0, policy: 0, limit: -1 });
    expect(decodeRow('1|2|3')).toBeUndefined();
    expect(decodeRow('a|b|c|d|e|f')).toBeUndefined();
  });

  it('reads any text exactly as splitting on | and Number() would (the fast path changes no answer)', () => {
    // The rule decodeRow had before its fast path, kept here as the specification.
    const spec = (text: string) => {
      const nums = text.split('|').map(Number);
      if ((nums.length !== 6 && nums.length !== 11) || nums.some((n) => !Number.isFinite(n))) return undefined;
      const [onHand, reserved, safetyStock, version, deleted, commitTs, incoming = 0, backordered = 0, nextEta = 0, policy = 0, limit = -1] = nums as number[];
      return { onHand, reserved, safetyStock, version, deleted: deleted === 1, commitTs, incoming, backordered, nextEta, policy, limit };
    };
    const cases = ['', '|||||', '-|1|2|3|4|5', '-0|1|2|3|0|5', '1|2|3|4|0|5|', ' 1|2|3|4|0|5', '1e3|2|3|4|0|5', '0x10|2|3|4|0|5', '1.5|2|3|4|0|5',
      '+1|2|3|4|0|5', '--1|2|3|4|0|5', '1-|2|3|4|0|5', '12345678901234567890|2|3|4|0|5', '9007199254740993|1|1|1|1|1', '1|2|3|4|1|5|6|7|8|9|-1', '1|2|3|4|1|5|6|7|8|9|-1|2', 'Infinity|2|3|4|0|5'];
    const alphabet = '0123456789||||--.e+ x';
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 20_000; i++) {
      const len = rnd(40);
      let t = '';
      for (let j = 0; j < len; j++) t += alphabet[rnd(alphabet.length)];
      cases.push(t);
      // Well-formed rows with random figures, 6 or 11 fields, some negative.
      const fields = Array.from({ length: rnd(2) ? 11 : 6 }, () => (rnd(5) === 0 ? -1 : 1) * rnd(2 ** 30) * (rnd(3) === 0 ? 2 ** 20 : 1));
      cases.push(fields.join('|'));
    }
    for (const text of cases) expect(decodeRow(text), text).toEqual(spec(text));
  });
});

describe('diffSku and repairFor', () => {
  const pg = { A: { onHand: 5, reserved: 0, safetyStock: 0, version: 10, deleted: false, commitTs: 0 }, B: { onHand: 1, reserved: 0, safetyStock: 0, version: 8, deleted: false, commitTs: 0 } };

  it('finds missing, stale, mismatched and extra rows; Redis ahead is not drift', () => {
    const redis = {
      A: { ...pg.A, onHand: 6 }, // same version, other number
      C: { onHand: 1, reserved: 0, safetyStock: 0, version: 3, deleted: false, commitTs: 0 }, // not in Postgres
    };
    expect(diffSku('S', pg, redis).map((d) => `${d.kind}:${d.locationId}`)).toEqual(['mismatch:A', 'missing_in_redis:B', 'missing_in_postgres:C']);
    expect(diffSku('S', pg, { A: { ...pg.A, version: 9 }, B: pg.B }).map((d) => d.kind)).toEqual(['stale']);
    expect(diffSku('S', pg, { A: { ...pg.A, version: 11, onHand: 0 }, B: pg.B })).toEqual([]);
  });

  it('repairs by the same ordered apply: a forced overwrite only for a mismatch', () => {
    const [mismatch, missing, extra] = diffSku('S', pg, { A: { ...pg.A, onHand: 6 }, C: { onHand: 1, reserved: 0, safetyStock: 0, version: 3, deleted: false, commitTs: 0 } });
    expect(repairFor(mismatch!)).toMatchObject({ force: true, change: { locationId: 'A', onHand: 5, version: 10, deleted: false } });
    expect(repairFor(missing!)).toMatchObject({ force: false, change: { locationId: 'B', version: 8 } });
    expect(repairFor(extra!)).toMatchObject({ force: false, change: { locationId: 'C', version: 3, deleted: true } });
  });
});

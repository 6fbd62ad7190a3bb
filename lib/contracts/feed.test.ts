import { describe, expect, it } from 'vitest';
import type { StockAlert, StockLevel } from '../../schemas/generated/avro-types.ts';
import { decodeAlertEntry, decodeFeedEntry, decodeFeedStates, encodeAlertEntry, encodeFeedEntry, encodeFeedPack, FEED_PACK_MAX, feedLocations, feedTrimLength, toSkuState } from './feed.ts';

const level: StockLevel = {
  sku: 'SKU-"1"',
  channels: null,
  incoming: null,
  onHand: 10,
  reserved: 2,
  safetyStock: 1,
  available: 7,
  version: 42,
  deleted: false,
  commitTs: 1_795_236_135_779,
  locations: [{ locationId: 'WH-1', onHand: 10, reserved: 2, safetyStock: 1, available: 7, version: 42 }],
};

/** What XREAD returns for an entry written with these fields: every value as a string. */
const asRead = (fields: Array<string | number>) => fields.map(String);

describe('feed entry codec', () => {
  it('writes the fields the readers have always read, in order', () => {
    expect(encodeFeedEntry(level)).toEqual([
      'sku', 'SKU-"1"', 'available', 7, 'onHand', 10, 'reserved', 2, 'safetyStock', 1, 'version', 42, 'deleted', 0,
      'commitTs', 1_795_236_135_779, 'locations', '[{"locationId":"WH-1","onHand":10,"reserved":2,"safetyStock":1,"available":7,"version":42}]',
    ]);
  });

  it('round-trips a state through Redis strings', () => {
    const state = decodeFeedEntry(asRead(encodeFeedEntry(level)));
    expect(state).toEqual(toSkuState(level));
    expect(feedLocations(state!)).toEqual(level.locations);
    const deleted = { ...level, deleted: true, locations: [] };
    expect(decodeFeedEntry(asRead(encodeFeedEntry(deleted)))).toEqual({ ...toSkuState(deleted), locationsJson: '[]' });
  });

  it('reads missing fields as 0 / none and skips an entry without a SKU', () => {
    expect(decodeFeedEntry(['sku', 'A', 'version', '3'])).toEqual({
      sku: 'A', channels: null, incoming: null, available: 0, onHand: 0, reserved: 0, safetyStock: 0, version: 3, deleted: false, commitTs: 0, locationsJson: '[]',
    });
    expect(decodeFeedEntry(['available', '1'])).toBeUndefined();
    expect(decodeFeedEntry([])).toBeUndefined();
  });
});

describe('feed packs', () => {
  const withChannels: StockLevel = { ...level, sku: 'B', version: 43, channels: { web: 5, 'market\u00e9': 0 } };
  const withIncoming: StockLevel = { ...level, sku: 'C', deleted: true, locations: [], incoming: { incoming: 12, nextEta: null, backordered: 3, backorderable: 9, policy: 'preorder' } };

  it('round-trips several states in order, channels and incoming included, as the single entries would', () => {
    const fields = encodeFeedPack([level, withChannels, withIncoming], 7);
    expect(fields[0]).toBe('pack');
    const states = decodeFeedStates(asRead(fields));
    const singles = [level, withChannels, withIncoming].map((s) => decodeFeedEntry(asRead(encodeFeedEntry(s, 7)))!);
    expect(states).toEqual(singles);
    expect(states[1]).toMatchObject({ channels: { web: 5, 'market\u00e9': 0 }, cfg: 7 });
    expect(states[0]).not.toHaveProperty('cfg');
    expect(feedLocations(states[0]!)).toEqual(level.locations);
  });

  it('reads a single-state entry as one state, and a pack of none as none', () => {
    expect(decodeFeedStates(asRead(encodeFeedEntry(level)))).toEqual([toSkuState(level)]);
    expect(decodeFeedStates(asRead(encodeFeedPack([])))).toEqual([]);
    expect(decodeFeedStates(['available', '1'])).toEqual([]);
  });

  it('leaves out what does not decode, without throwing, and keeps the rows that do', () => {
    const good = JSON.parse(encodeFeedPack([level])[1]) as unknown[][];
    const row = good[0]!;
    const hostile: unknown[] = [
      null, 1, 'x', {}, [], row.slice(0, 11),
      ['', ...row.slice(1)], [7, ...row.slice(1)],
      [row[0], 'NaN', ...row.slice(2)], [row[0], null, ...row.slice(2)], [...row.slice(0, 5), 1e400, ...row.slice(6)],
      [...row.slice(0, 8), ['not text'], ...row.slice(9)], [...row.slice(0, 10), 'cfg', row[11]],
    ];
    for (const bad of hostile) expect(decodeFeedStates(['pack', JSON.stringify([bad])])).toEqual([]);
    expect(decodeFeedStates(['pack', JSON.stringify([...hostile, row])])).toEqual([toSkuState(level)]);
    for (const text of ['', '{', 'null', '{"a":1}', '"pack"', '[1,2', '\u0000']) expect(decodeFeedStates(['pack', text])).toEqual([]);
    expect(decodeFeedStates(['pack'])).toEqual([]);
    // Figures that are not what they claim to be read as none, as in a single entry.
    const oddFigures = [...row.slice(0, 9), { web: -1 }, 3, { incoming: 'many' }];
    expect(decodeFeedStates(['pack', JSON.stringify([oddFigures])])).toEqual([{ ...toSkuState(level), channels: null, incoming: null, cfg: 3 }]);
  });

  it('keeps about maxLen states in the stream: a pack of n is added with MAXLEN maxLen / n', () => {
    expect(feedTrimLength(100_000, 1)).toBe(100_000);
    expect(feedTrimLength(100_000, FEED_PACK_MAX)).toBe(100_000 / FEED_PACK_MAX);
    expect(feedTrimLength(100_000, 3)).toBe(33_333);
    expect(feedTrimLength(10, 100)).toBe(1);
    expect(feedTrimLength(10, 0)).toBe(10);
  });
});

describe('alert entry codec', () => {
  const alert: StockAlert = { alertId: 'S|1||42|LOW_STOCK', sku: 'S|1', channel: null, kind: 'LOW_STOCK', available: 3, threshold: 5, version: 42, commitTs: 1_795_236_135_779 };

  it('round-trips an alert, pooled and per channel', () => {
    expect(decodeAlertEntry(asRead(encodeAlertEntry(alert)))).toEqual(alert);
    const web = { ...alert, channel: 'web', alertId: 'S|1|web|42|LOW_STOCK' };
    expect(decodeAlertEntry(asRead(encodeAlertEntry(web)))).toEqual(web);
  });

  it('is not fooled by a feed entry or an unknown kind', () => {
    expect(decodeAlertEntry(asRead(encodeFeedEntry(level)))).toBeUndefined();
    expect(decodeAlertEntry(asRead(encodeAlertEntry({ ...alert, kind: 'SOLD_OUT' as never })))).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import type { StockAlert, StockLevel } from '../../schemas/generated/avro-types.ts';
import { decodeAlertEntry, decodeFeedEntry, encodeAlertEntry, encodeFeedEntry, feedLocations, toSkuState } from './feed.ts';

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

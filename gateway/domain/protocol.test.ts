import { describe, expect, it } from 'vitest';
import type { SkuState } from '../../lib/contracts/feed.ts';
import { deltasFrame, errorFrame, isNewer, itemJson, parseClientFrame, snapshotFrame } from './protocol.ts';

const state: SkuState = {
  sku: 'SKU-"1"',
  channels: null,
  incoming: null,
  available: 7,
  onHand: 10,
  reserved: 2,
  safetyStock: 1,
  version: 42,
  deleted: false,
  commitTs: 1795236135779,
  locationsJson: '[{"locationId":"WH-1","onHand":10,"reserved":2,"safetyStock":1,"available":7,"version":42}]',
};

describe('parseClientFrame', () => {
  it('accepts the three ops, with optional id and since', () => {
    expect(parseClientFrame('{"op":"subscribe","skus":["A","B"],"since":"1795236135779-3","id":1}')).toEqual({
      ok: true,
      frame: { op: 'subscribe', skus: ['A', 'B'], since: '1795236135779-3', id: 1 },
    });
    expect(parseClientFrame('{"op":"subscribe","skus":"*"}')).toMatchObject({ ok: true });
    expect(parseClientFrame('{"op":"unsubscribe","skus":["A"]}')).toMatchObject({ ok: true });
    expect(parseClientFrame('{"op":"ping","id":"x"}')).toEqual({ ok: true, frame: { op: 'ping', id: 'x' } });
  });

  it.each([
    ['{oops', 'invalid_json', 'frame is not valid JSON'],
    ['[1,2]', 'invalid_frame', 'frame must be a JSON object'],
    ['{"op":"dance"}', 'invalid_frame', 'unknown op "dance": expected subscribe, unsubscribe, ping or auth'],
    ['{"skus":["A"]}', 'invalid_frame', 'unknown op null: expected subscribe, unsubscribe, ping or auth'],
    ['{"op":"subscribe","skus":[]}', 'invalid_frame', 'skus: must name at least one SKU'],
    ['{"op":"subscribe","skus":[""]}', 'invalid_frame', 'skus.0: must not be empty'],
    ['{"op":"subscribe","skus":["A"],"since":"yesterday"}', 'invalid_frame', 'since: must be a cursor from a snapshot or deltas frame'],
    ['{"op":"subscribe","skus":["A"],"extra":true}', 'invalid_frame', 'frame: Unrecognized key: "extra"'],
    ['{"op":"subscribe","skus":["A"],"since":"99999999999999999999999-0"}', 'invalid_frame', 'since: must be a cursor from a snapshot or deltas frame'],
    ['{"op":"subscribe","skus":["A"],"since":"18446744073709551616-0"}', 'invalid_frame', 'since: must be a cursor from a snapshot or deltas frame'],
    ['{"op":"subscribe","skus":["A\\u0000B"]}', 'invalid_frame', 'skus.0: must not contain control characters'],
    ['{"op":"unsubscribe","skus":["A\\nB"]}', 'invalid_frame', 'skus.0: must not contain control characters'],
  ])('refuses %s', (text, code, message) => {
    expect(parseClientFrame(text)).toEqual({ ok: false, error: { code, message } });
  });

  it('echoes the id of a refused frame', () => {
    expect(parseClientFrame('{"op":"subscribe","skus":7,"id":"r1"}')).toMatchObject({ ok: false, error: { id: 'r1' } });
  });
});

describe('items and frames', () => {
  it('storefront items carry public availability only; wms/erp items carry locations', () => {
    const shop = JSON.parse(itemJson(state, 'storefront'));
    expect(shop).toEqual({ sku: 'SKU-"1"', available: 7, version: 42, commitTs: 1795236135779 });
    const wms = JSON.parse(itemJson(state, 'wms'));
    expect(wms).toMatchObject({ sku: 'SKU-"1"', deleted: false, onHand: 10, reserved: 2, safetyStock: 1 });
    expect(wms.locations[0]).toMatchObject({ locationId: 'WH-1', available: 7 });
  });

  it('builds valid JSON frames', () => {
    const items = [itemJson(state, 'storefront')];
    expect(JSON.parse(deltasFrame('1-0', 5, items))).toEqual({ type: 'deltas', cursor: '1-0', rts: 5, items: [JSON.parse(items[0]!)] });
    expect(JSON.parse(snapshotFrame('1-0', items, ['X'], 'q'))).toMatchObject({ type: 'snapshot', unknown: ['X'], id: 'q' });
    expect(JSON.parse(errorFrame('too_many_skus', 'no'))).toEqual({ type: 'error', code: 'too_many_skus', message: 'no' });
  });

  it('orders SKU states by (version, deleted)', () => {
    expect(isNewer(undefined, { version: 1, deleted: false })).toBe(true);
    expect(isNewer({ version: 2, deleted: false }, { version: 3, deleted: false })).toBe(true);
    expect(isNewer({ version: 3, deleted: false }, { version: 3, deleted: false })).toBe(false);
    expect(isNewer({ version: 3, deleted: false }, { version: 3, deleted: true })).toBe(true);
    expect(isNewer({ version: 3, deleted: true }, { version: 3, deleted: false })).toBe(false);
    expect(isNewer({ version: 4, deleted: false }, { version: 3, deleted: true })).toBe(false);
  });
});

describe('itemJson with incoming stock (docs/incoming.md)', () => {
  const withIncoming: SkuState = { ...state, incoming: { incoming: 12, nextEta: Date.parse('2026-12-24T09:00:00Z'), backordered: 3, backorderable: 9, policy: 'preorder' } };

  it('storefront items carry incoming, nextEta and backorderable; wms items add backordered', () => {
    expect(JSON.parse(itemJson(withIncoming, 'storefront'))).toEqual({
      sku: state.sku, available: 7, version: 42, commitTs: state.commitTs, incoming: 12, nextEta: '2026-12-24T09:00:00.000Z', backorderable: 9,
    });
    expect(JSON.parse(itemJson(withIncoming, 'wms'))).toMatchObject({ incoming: 12, nextEta: '2026-12-24T09:00:00.000Z', backorderable: 9, backordered: 3 });
    expect(JSON.parse(itemJson({ ...withIncoming, incoming: { ...withIncoming.incoming!, nextEta: null } }, 'storefront')).nextEta).toBeNull();
  });

  it('a SKU without incoming stock keeps the item it always had', () => {
    expect(Object.keys(JSON.parse(itemJson(state, 'storefront')))).toEqual(['sku', 'available', 'version', 'commitTs']);
  });
});

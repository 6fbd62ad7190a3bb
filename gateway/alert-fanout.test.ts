import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { StockAlert } from '../schemas/generated/avro-types.ts';
import { AlertFanout } from './alert-fanout.ts';
import { Connection, Hub } from './hub.ts';
import { createGatewayMetrics } from './metrics.ts';

/** Enough of a ws WebSocket for Hub.send: frames land in `sent`. */
class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  readonly raw = { destroyed: false, write: () => true };
  send(data: Buffer) {
    this.sent.push(data.toString());
  }
  close() {}
  terminate() {}
  frames() {
    return this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

const alert = (over: Partial<StockAlert> = {}): StockAlert => {
  const a = { sku: 'A', channel: null, kind: 'LOW_STOCK' as const, available: 3, threshold: 5, version: 7, commitTs: 1_700_000_000_000, ...over };
  return { alertId: `${a.sku}|${a.channel ?? ''}|${a.version}|${a.kind}`, ...a };
};

function setup() {
  const hub = new Hub({ tickMs: 1000, maxBufferedBytes: 1 << 20, metrics: createGatewayMetrics({ defaults: false }), cursor: () => '1-1' });
  const conn = (channel: 'storefront' | 'wms', skus: string[] | '*') => {
    const ws = new FakeSocket();
    const c = new Connection(ws as unknown as WebSocket, channel, ws.raw);
    hub.add(c);
    hub.subscribe(c, skus);
    return ws;
  };
  return { hub, conn, fanout: new AlertFanout({ hub, remember: 3 }) };
}

describe('AlertFanout', () => {
  it('sends an alert frame to the SKU\'s storefront subscribers and to wms/erp, nobody else', () => {
    const { conn, fanout } = setup();
    const shopA = conn('storefront', ['A']);
    const shopB = conn('storefront', ['B']);
    const wmsAll = conn('wms', '*');
    expect(fanout.publish([alert()])).toBe(2);
    expect(shopA.frames()).toEqual([{ type: 'alert', alertId: 'A||7|LOW_STOCK', sku: 'A', channel: null, kind: 'LOW_STOCK', available: 3, version: 7, commitTs: 1_700_000_000_000 }]);
    expect(wmsAll.frames()).toEqual([{ ...shopA.frames()[0], threshold: 5 }]);
    expect(shopB.frames()).toEqual([]);
  });

  it('sends each alert once however often the stream repeats it, and never coalesces two alerts of a SKU', () => {
    const { conn, fanout } = setup();
    const shop = conn('storefront', ['A']);
    const out = alert({ kind: 'OUT_OF_STOCK', available: 0, version: 8 });
    const back = alert({ kind: 'BACK_IN_STOCK', available: 2, version: 9 });
    fanout.publish([out, back, out]);
    fanout.publish([back]);
    expect(shop.frames().map((f) => f.kind)).toEqual(['OUT_OF_STOCK', 'BACK_IN_STOCK']);
  });

  it('per-channel alerts go to wms/erp only', () => {
    const { conn, fanout } = setup();
    const shop = conn('storefront', ['A']);
    const wms = conn('wms', ['A']);
    fanout.publish([alert({ channel: 'web' })]);
    expect(shop.frames()).toEqual([]);
    expect(wms.frames().map((f) => f.channel)).toEqual(['web']);
  });
});

import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { FeedEntry } from './adapters/feed.ts';
import { Connection, Hub } from './hub.ts';
import { createGatewayMetrics } from './metrics.ts';

class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: Buffer[] = [];
  /** The raw socket the hub writes pre-encoded frames to (strip the 2-4 byte header back off). */
  readonly _socket = {
    destroyed: false,
    write: (frame: Buffer) => {
      const n = frame[1]! & 0x7f;
      this.sent.push(frame.subarray(n < 126 ? 2 : n === 126 ? 4 : 10));
      return true;
    },
  };
  closedWith: number | undefined;
  send(data: Buffer) {
    this.sent.push(data);
  }
  close(code: number) {
    this.closedWith = code;
  }
  terminate() {}
  frames() {
    return this.sent.map((b) => JSON.parse(b.toString()) as { type: string; items: Array<{ sku: string; version: number; available: number }> });
  }
}

let seq = 0;
function entry(sku: string, version: number, available = version, deleted = false): FeedEntry {
  seq++;
  return {
    id: `1-${seq}`,
    rts: 1000 + seq,
    state: { sku, available, onHand: available, reserved: 0, safetyStock: 0, version, deleted, commitTs: 1, locationsJson: '[]' },
  };
}

function setup(maxBufferedBytes = 1 << 20) {
  const hub = new Hub({ tickMs: 1000, maxBufferedBytes, metrics: createGatewayMetrics({ defaults: false }), cursor: () => '9-9' });
  const conn = (channel: 'storefront' | 'wms' = 'storefront') => {
    const ws = new FakeSocket();
    const c = new Connection(ws as unknown as WebSocket, channel);
    hub.add(c);
    return { c, ws };
  };
  return { hub, conn };
}

describe('Hub', () => {
  it('coalesces a tick to the newest state per SKU and never sends an older one', () => {
    const { hub, conn } = setup();
    const { c, ws } = conn();
    hub.subscribe(c, ['A', 'B']);
    hub.publish([entry('A', 1), entry('A', 3), entry('A', 2), entry('B', 5), entry('C', 9)]);
    hub.tick();
    expect(ws.frames()).toHaveLength(1);
    expect(ws.frames()[0]!.items.map((i) => [i.sku, i.version])).toEqual([
      ['A', 3],
      ['B', 5],
    ]);
    hub.publish([entry('A', 2)]); // older than what was sent
    hub.tick();
    expect(ws.frames()).toHaveLength(1);
    hub.publish([entry('A', 3, 3, true)]); // same version, deleted: newer
    hub.tick();
    expect(ws.frames()[1]!.items).toEqual([expect.objectContaining({ sku: 'A', version: 3 })]);
  });

  it('shares one encoded frame between connections that get the same items', () => {
    const { hub, conn } = setup();
    const a = conn();
    const b = conn();
    const w = conn('wms');
    for (const x of [a, b, w]) hub.subscribe(x.c, ['A']);
    hub.publish([entry('A', 7)]);
    hub.tick();
    expect(a.ws.sent[0]!.buffer).toBe(b.ws.sent[0]!.buffer); // the same encoded bytes, shared
    expect(w.ws.sent[0]).not.toBe(a.ws.sent[0]); // full items for wms
    expect(JSON.parse(w.ws.sent[0]!.toString()).items[0]).toHaveProperty('locations');
  });

  it('a snapshot newer than a live entry suppresses it; unsubscribed SKUs are not sent', () => {
    const { hub, conn } = setup();
    const { c, ws } = conn();
    hub.subscribe(c, ['A', 'B']);
    hub.sendSnapshot(c, [entry('A', 10).state], []);
    hub.publish([entry('A', 8), entry('B', 1)]);
    hub.unsubscribe(c, ['B']);
    hub.tick();
    expect(ws.frames()).toHaveLength(1); // the snapshot only
    expect(ws.frames()[0]!.type).toBe('snapshot');
  });

  it('wildcard subscribers get every SKU once', () => {
    const { hub, conn } = setup();
    const { c, ws } = conn('wms');
    hub.subscribe(c, '*');
    hub.subscribe(c, ['A']);
    hub.publish([entry('A', 1), entry('Z', 2)]);
    hub.tick();
    expect(ws.frames()[0]!.items.map((i) => i.sku).sort()).toEqual(['A', 'Z']);
  });

  it('closes a slow consumer with 4008 instead of queueing more', () => {
    const { hub, conn } = setup(1000);
    const { c, ws } = conn();
    hub.subscribe(c, ['A']);
    ws.bufferedAmount = 990;
    hub.publish([entry('A', 1)]);
    hub.tick();
    expect(ws.closedWith).toBe(4008);
    expect(ws.sent).toHaveLength(0);
    hub.publish([entry('A', 2)]);
    hub.tick();
    expect(ws.sent).toHaveLength(0);
  });
});

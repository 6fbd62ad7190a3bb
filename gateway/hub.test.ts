import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { FeedEntry } from './adapters/feed.ts';
import { Connection, Hub } from './hub.ts';
import { createGatewayMetrics } from './metrics.ts';

class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  /** When set, every write stays in the buffer (nothing drains while the hub writes). */
  grow = false;
  sent: Buffer[] = [];
  /** The raw socket the hub writes pre-encoded frames to (strip the 2-4 byte header back off). */
  readonly raw = {
    destroyed: false,
    write: (frame: Buffer) => {
      if (this.grow) this.bufferedAmount += frame.length;
      const n = frame[1]! & 0x7f;
      this.sent.push(frame.subarray(n < 126 ? 2 : n === 126 ? 4 : 10));
      return true;
    },
  };
  closedWith: number | undefined;
  send(data: Buffer) {
    if (this.grow) this.bufferedAmount += data.length;
    this.sent.push(data);
  }
  close(code: number) {
    this.closedWith = code;
  }
  terminate() {}
  frames() {
    return this.sent.map(
      (b) => JSON.parse(b.toString()) as { type: string; more?: boolean; id?: string; unknown?: string[]; items: Array<{ sku: string; version: number; available: number }> },
    );
  }
}

let seq = 0;
function entry(sku: string, version: number, available = version, deleted = false): FeedEntry {
  seq++;
  return {
    id: `1-${seq}`,
    rts: 1000 + seq,
    state: { sku, available, onHand: available, reserved: 0, safetyStock: 0, version, deleted, commitTs: 1, locationsJson: '[]', channels: null, incoming: null },
  };
}

function setup(maxBufferedBytes = 1 << 20, maxReplyFrameBytes?: number) {
  const hub = new Hub({ tickMs: 1000, maxBufferedBytes, maxReplyFrameBytes, metrics: createGatewayMetrics({ defaults: false }), cursor: () => '9-9' });
  const conn = (channel: 'storefront' | 'wms' = 'storefront') => {
    const ws = new FakeSocket();
    const c = new Connection(ws as unknown as WebSocket, channel, ws.raw);
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
    ws.bufferedAmount = 1010; // already over the bound before this tick's frame
    hub.publish([entry('A', 1)]);
    hub.tick();
    expect(ws.closedWith).toBe(4008);
    expect(ws.sent).toHaveLength(0);
    hub.publish([entry('A', 2)]);
    hub.tick();
    expect(ws.sent).toHaveLength(0);
  });

  it('the frame being written does not count: a backlog under the bound gets its frame', () => {
    const { hub, conn } = setup(1000);
    const { c, ws } = conn();
    hub.subscribe(c, ['A']);
    ws.bufferedAmount = 990;
    hub.publish([entry('A', 1)]);
    hub.tick();
    expect(ws.closedWith).toBeUndefined();
    expect(ws.frames()).toHaveLength(1);
  });

  it('a snapshot larger than the slow-consumer bound goes out in bounded frames to a fast client (finding 8)', () => {
    const { hub, conn } = setup(2000, 600);
    const { c, ws } = conn();
    ws.grow = true; // nothing drains while the hub writes
    const skus = Array.from({ length: 100 }, (_, i) => `SKU-${String(i).padStart(4, '0')}`);
    hub.subscribe(c, skus);
    hub.sendSnapshot(c, skus.map((s) => entry(s, 1).state), ['GONE'], 'req-1');
    expect(ws.closedWith).toBeUndefined();
    const frames = ws.frames();
    expect(frames.length).toBeGreaterThan(3);
    expect(frames.every((f) => f.type === 'snapshot')).toBe(true);
    expect(ws.sent.every((b) => b.length <= 600 + 200)).toBe(true);
    expect(frames.slice(0, -1).every((f) => f.more === true && f.id === undefined)).toBe(true);
    expect(frames.at(-1)).toMatchObject({ id: 'req-1', unknown: ['GONE'] });
    expect(frames.at(-1)!.more).toBeUndefined();
    expect(frames.flatMap((f) => f.items.map((i) => i.sku))).toEqual(skus);
    // Still draining the reply when the next tick comes: not a slow consumer.
    hub.publish([entry('SKU-0001', 2)]);
    hub.tick();
    expect(ws.closedWith).toBeUndefined();
    expect(ws.frames().at(-1)!.type).toBe('deltas');
  });

  it('a client that stops reading after a large reply is still closed with 4008', () => {
    const { hub, conn } = setup(2000, 600);
    const { c, ws } = conn();
    ws.grow = true;
    const skus = Array.from({ length: 100 }, (_, i) => `SKU-${i}`);
    hub.subscribe(c, skus);
    hub.sendSnapshot(c, skus.map((s) => entry(s, 1).state), []);
    for (let v = 2; v < 200 && ws.closedWith === undefined; v++) {
      hub.publish(skus.map((s) => entry(s, v)));
      hub.tick();
    }
    expect(ws.closedWith).toBe(4008);
  });

  it('a large replay is split into several deltas frames, each SKU once, in order', () => {
    const { hub, conn } = setup(1 << 20, 1000);
    const { c, ws } = conn('wms');
    const skus = Array.from({ length: 50 }, (_, i) => `R-${i}`);
    hub.subscribe(c, skus);
    hub.replay(c, skus.map((s) => entry(s, 3)));
    hub.tick();
    const frames = ws.frames();
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.every((f) => f.type === 'deltas')).toBe(true);
    expect(frames.flatMap((f) => f.items.map((i) => i.sku))).toEqual(skus);
  });

  it('a connection dropped as a slow consumer is not indexed again by a later subscribe', () => {
    const { hub, conn } = setup(1000);
    const { c, ws } = conn();
    hub.subscribe(c, ['A']);
    ws.bufferedAmount = 5000;
    hub.send(c, '{"type":"pong"}');
    expect(ws.closedWith).toBe(4008);
    expect(hub.connections.has(c)).toBe(false);
    expect(hub.subscribe(c, ['B'])).toEqual([]);
    hub.publish([entry('B', 1)]);
    hub.tick();
    expect(ws.sent).toHaveLength(0);
  });
});

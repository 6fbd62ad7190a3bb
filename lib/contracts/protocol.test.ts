import { describe, expect, it } from 'vitest';
import { CHANNELS, CLIENT_OPS, CLOSE_CODES, isChannel, shouldReconnect } from './protocol.ts';

describe('protocol contract', () => {
  it('has one entry per close code, and reconnects exactly on the transient ones', () => {
    const codes = Object.values(CLOSE_CODES).map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.filter(shouldReconnect).sort()).toEqual([1001, 1006, 1011, 1012, 1013, 4005, 4008]);
    expect(shouldReconnect(4999)).toBe(false);
  });

  it('names the channels and ops of docs/websocket.md', () => {
    expect(CHANNELS).toEqual(['storefront', 'wms', 'erp']);
    expect(CLIENT_OPS).toEqual(['subscribe', 'unsubscribe', 'ping', 'auth']);
    expect(isChannel('wms')).toBe(true);
    expect(isChannel('admin')).toBe(false);
  });
});

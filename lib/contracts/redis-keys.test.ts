import { describe, expect, it } from 'vitest';
import { redisKeys } from './redis-keys.ts';

// The strings are a contract between processes and releases: Lua scripts, other processes and
// data already in Redis rely on them. A change here is a migration, not a refactor.
describe('redisKeys', () => {
  const k = redisKeys('inv');

  it('lays out the views, the feed and the epoch as before', () => {
    expect(k.rows('SKU-1')).toBe('inv:{SKU-1}:rows');
    expect(k.summary('SKU-1')).toBe('inv:{SKU-1}');
    expect(k.feed).toBe('inv:feed');
    expect(k.rowsPattern).toBe('inv:{*}:rows');
    expect(k.epoch).toBe('inv:epoch');
    expect(k.epochLock).toBe('inv:epoch:lock');
  });

  it('lays out the purchase gate as before', () => {
    expect(k.gate('SKU-1')).toBe('inv:{SKU-1}:gate');
    expect(k.gatePending('SKU-1')).toBe('inv:{SKU-1}:gate:pending');
    expect(k.gateHolds('SKU-1')).toBe('inv:{SKU-1}:gate:holds');
    expect(k.gateCustomers('SKU-1')).toBe('inv:{SKU-1}:gate:cust');
    expect(k.gatePattern).toBe('inv:{*}:gate');
    expect(k.unsettled).toBe('inv:gate:unsettled');
    expect(k.hold('h-1')).toBe('inv:hold:h-1');
    expect(k.idempotency('c%3A1:key-1')).toBe('inv:idem:c%3A1:key-1');
    expect(k.rateCustomer('c-1')).toBe('inv:rl:c:c-1');
    expect(k.rateAddress('10.0.0.1')).toBe('inv:rl:a:10.0.0.1');
  });

  it('lays out the waiting room as before', () => {
    expect(k.waitingRoom('SKU-1')).toBe('inv:{SKU-1}:wr');
    expect(k.waitingQueue('SKU-1')).toBe('inv:{SKU-1}:wr:queue');
    expect(k.waitingKeys('SKU-1')).toBe('inv:{SKU-1}:wr:keys');
    expect(k.waitingOut('SKU-1')).toBe('inv:{SKU-1}:wr:out');
    expect(k.fate('SKU-1', 7)).toBe('inv:{SKU-1}:wr:fate:7');
    expect(k.fatesChannel).toBe('inv:wr:fates');
    expect(k.ticketSecret).toBe('inv:wr:secret');
  });

  it('takes the prefix as given', () => {
    expect(redisKeys('test-42').summary('A')).toBe('test-42:{A}');
    expect(redisKeys('test-42').prefix).toBe('test-42');
  });

  it('finds the SKU in a rows or gate key, and nothing in other keys', () => {
    expect(k.skuFromRowsKey(k.rows('SKU:{odd}'))).toBe('SKU:{odd}');
    expect(k.skuFromGateKey(k.gate('SKU-9'))).toBe('SKU-9');
    expect(k.skuFromRowsKey(k.summary('SKU-1'))).toBeUndefined();
    expect(k.skuFromRowsKey('other:{SKU-1}:rows')).toBeUndefined();
    expect(k.skuFromGateKey(k.gatePending('SKU-1'))).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { CLUSTER_SLOTS, redisKeys, slotTag } from './redis-keys.ts';

// The strings are a contract between processes and releases: Lua scripts, other processes and
// data already in Redis rely on them. A change here is a migration, not a refactor.
describe('redisKeys', () => {
  const k = redisKeys('inv');

  it('lays out the views, the feed and the epoch as before', () => {
    expect(k.rows('SKU-1')).toBe('inv:{SKU-1}:rows');
    expect(k.summary('SKU-1')).toBe('inv:{SKU-1}');
    expect(k.feed).toBe('inv:feed');
    expect(k.alerts('SKU-1')).toBe('inv:{SKU-1}:alerts');
    expect(k.alertStream).toBe('inv:alerts');
    expect(k.rowsPattern).toBe('inv:{*}:rows');
    expect(k.epoch(0)).toBe('inv:{s7920}:epoch');
    expect(k.epochPending(0)).toBe('inv:{s7920}:epoch:pending');
    expect(k.epochLock).toBe('inv:epoch:lock');
  });

  it('lays out the purchase gate as before', () => {
    expect(k.gate('SKU-1')).toBe('inv:{SKU-1}:gate');
    expect(k.gatePending('SKU-1')).toBe('inv:{SKU-1}:gate:pending');
    expect(k.gateHolds('SKU-1')).toBe('inv:{SKU-1}:gate:holds');
    expect(k.gateCustomers('SKU-1')).toBe('inv:{SKU-1}:gate:cust');
    expect(k.gatePattern).toBe('inv:{*}:gate');
    // One server: every slot-tagged key in slot 0's tag, whatever slot is asked for.
    expect(k.slots).toBe(1);
    expect(k.slotOf('SKU-1')).toBe(0);
    expect(k.unsettled(0)).toBe('inv:{s7920}:gate:unsettled');
    expect(k.hold('h-1', 0)).toBe('inv:{s7920}:hold:h-1');
    expect(k.idempotency('c%3A1:key-1', 0)).toBe('inv:{s7920}:idem:c%3A1:key-1');
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

  it('on a cluster, puts every key a script takes for a SKU in the SKU\'s slot, whatever the SKU', () => {
    const c = redisKeys('inv', { cluster: true });
    expect(c.slots).toBe(CLUSTER_SLOTS);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 20 }), (sku, id) => {
        const slot = c.slotOf(sku);
        const keys = [
          c.rows(sku), c.summary(sku), c.alerts(sku), c.gate(sku), c.gatePending(sku), c.gateHolds(sku), c.gateCustomers(sku), c.limitReleased(sku, id),
          c.waitingRoom(sku), c.waitingQueue(sku), c.waitingKeys(sku), c.waitingOut(sku), c.fate(sku, 3),
          c.hold(id, slot), c.idempotency(id, slot), c.unsettled(slot), c.epoch(slot), c.epochPending(slot),
        ];
        for (const key of keys) expect(calculateSlot(key)).toBe(slot);
      }),
      { numRuns: 2000, seed: 12 },
    );
    // A SKU that opens with "}" would make an empty tag: escaped, still one slot, and read back.
    expect(calculateSlot(c.rows('}x'))).toBe(calculateSlot(c.summary('}x')));
    expect(c.skuFromRowsKey(c.rows('}x'))).toBe('}x');
  });

  it('has a slot tag for every slot, each landing in its slot', () => {
    for (let s = 0; s < CLUSTER_SLOTS; s++) expect(calculateSlot(`{${slotTag(s)}}`)).toBe(s);
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

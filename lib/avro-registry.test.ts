import { describe, expect, it } from 'vitest';
import { confluentWire } from './avro-registry.ts';

describe('confluentWire', () => {
  it("is Confluent's framing: magic byte 0, the id as a big-endian int32, then the Avro bytes", () => {
    const out = confluentWire(0x01020304, Buffer.from([9, 8, 7]));
    expect([...out]).toEqual([0, 1, 2, 3, 4, 9, 8, 7]);
  });

  it('frames an empty payload and large ids', () => {
    expect([...confluentWire(2 ** 31 - 1, Buffer.alloc(0))]).toEqual([0, 0x7f, 0xff, 0xff, 0xff]);
  });
});

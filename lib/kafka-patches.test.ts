/**
 * The kafkajs patch (patches/kafkajs+2.2.4.patch, applied by `npm ci`'s postinstall; docs/dependencies.md)
 * is in place and changes only cost: the same grouping (each partition's messages in send order)
 * and the same varint bytes as the protocol defines.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
type Group = (a: { topic: string; partitionMetadata: unknown[]; messages: Array<{ key: string }>; partitioner: (a: { message: { key: string } }) => number }) => Record<string, Array<{ key: string }>>;
const group = require('kafkajs/src/producer/groupMessagesPerPartition.js') as Group;
interface KafkaEncoder {
  writeVarInt(v: number): KafkaEncoder;
  writeVarLong(v: number | bigint): KafkaEncoder;
  buffer: Buffer;
}
const Encoder = require('kafkajs/src/protocol/encoder.js') as { new (size?: number): KafkaEncoder; sizeOfVarInt(v: number): number; sizeOfVarLong(v: number): number };
const Long = require('kafkajs/src/utils/long.js') as { fromString(s: string): unknown };

/** The protocol's zig-zag LEB128 of a signed 64-bit value (the reference the patched encoder must keep). */
function varlong(value: bigint): Buffer {
  let z = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

describe('kafkajs groupMessagesPerPartition (patched)', () => {
  it('is the patched version', () => {
    expect(group.toString()).not.toContain('...current');
  });

  it("groups messages by their partitioner's answer, in send order", () => {
    const messages = Array.from({ length: 9 }, (_, i) => ({ key: `k${i}` }));
    const out = group({ topic: 't', partitionMetadata: [{}, {}, {}], messages, partitioner: ({ message }) => Number(message.key.slice(1)) % 3 });
    expect(Object.keys(out)).toEqual(['0', '1', '2']);
    expect(out['0']!.map((m) => m.key)).toEqual(['k0', 'k3', 'k6']);
    expect(out['2']!.map((m) => m.key)).toEqual(['k2', 'k5', 'k8']);
  });

  it('answers {} for a topic without partition metadata', () => {
    expect(group({ topic: 't', partitionMetadata: [], messages: [{ key: 'a' }], partitioner: () => 0 })).toEqual({});
  });
});

describe('kafkajs Encoder varints (patched)', () => {
  const edges = [0, 1, -1, 2, -2, 63, -64, 64, -65, 127, 128, 8191, 8192, 2 ** 20, -(2 ** 20), 2 ** 30 - 1, -(2 ** 30) + 1, 2 ** 30, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31)];
  const randoms = Array.from({ length: 2000 }, (_, i) => Math.round(Math.sin(i * 12.9898) * 2 ** (i % 32)));

  it('writes varints and varlongs byte for byte as the protocol defines them, and sizes them alike', () => {
    for (const v of [...edges, ...randoms]) {
      expect(new Encoder().writeVarInt(v).buffer, `varint ${v}`).toEqual(varlong(BigInt(v)));
      expect(new Encoder().writeVarLong(v).buffer, `varlong ${v}`).toEqual(varlong(BigInt(v)));
      expect(Encoder.sizeOfVarInt(v)).toBe(varlong(BigInt(v)).length);
      expect(Encoder.sizeOfVarLong(v)).toBe(varlong(BigInt(v)).length);
    }
  });

  it('still writes values beyond 32 bits (timestamps, Longs) through the 64-bit path', () => {
    for (const v of [2 ** 31, -(2 ** 31) - 1, 1_764_000_000_000, -1_764_000_000_000, Number.MAX_SAFE_INTEGER]) {
      expect(new Encoder().writeVarLong(v).buffer, `varlong ${v}`).toEqual(varlong(BigInt(v)));
      expect(Encoder.sizeOfVarLong(v)).toBe(varlong(BigInt(v)).length);
    }
    const long = Long.fromString('-9223372036854775808') as unknown as number;
    expect(new Encoder().writeVarLong(long).buffer).toEqual(varlong(-(2n ** 63n)));
  });

  it('grows its buffer for varints written past the initial size', () => {
    const e = new Encoder(1);
    for (let i = 0; i < 100; i++) e.writeVarInt(-(2 ** 31));
    expect(e.buffer).toEqual(Buffer.concat(Array.from({ length: 100 }, () => varlong(-(2n ** 31n)))));
  });
});

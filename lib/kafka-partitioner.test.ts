import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from './prng.ts';
import { keyHash, keyPartitioner, murmur2 } from './kafka-partitioner.ts';

const meta = (n: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: leaderless.includes(i) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0, offlineReplicas: [] }));

/** Random keys of every shape a producer may be given: ASCII, multi-byte and astral UTF-8, lone surrogates, long, Buffers, numbers. */
function keys(seed: number, count: number): Array<string | Buffer> {
  const rnd = mulberry32(seed);
  const alphabet = ['a', 'Z', '0', '-', '_', ':', 'é', 'ß', '€', '中', '😀', '\u0000', '\ud800', ' '];
  const out: Array<string | Buffer> = ['', 'SKU-1', 'x'.repeat(255), 'y'.repeat(256), 'z'.repeat(257), '😀'.repeat(200), Buffer.alloc(0)];
  for (let i = 0; i < count; i++) {
    const len = Math.floor(rnd() * (rnd() < 0.1 ? 600 : 40));
    if (rnd() < 0.2) {
      out.push(Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256))));
    } else {
      out.push(Array.from({ length: len }, () => alphabet[Math.floor(rnd() * alphabet.length)]!).join(''));
    }
  }
  return out;
}

describe('keyPartitioner', () => {
  it('chooses the partition kafkajs DefaultPartitioner chooses, for every key and partition count', () => {
    const ours = keyPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    for (const n of [1, 2, 3, 6, 7, 12, 50, 1000]) {
      const partitionMetadata = meta(n);
      for (const key of keys(n, 400)) {
        const message = { key, value: 'v' };
        expect(ours({ topic: 't', partitionMetadata, message }), `key ${JSON.stringify(String(key))} over ${n}`).toBe(theirs({ topic: 't', partitionMetadata, message }));
      }
    }
  });

  it('hashes a number or other non-string key as kafkajs does (its String form)', () => {
    const theirs = Partitioners.DefaultPartitioner();
    const ours = keyPartitioner();
    for (const key of [0, 1, -1, 42.5, 1e21, true]) {
      const message = { key: key as unknown as string, value: 'v' };
      expect(ours({ topic: 't', partitionMetadata: meta(6), message })).toBe(theirs({ topic: 't', partitionMetadata: meta(6), message }));
    }
  });

  it("keeps a message's own partition", () => {
    const ours = keyPartitioner();
    expect(ours({ topic: 't', partitionMetadata: meta(6), message: { key: 'SKU-1', value: 'v', partition: 4 } })).toBe(4);
    expect(ours({ topic: 't', partitionMetadata: meta(6), message: { key: null, value: 'v', partition: 0 } })).toBe(0);
  });

  it('spreads keyless messages round robin over the partitions that have a leader', () => {
    const ours = keyPartitioner();
    const partitionMetadata = meta(6, [1, 4]);
    const seen = Array.from({ length: 40 }, () => ours({ topic: 't', partitionMetadata, message: { key: null, value: 'v' } }));
    expect(new Set(seen)).toEqual(new Set([0, 2, 3, 5]));
    for (let i = 4; i < seen.length; i++) expect(seen[i]).toBe(seen[i - 4]);
    // No partition with a leader: still an answer within range.
    expect(ours({ topic: 'u', partitionMetadata: meta(3, [0, 1, 2]), message: { value: 'v' } })).toBeLessThan(3);
  });
});

describe('murmur2', () => {
  it("matches Kafka's reference values", () => {
    // From Kafka's UtilsTest#testMurmur2 (org.apache.kafka.common.utils).
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [text, expected] of cases) expect(murmur2(Buffer.from(text))).toBe(expected);
    expect(keyHash('foobar')).toBe(-790332482);
  });

  it('hashes only the first `length` bytes of a larger buffer', () => {
    const buf = Buffer.from('foobar-and-more');
    expect(murmur2(buf, 6)).toBe(murmur2(Buffer.from('foobar')));
  });
});

/**
 * The partitioner of every producer `createKafka` makes (lib/kafka.ts): the same partition for
 * every message as kafkajs' `Partitioners.DefaultPartitioner` (Java's murmur2 of the key's bytes,
 * so a SKU lands on the partition a Java client would choose), computed with 32-bit integer
 * arithmetic instead of kafkajs' emulated 64-bit `Long`s. kafkajs' version allocated several
 * objects per message and filtered the partition list for every message, keyed or not; with
 * thousands of deltas per batch that was a visible share of the processor's CPU and garbage
 * (docs/benchmarks.md, "Kafka client costs in the fold").
 *
 * Rules, as kafkajs' (and Java's 0.10.2 DefaultPartitioner): a message's own `partition` wins;
 * else a key hashes to `toPositive(murmur2(key)) % partitions` over all partitions; else round
 * robin over the partitions that have a leader, from a random start per topic.
 * lib/kafka-partitioner.test.ts checks the output against kafkajs' partitioner key for key.
 */
import { randomInt } from 'node:crypto';
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils#murmur2) of `data`, as a signed 32-bit integer. */
export function murmur2(data: Uint8Array, length = data.length): number {
  let h = (SEED ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest > 0) {
    // The last one to three bytes (Java's switch falls through from case 3 to case 1).
    if (rest === 3) h ^= data[whole + 2]! << 16;
    if (rest >= 2) h ^= data[whole + 1]! << 8;
    h ^= data[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Keys of up to this many UTF-16 units are encoded into one reused buffer (3 bytes per unit at most). */
const SCRATCH_UNITS = 256;
const scratch = Buffer.allocUnsafe(SCRATCH_UNITS * 3);

/** murmur2 of a message key: a Buffer's bytes, anything else as the UTF-8 of `String(key)` (kafkajs' rule). */
export function keyHash(key: Buffer | string | unknown): number {
  if (Buffer.isBuffer(key)) return murmur2(key);
  const text = typeof key === 'string' ? key : String(key);
  if (text.length <= SCRATCH_UNITS) return murmur2(scratch, scratch.write(text, 0, 'utf8'));
  return murmur2(Buffer.from(text, 'utf8'));
}

/** kafkajs' `createPartitioner` option: one partitioner per producer, with its own round-robin counters. */
export const keyPartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }: PartitionerArgs): number => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    const partitions = partitionMetadata.length;
    if (message.key !== null && message.key !== undefined) return (keyHash(message.key) & 0x7fffffff) % partitions;
    const next = (counters.get(topic) ?? randomInt(0, 0x7fffffff)) + 1;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0) return available[(next & 0x7fffffff) % available.length]!.partitionId;
    return (next & 0x7fffffff) % partitions;
  };
};

/** Redis helpers shared by the benchmark scripts: prefix cleanup and server CPU / command statistics. */
import { masters, type RedisClient } from '../../../lib/redis.ts';

/** Deletes every key of a Redis prefix (SCAN + UNLINK on every master, one key per UNLINK on a cluster); returns how many were deleted. */
export async function deletePrefix(redis: RedisClient, prefix: string): Promise<number> {
  let n = 0;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += node === redis ? await node.unlink(...keys) : (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return n;
}

export interface RedisSnapshot {
  /** Server CPU seconds (user + system) so far. */
  cpu: number;
  /** Calls and microseconds per command so far (INFO commandstats). */
  cmd: Record<string, { calls: number; usec: number }>;
}

/** The Redis server's CPU time and per-command statistics now. */
export async function redisSnapshot(redis: RedisClient): Promise<RedisSnapshot> {
  const cpuInfo = await redis.info('cpu');
  const num = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpuInfo)?.[1] ?? 0);
  const cmd: RedisSnapshot['cmd'] = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+)/gm)) cmd[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
  return { cpu: num('used_cpu_user') + num('used_cpu_sys'), cmd };
}

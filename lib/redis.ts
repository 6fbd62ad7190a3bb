/**
 * Redis client factory (ioredis): one server or a Redis Cluster, chosen by the configuration
 * (REDIS_CLUSTER_NODES). Commands fail fast while disconnected instead of queueing forever.
 * Everything above this module works on either: scripts keep their keys in one slot
 * (lib/contracts/redis-keys.ts), pipelines go through `execEach` (one pipeline per node on a
 * cluster), SCANs through `scanSkus` (every master).
 */
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { RedisTarget } from './config.ts';
import { resolveLuaIncludes } from './lua-include.ts';

/** A client of one Redis server or of a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

// Reconnect soon after Redis is back (ioredis' default backs off to 2 s between attempts): 50,
// 100, 200, 400, then every 500 ms. A command waiting for the connection still fails after 3
// attempts (fail fast: callers answer 503 or retry their batch).
const retryStrategy = (times: number) => Math.min(25 * 2 ** times, 500);

/**
 * `target`: a URL (one server) or the configuration's `redis` (a cluster when `cluster` is set;
 * the URL then only gives the credentials). `autoPipelining`: commands issued in the same
 * event-loop tick go out in one write — for hot request paths where many independent calls are
 * in flight at once (the purchase gate). Not on a cluster client: ioredis routes an automatically
 * pipelined script by its first argument, which for a script with a variable key count is the
 * count, not a key (the pipeline then spans nodes and fails).
 */
export function createRedis(target: string | RedisTarget, options: { lazy?: boolean; autoPipelining?: boolean } = {}): RedisClient {
  const url = typeof target === 'string' ? target : target.url;
  const nodes = typeof target === 'string' ? undefined : target.cluster;
  const common = { lazyConnect: options.lazy ?? false, maxRetriesPerRequest: 3, enableOfflineQueue: true, connectTimeout: 3000 };
  if (!nodes) return new Redis(url, { ...common, enableAutoPipelining: options.autoPipelining ?? false, retryStrategy });
  const u = new URL(url);
  const cluster = new Cluster(nodes, {
    lazyConnect: common.lazyConnect,
    enableOfflineQueue: true,
    enableAutoPipelining: false,
    scaleReads: 'master',
    // A failover takes the cluster node timeout (2 s in the native topology) plus the election:
    // commands redirected by MOVED/ASK/TRYAGAIN/CLUSTERDOWN are retried meanwhile.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 32,
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: retryStrategy,
    redisOptions: {
      ...common,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  // ioredis says only "Failed to refresh slots cache." when no seed node answers: before any
  // other listener logs it, name the nodes and the last node's own error (refused, WRONGPASS, ...).
  const seeds = nodes.map((n) => `${n.host}:${n.port}`).join(', ');
  cluster.prependListener('error', (err: Error & { lastNodeError?: Error }) => {
    if (err.message.startsWith('Failed to refresh slots cache')) {
      err.message = `${CLUSTER_UNREACHABLE}: none of the nodes ${seeds} answered${err.lastNodeError ? ` (last: ${err.lastNodeError.message})` : ''}`;
    }
  });
  return cluster;
}

/** The start of the error a cluster client reports when no node of REDIS_CLUSTER_NODES answers. */
export const CLUSTER_UNREACHABLE = 'Redis Cluster not reachable';

export type LuaCommand = (...args: Array<string | number>) => Promise<unknown>;

/**
 * Defines `name` on the connection (once; pipelines get it too) as the Lua script in `file`:
 * loaded once, called with EVALSHA and a NOSCRIPT fallback (ioredis `defineCommand`). By the
 * project's convention a file named `<script>-<N>.lua` takes N keys; any other file takes the
 * number of keys as its first argument. `--- @include "name"` lines are resolved first
 * (lib/lua-include.ts), so the script Redis hashes is the complete one. Returns the command bound
 * to the connection.
 */
export function defineLuaCommand(redis: RedisClient, name: string, file: string): LuaCommand {
  const commands = redis as unknown as Record<string, LuaCommand | undefined>;
  if (!commands[name]) {
    const fixed = /-(\d+)\.lua$/.exec(file);
    redis.defineCommand(name, { lua: resolveLuaIncludes(file), ...(fixed ? { numberOfKeys: Number(fixed[1]) } : {}) });
  }
  return commands[name]!.bind(redis);
}

/** Replies that mean "this slot is served elsewhere now, or is moving": worth sending again after a slot refresh. */
const REDIRECT_REPLY = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;

/**
 * Queues one command per item (`queue`, whose keys are in the slot of `keyOf(item)`) and runs
 * them: in one pipeline on one server; on a cluster in one pipeline per node that serves the
 * items' slots (ioredis refuses a pipeline spanning nodes), all at once. Replies in item order.
 * On a cluster, items answered with a redirection (a failover or a slot migration happened since
 * the client last read the slot table: ioredis only follows one for a whole pipeline) are sent
 * again after the slot table is refreshed, up to 5 times.
 */
export async function execEach<T>(
  redis: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  queue: (pipeline: ChainableCommander, item: T) => void,
): Promise<Array<[Error | null, unknown]>> {
  const out: Array<[Error | null, unknown]> = new Array(items.length);
  let pending = items.map((_, i) => i);
  for (let attempt = 0; pending.length > 0; attempt++) {
    const groups = new Map<string, number[]>();
    if (isCluster(redis)) {
      const slots = (redis as unknown as { slots: string[][] }).slots;
      for (const i of pending) {
        const slot = calculateSlot(keyOf(items[i]!));
        const node = slots[slot]?.[0] ?? `slot:${slot}`;
        let g = groups.get(node);
        if (!g) groups.set(node, (g = []));
        g.push(i);
      }
    } else {
      groups.set('', pending);
    }
    const redirected: number[] = [];
    await Promise.all(
      [...groups.values()].map(async (indices) => {
        const pipeline = redis.pipeline();
        for (const i of indices) queue(pipeline, items[i]!);
        const replies = (await pipeline.exec()) ?? [];
        indices.forEach((i, j) => {
          const reply = (replies[j] as [Error | null, unknown] | undefined) ?? [new Error('no reply'), null];
          out[i] = reply;
          if (reply[0] && REDIRECT_REPLY.test(reply[0].message)) redirected.push(i);
        });
      }),
    );
    if (!isCluster(redis) || redirected.length === 0 || attempt >= 5) break;
    await new Promise<void>((resolve) => (redis as unknown as { refreshSlotsCache(cb: () => void): void }).refreshSlotsCache(() => resolve()));
    await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    pending = redirected;
  }
  return out;
}

/**
 * Runs one command per group of items (`queue` gets the group, whose keys all share a slot): on one
 * server the items form groups of up to `max` in their order; on a cluster, the items of each slot
 * do. For a script over many SKUs' keys (the published marks): one command per batch instead of
 * one per SKU where the topology allows it. Each reply comes with its group.
 */
export async function execGrouped<T>(
  redis: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  max: number,
  queue: (pipeline: ChainableCommander, group: T[]) => void,
): Promise<Array<{ group: T[]; reply: [Error | null, unknown] }>> {
  const bySlot = new Map<number, T[]>();
  const cluster = isCluster(redis);
  for (const item of items) {
    const slot = cluster ? calculateSlot(keyOf(item)) : 0;
    let g = bySlot.get(slot);
    if (!g) bySlot.set(slot, (g = []));
    g.push(item);
  }
  const groups: T[][] = [];
  for (const g of bySlot.values()) for (let i = 0; i < g.length; i += max) groups.push(g.slice(i, i + max));
  const replies = await execEach(redis, groups, (g) => keyOf(g[0]!), queue);
  return groups.map((group, i) => ({ group, reply: replies[i]! }));
}

/** The clients of every master (one server: itself). */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/**
 * Every SKU whose key matches `pattern`, in pages, via SCAN (never KEYS) on every master: `skuOf`
 * reads the SKU back from a key (lib/contracts/redis-keys.ts has one per key family).
 */
export async function* scanSkus(redis: RedisClient, pattern: string, skuOf: (key: string) => string | undefined, count = 1000): AsyncGenerator<string[]> {
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      const skus = keys.map(skuOf).filter((s): s is string => s !== undefined);
      if (skus.length) yield skus;
    } while (cursor !== '0');
  }
}

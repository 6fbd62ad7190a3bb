/**
 * The native stack's Redis Cluster (STACK_TOPOLOGY=cluster): health of each node and of the
 * cluster, forming it once with `redis-cli --cluster create`, and which node is master for a key.
 * Talks to each node directly (no cluster client), so it also sees nodes the cluster has failed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../../lib/config.ts';
import { ServiceError, errorMessage } from '../../lib/errors.ts';
import { waitFor } from '../../lib/retry.ts';
import {
  formatSlots,
  masterForSlot,
  parseClusterInfo,
  parseClusterNodes,
  REDIS_CLUSTER_SLOTS,
  slotCount,
  stackLayout,
  type RedisNode,
} from './topology.ts';

export interface RedisAuth {
  username: string | undefined;
  password: string | undefined;
}

export function redisAuth(config: Pick<Config, 'redis'>): RedisAuth {
  const u = new URL(config.redis.url);
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

async function withNode<T>(node: Pick<RedisNode, 'host' | 'port'>, auth: RedisAuth, fn: (r: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: node.host,
    port: node.port,
    username: auth.username,
    password: auth.password,
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

export interface RedisNodeState {
  role: 'master' | 'replica';
  slots: number;
  slotRanges: string;
  /** This node's view of the cluster. */
  clusterState: string;
  knownNodes: number;
  /** For a replica: the port of its master. */
  masterPort: number | undefined;
  masterLinkUp: boolean | undefined;
}

export async function redisNodeState(node: Pick<RedisNode, 'host' | 'port'>, auth: RedisAuth): Promise<RedisNodeState> {
  return withNode(node, auth, async (r) => {
    const [nodesText, infoText, replication] = await Promise.all([
      r.call('CLUSTER', 'NODES') as Promise<string>,
      r.call('CLUSTER', 'INFO') as Promise<string>,
      r.info('replication'),
    ]);
    const nodes = parseClusterNodes(nodesText);
    const me = nodes.find((n) => n.myself);
    if (!me) throw new ServiceError('CLUSTER NODES lists no "myself" entry');
    const info = parseClusterInfo(infoText);
    const master = me.masterId ? nodes.find((n) => n.id === me.masterId) : undefined;
    const link = /master_link_status:(\w+)/.exec(replication)?.[1];
    return {
      role: me.role,
      slots: slotCount(me.slots),
      slotRanges: formatSlots(me.slots),
      clusterState: info.cluster_state ?? '?',
      knownNodes: Number(info.cluster_known_nodes ?? 0),
      masterPort: master?.port,
      masterLinkUp: me.role === 'replica' ? link === 'up' : undefined,
    };
  });
}

/** One node's health, as `status` shows it: healthy when it serves and sees the cluster ok. */
export async function probeRedisNode(config: Config, name: string): Promise<{ detail: string; state: RedisNodeState }> {
  const layout = stackLayout(config);
  const node = layout.redis.find((n) => n.name === name);
  if (!node) throw new ServiceError(`no Redis node named ${name} (nodes: ${layout.redis.map((n) => n.name).join(', ')})`);
  const state = await redisNodeState(node, redisAuth(config));
  const nameOf = (port: number | undefined) => layout.redis.find((n) => n.port === port)?.name ?? `port ${port}`;
  const role =
    state.role === 'master'
      ? `master, ${state.slots} slots${state.slots ? ` (${state.slotRanges})` : ''}`
      : `replica of ${nameOf(state.masterPort)}${state.masterLinkUp ? '' : ' (link down)'}`;
  const detail = `${role}, cluster_state ${state.clusterState}`;
  if (state.clusterState !== 'ok') throw Object.assign(new ServiceError(detail), { state });
  if (state.role === 'replica' && !state.masterLinkUp) throw Object.assign(new ServiceError(detail), { state });
  return { detail, state };
}

/** The cluster as a whole: some node answers, says cluster_state:ok, and every slot is served. */
export async function probeRedisCluster(config: Config): Promise<string> {
  // Any Redis Cluster (REDIS_CLUSTER_NODES), also one this stack did not start (STACK=external).
  const seeds = (config.redis.cluster ?? []).map((n, i) => ({ ...n, name: `redis-${i + 1}` }));
  const auth = redisAuth(config);
  let lastErr = 'REDIS_CLUSTER_NODES names no node';
  for (const node of seeds) {
    try {
      const { info, nodes } = await withNode(node, auth, async (r) => ({
        info: parseClusterInfo((await r.call('CLUSTER', 'INFO')) as string),
        nodes: parseClusterNodes((await r.call('CLUSTER', 'NODES')) as string),
      }));
      const masters = nodes.filter((n) => n.role === 'master' && !n.failed && n.slots.length).length;
      const replicas = nodes.filter((n) => n.role === 'replica' && !n.failed).length;
      const down = nodes.filter((n) => n.failed).length;
      // cluster_state stays ok until the others agree a master failed (about the node timeout):
      // a master that serves slots and is already suspected is not healthy either.
      const suspect = nodes.filter((n) => n.role === 'master' && n.slots.length && (n.failed || !n.connected) && !n.myself);
      if (suspect.length) throw new ServiceError(`master(s) serving slots unreachable: ${suspect.map((n) => n.port).join(',')}`);
      const detail = `cluster_state ${info.cluster_state}, ${info.cluster_slots_ok}/${REDIS_CLUSTER_SLOTS} slots ok, ${masters} masters, ${replicas} replicas${down ? `, ${down} failed` : ''}`;
      if (info.cluster_state !== 'ok' || Number(info.cluster_slots_ok) !== REDIS_CLUSTER_SLOTS) throw new ServiceError(detail);
      return `Redis Cluster: ${detail}`;
    } catch (err) {
      lastErr = `${node.name}: ${errorMessage(err)}`;
    }
  }
  throw new ServiceError(lastErr);
}

function redisCliFor(redisServer: string): string {
  const beside = path.join(path.dirname(redisServer), 'redis-cli');
  return fs.existsSync(beside) ? beside : 'redis-cli';
}

/**
 * Forms the cluster the first time (every node alone, no slot assigned): `redis-cli --cluster
 * create` with one replica per master. Then, and on every later `up`, waits until every node
 * reports cluster_state:ok with all 16384 slots served. A cluster already formed is left alone.
 */
export async function ensureRedisCluster(opts: { config: Config; redisServer: string; log: (line: string) => void; timeoutMs: number }): Promise<void> {
  const { config, log } = opts;
  const layout = stackLayout(config);
  const auth = redisAuth(config);
  // Every node must answer first (a restarted node replays its append-only file before it does).
  let states: RedisNodeState[] = [];
  let unanswered = '';
  const answered = await waitFor(
    async () => {
      const got = await Promise.all(layout.redis.map((n) => redisNodeState(n, auth).catch((err: unknown) => `${n.name}: ${errorMessage(err)}`)));
      unanswered = got.filter((g) => typeof g === 'string').join('; ');
      if (unanswered) return false;
      states = got as RedisNodeState[];
      return true;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 250 },
  );
  if (!answered) throw new ServiceError(`Redis nodes not answering after ${Math.round(opts.timeoutMs / 1000)}s: ${unanswered}`);
  const alone = states.filter((s) => s.knownNodes <= 1 && s.slots === 0);
  if (alone.length === layout.redis.length) {
    log(`  redis     forming the cluster: ${layout.redis.length / 2} masters, 1 replica each (redis-cli --cluster create)`);
    // The password goes through the environment (REDISCLI_AUTH), never the command line.
    const args = [
      '--cluster', 'create',
      ...layout.redis.map((n) => `${n.host}:${n.port}`),
      '--cluster-replicas', '1', '--cluster-yes',
      ...(auth.username ? ['--user', auth.username] : []),
    ];
    const res = spawnSync(redisCliFor(opts.redisServer), args, { encoding: 'utf8', env: { ...process.env, REDISCLI_AUTH: auth.password ?? '' } });
    if (res.error || res.status !== 0) {
      throw new ServiceError(`redis-cli --cluster create failed: ${res.error ? errorMessage(res.error) : `${res.stdout}${res.stderr}`.trim().split('\n').slice(-5).join('\n')}`);
    }
  } else if (alone.length > 0) {
    const names = layout.redis.filter((_, i) => alone.includes(states[i]!)).map((n) => n.name);
    throw new ServiceError(
      `Redis nodes ${names.join(', ')} are not part of the cluster the others formed (their data was removed?); ` +
        `recreate the cluster: npm run stack -- down && rm -rf ${config.stack.dir}/redis-* && npm run stack -- up`,
    );
  }
  let last = '';
  const ok = await waitFor(
    async () => {
      const now = await Promise.all(layout.redis.map((n) => redisNodeState(n, auth).catch((err: unknown) => errorMessage(err))));
      const bad = now
        .map((s, i) => ({ s, name: layout.redis[i]!.name }))
        .filter(({ s }) => typeof s === 'string' || s.clusterState !== 'ok' || s.knownNodes !== layout.redis.length);
      last = bad.map(({ s, name }) => `${name}: ${typeof s === 'string' ? s : `cluster_state ${s.clusterState}, ${s.knownNodes} known nodes`}`).join('; ');
      const served = now.reduce((n, s) => n + (typeof s === 'string' || s.role !== 'master' ? 0 : s.slots), 0);
      if (!bad.length && served !== REDIS_CLUSTER_SLOTS) last = `${served}/${REDIS_CLUSTER_SLOTS} slots served`;
      return bad.length === 0 && served === REDIS_CLUSTER_SLOTS;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 250 },
  );
  if (!ok) throw new ServiceError(`Redis Cluster not ok after ${Math.round(opts.timeoutMs / 1000)}s: ${last}`);
}

/**
 * Which node is master for `key` right now (by the slot Redis computes for it; a hash tag
 * `{sku}` counts as the key), e.g. for a chaos test that wants to kill the master of one SKU.
 */
export async function redisMasterFor(config: Config, key: string): Promise<{ name: string; port: number; slot: number }> {
  const layout = stackLayout(config);
  const auth = redisAuth(config);
  let lastErr: unknown;
  for (const node of layout.redis) {
    try {
      const { slot, nodes } = await withNode(node, auth, async (r) => ({
        slot: Number(await r.call('CLUSTER', 'KEYSLOT', key)),
        nodes: parseClusterNodes((await r.call('CLUSTER', 'NODES')) as string),
      }));
      const master = masterForSlot(nodes, slot);
      if (!master) throw new ServiceError(`no live master serves slot ${slot}`);
      const name = layout.redis.find((n) => n.port === master.port)?.name ?? `${master.host}:${master.port}`;
      return { name, port: master.port, slot };
    } catch (err) {
      lastErr = err;
    }
  }
  throw new ServiceError(`no Redis node could say which master serves ${JSON.stringify(key)}: ${errorMessage(lastErr)}`);
}

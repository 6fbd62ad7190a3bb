/**
 * docker-compose.yml's `cluster` profile cannot be run here (no Docker engine): this checks,
 * from the parsed file, that it is the native cluster topology's shape (tools/stack/topology.ts)
 * — 3 KRaft brokers with 3 voters and replication 3 / min ISR 2, 6 Redis Cluster nodes formed by
 * a one-shot container with one replica per master, Connect with its topics replicated 3 — on
 * the cluster topology's host ports, and that its app gets a valid cluster configuration.
 * tests/compose.test.ts validates the whole file against the Compose schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig, PROJECT_ROOT } from '../../lib/config.ts';
import { stackLayout } from './topology.ts';

interface Service {
  profiles?: string[];
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
}

const compose = parse(fs.readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const env = (name: string) => Object.fromEntries(Object.entries(service(name).environment ?? {}).map(([k, v]) => [k, String(v)]));
const script = (name: string) => [service(name).command ?? []].flat().join('\n');
/** Published ports as [host port, container port], all on loopback. */
const published = (name: string) =>
  (service(name).ports ?? []).map((p) => {
    const m = /^127\.0\.0\.1:(\d+):(\d+)$/.exec(p);
    if (!m) throw new Error(`${name} publishes ${p}, not on 127.0.0.1`);
    return [Number(m[1]), Number(m[2])];
  });

const KAFKA = ['kafka-1', 'kafka-2', 'kafka-3'];
const REDIS = ['redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6'];
const CLUSTER_SERVICES = ['postgres-cluster', ...KAFKA, 'schema-registry-cluster', 'connect-cluster', ...REDIS, 'redis-cluster-create', 'app-cluster'];
/** The native cluster topology, whose host ports the profile publishes. */
const native = loadConfig({ STACK_TOPOLOGY: 'cluster', STACK_DIR: '/nonexistent/invsync-compose-test' }, { readSecrets: () => undefined });
const layout = stackLayout(native);

describe('docker-compose.yml cluster profile', () => {
  it('has every service of the cluster topology in the cluster profile only, and leaves the default services without a profile', () => {
    for (const name of CLUSTER_SERVICES) expect(service(name).profiles, name).toEqual(['cluster']);
    for (const name of ['postgres', 'kafka', 'connect', 'schema-registry', 'redis', 'app']) expect(service(name).profiles, name).toBeUndefined();
    for (const name of [...KAFKA, ...REDIS]) expect(Object.keys(compose.volumes)).toContain(`${name}-data`);
  });

  it('runs 3 KRaft nodes (broker+controller), 3 voters, one cluster id, replication 3 and min ISR 2', () => {
    const ids = new Set<string>();
    KAFKA.forEach((name, i) => {
      const e = env(name);
      expect(e.KAFKA_NODE_ID).toBe(String(i + 1));
      expect(e.KAFKA_PROCESS_ROLES).toBe('broker,controller');
      expect(e.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093');
      expect(e.KAFKA_ADVERTISED_LISTENERS).toBe(`INTERNAL://${name}:9092,EXTERNAL://127.0.0.1:${layout.kafka[i]!.port}`);
      expect(e.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).not.toMatch(/:PLAINTEXT/);
      expect(e).toMatchObject({
        KAFKA_DEFAULT_REPLICATION_FACTOR: '3',
        KAFKA_MIN_INSYNC_REPLICAS: '2',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '3',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '3',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '2',
        KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '2000',
      });
      ids.add(e.CLUSTER_ID!);
      expect(published(name)).toEqual([[layout.kafka[i]!.port, layout.kafka[i]!.port]]);
    });
    expect(ids.size).toBe(1);
  });

  it('runs 6 Redis nodes in cluster mode with a password and masterauth, formed once with one replica per master', () => {
    REDIS.forEach((name, i) => {
      const s = script(name);
      expect(s).toContain('--cluster-enabled yes');
      expect(s).toContain('--cluster-node-timeout 2000');
      expect(s).toContain('--appendonly yes');
      expect(s).toMatch(/requirepass.*masterauth/s);
      expect(published(name)).toEqual([[layout.redis[i]!.port, 6379]]);
    });
    const create = service('redis-cluster-create');
    expect(create.restart).toBe('no');
    expect(Object.keys(create.depends_on ?? {}).sort()).toEqual(REDIS);
    const s = script('redis-cluster-create');
    expect(s).toContain('--cluster create');
    expect(s).toContain('--cluster-replicas 1');
    expect(s).toContain('--cluster-yes');
    // formed only when redis-1 is alone: a second `up` leaves the cluster as it is
    expect(s).toMatch(/if .*cluster_known_nodes:1/);
    expect(env('redis-cluster-create').REDISCLI_AUTH).toMatch(/INVSYNC_REDIS_PASSWORD/);
  });

  it('bootstraps Connect and the registry on all three brokers, with replication 3', () => {
    const connect = script('connect-cluster');
    expect(connect).toContain("kafka.bootstrap=kafka-1:9092,kafka-2:9092,kafka-3:9092");
    for (const t of ['config', 'offset', 'status']) expect(connect).toContain(`'${t}.storage.replication.factor=3'`);
    expect(connect).toContain('pg.host=postgres-cluster');
    expect(env('schema-registry-cluster').SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR).toBe('3');
    expect(published('connect-cluster')).toEqual([[new URL(native.connect.url).port, 8083].map(Number)]);
    expect(published('postgres-cluster')).toEqual([[native.pg.port, 5432]]);
  });

  it('gives app-cluster a valid STACK=external cluster configuration on the cluster services', () => {
    const e = Object.fromEntries(Object.entries(env('app-cluster')).map(([k, v]) => [k, v.replace(/\$\{[A-Z_]+:\?[^}]*\}/g, 'test0123456789secret')]));
    e.GATEWAY_API_KEYS = 'trial-wms:0123456789abcdef:wms';
    expect(Object.keys(e).filter((k) => !(CONFIG_VARIABLES as string[]).includes(k))).toEqual([]);
    const config = loadConfig(e);
    expect(config.kafka.brokers).toEqual(KAFKA.map((k) => `${k}:9092`));
    expect(config.redis.cluster?.map((n) => n.host)).toEqual(REDIS);
    expect(config.topics).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
    for (const host of [new URL(config.connect.url).hostname, new URL(config.registry.url).hostname, config.pg.host]) expect(compose.services[host], host).toBeDefined();
    expect(Object.entries(service('app-cluster').depends_on ?? {})).toContainEqual(['redis-cluster-create', { condition: 'service_completed_successfully' }]);
  });
});

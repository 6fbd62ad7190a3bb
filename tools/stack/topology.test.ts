import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import {
  formatSlots,
  kafkaServerProperties,
  masterForSlot,
  nodeNames,
  parseClusterInfo,
  parseClusterNodes,
  redisServerConf,
  slotCount,
  stackLayout,
} from './topology.ts';

const secrets = {
  kafkaAdminPassword: 'adm"in',
  kafkaControllerPassword: 'ctl',
  kafkaKeystore: '/s/kafka.keystore.p12',
  truststore: '/s/truststore.p12',
  storePassword: 'store',
};

/** A configuration as the stack sees it, with no secrets file (STACK_DIR that does not exist). */
const config = (env: Record<string, string>) => loadConfig({ STACK_DIR: '/nonexistent/invsync-topology-test', ...env }, { readSecrets: () => undefined });

const props = (lines: string[]) => Object.fromEntries(lines.filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe('stackLayout', () => {
  it('single: one kafka and one redis, on the configured ports', () => {
    const layout = stackLayout(config({}));
    expect(layout.kafka).toEqual([{ name: 'kafka', id: 1, host: '127.0.0.1', port: 19092, controllerPort: 19093 }]);
    expect(layout.redis).toEqual([{ name: 'redis', host: '127.0.0.1', port: 16379 }]);
  });

  it('cluster: three brokers with a controller port each (+100), six redis nodes, on the cluster ports', () => {
    const c = config({ STACK_TOPOLOGY: 'cluster' });
    const layout = stackLayout(c);
    expect(layout.kafka.map((k) => [k.name, k.id, k.port, k.controllerPort])).toEqual([
      ['kafka-1', 1, 29092, 29093],
      ['kafka-2', 2, 29192, 29193],
      ['kafka-3', 3, 29292, 29293],
    ]);
    expect(layout.redis.map((r) => `${r.name}:${r.port}`)).toEqual(['redis-1:26379', 'redis-2:26380', 'redis-3:26381', 'redis-4:26382', 'redis-5:26383', 'redis-6:26384']);
    expect(nodeNames(layout)).toEqual(['postgres', 'kafka-1', 'kafka-2', 'kafka-3', 'redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6', 'registry', 'connect']);
    // Ports of the two topologies never collide, so both run at once.
    const single = stackLayout(config({}));
    const ports = (l: typeof layout) => [...l.kafka.flatMap((k) => [k.port, k.controllerPort]), ...l.redis.map((r) => r.port)];
    expect(ports(layout).filter((p) => ports(single).includes(p))).toEqual([]);
    const dirs = [{}, { STACK_TOPOLOGY: 'cluster' }].map((env) => loadConfig(env, { readSecrets: () => undefined }).stack.dir);
    expect(dirs[1]).toMatch(/\.stack-cluster$/);
    expect(dirs[0]).toMatch(/\.stack$/);
  });

  it('cluster: refuses fewer than 3 brokers or 6 redis nodes, naming the variables', () => {
    expect(() => stackLayout(config({ STACK_TOPOLOGY: 'cluster', KAFKA_BROKERS: '127.0.0.1:29092' }))).toThrow(/KAFKA_BROKERS names 1/);
    expect(() => stackLayout(config({ STACK_TOPOLOGY: 'cluster', REDIS_CLUSTER_NODES: '127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381' }))).toThrow(
      /REDIS_CLUSTER_NODES 3/,
    );
  });
});

describe('kafkaServerProperties', () => {
  it('single node: replication 1, one voter, the authenticated listeners', () => {
    const layout = stackLayout(config({}));
    const p = props(kafkaServerProperties({ node: layout.kafka[0]!, voters: layout.kafka, dataDir: '/d', secrets }));
    expect(p['node.id']).toBe('1');
    expect(p['controller.quorum.voters']).toBe('1@127.0.0.1:19093');
    expect(p['listeners']).toBe('SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(p['default.replication.factor']).toBe('1');
    expect(p['min.insync.replicas']).toBe('1');
    expect(p['offsets.topic.replication.factor']).toBe('1');
    expect(p['transaction.state.log.min.isr']).toBe('1');
  });

  it('cluster node: its own id and ports, three voters, RF 3 / min ISR 2, same authentication and group floor', () => {
    const layout = stackLayout(config({ STACK_TOPOLOGY: 'cluster' }));
    const p = props(kafkaServerProperties({ node: layout.kafka[1]!, voters: layout.kafka, dataDir: '/d2', secrets }));
    expect(p['node.id']).toBe('2');
    expect(p['process.roles']).toBe('broker,controller');
    expect(p['controller.quorum.voters']).toBe('1@127.0.0.1:29093,2@127.0.0.1:29193,3@127.0.0.1:29293');
    expect(p['listeners']).toBe('SASL_SSL://127.0.0.1:29192,CONTROLLER://127.0.0.1:29193');
    expect(p['advertised.listeners']).toBe('SASL_SSL://127.0.0.1:29192');
    expect(p['inter.broker.listener.name']).toBe('SASL_SSL');
    expect(p['sasl.mechanism.inter.broker.protocol']).toBe('SCRAM-SHA-512');
    expect(p['listener.security.protocol.map']).toBe('CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL');
    expect(p['listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config']).toContain(String.raw`username="admin" password="adm\\"in"`); // JAAS-escaped, then properties-escaped
    expect(p['default.replication.factor']).toBe('3');
    expect(p['min.insync.replicas']).toBe('2');
    expect(p['offsets.topic.replication.factor']).toBe('3');
    expect(p['transaction.state.log.replication.factor']).toBe('3');
    expect(p['transaction.state.log.min.isr']).toBe('2');
    expect(p['group.min.session.timeout.ms']).toBe('2000');
    expect(p['log.dirs']).toBe('/d2');
  });
});

describe('redisServerConf', () => {
  const node = { name: 'redis-4', host: '127.0.0.1', port: 26382 };
  const base = { node, dir: '/r4', defaultPassword: 'rnd', user: 'invsync', password: 'pw', maxmemory: '1gb' };

  it('single: the ACL users and persistence, no cluster settings', () => {
    const conf = redisServerConf({ ...base, cluster: false });
    expect(conf).toContain('user invsync on >pw ~* &* +@all');
    expect(conf).toContain('appendonly yes');
    expect(conf.some((l) => l.startsWith('cluster-'))).toBe(false);
    expect(conf.some((l) => l.startsWith('masterauth'))).toBe(false);
  });

  it('cluster: cluster mode, a short node timeout, and replicas that can authenticate to their master', () => {
    const conf = redisServerConf({ ...base, cluster: true });
    expect(conf).toContain('port 26382');
    expect(conf).toContain('cluster-enabled yes');
    // The bus below Linux's ephemeral port range (32768-60999), where Redis' default +10000 is not.
    expect(conf).toContain('cluster-port 27382');
    expect(conf).toContain('cluster-node-timeout 2000');
    expect(conf).toContain('masteruser invsync');
    expect(conf).toContain('masterauth pw');
    expect(conf).toContain('appendonly yes');
    expect(conf).toContain('user invsync on >pw ~* &* +@all');
  });
});

describe('Redis Cluster replies', () => {
  // Recorded from redis-server 7.0 (ids shortened).
  const nodes = [
    'aaa 127.0.0.1:26379@36379 myself,master - 0 0 1 connected 0-5460',
    'bbb 127.0.0.1:26380@36380 master - 0 1700000000000 2 connected 5461-10922',
    'ccc 127.0.0.1:26381@36381 master,fail - 1700000000000 1700000000000 3 disconnected',
    'ddd 127.0.0.1:26382@36382 slave aaa 0 1700000000000 1 connected',
    'eee 127.0.0.1:26383@36383 master - 0 1700000000000 7 connected 10923-16383 [12000->-bbb]',
    'fff 127.0.0.1:26384@36384 slave bbb 0 1700000000000 2 connected',
  ].join('\n');

  it('parses roles, masters of replicas, failure flags and slot ranges', () => {
    const parsed = parseClusterNodes(nodes);
    expect(parsed).toHaveLength(6);
    expect(parsed[0]).toMatchObject({ id: 'aaa', port: 26379, myself: true, role: 'master', slots: [[0, 5460]] });
    expect(parsed[2]).toMatchObject({ port: 26381, failed: true, connected: false, slots: [] });
    expect(parsed[3]).toMatchObject({ role: 'replica', masterId: 'aaa', slots: [] });
    // a migrating-slot marker is not a slot
    expect(parsed[4]!.slots).toEqual([[10923, 16383]]);
    expect(slotCount(parsed.flatMap((n) => n.slots))).toBe(16384);
    expect(formatSlots([[0, 5460], [7, 7]])).toBe('0-5460,7');
  });

  it('finds the live master of a slot, ignoring failed nodes', () => {
    const parsed = parseClusterNodes(nodes);
    expect(masterForSlot(parsed, 0)?.port).toBe(26379);
    expect(masterForSlot(parsed, 12182)?.port).toBe(26383);
    expect(masterForSlot(parsed, 16384)).toBeUndefined();
  });

  it('parses CLUSTER INFO', () => {
    const info = parseClusterInfo('cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:6\r\n');
    expect(info).toMatchObject({ cluster_state: 'ok', cluster_slots_ok: '16384', cluster_known_nodes: '6' });
  });
});

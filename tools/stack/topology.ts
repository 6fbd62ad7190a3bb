/**
 * The nodes of the native stack's two topologies, and the configuration files of its Kafka and
 * Redis nodes: pure functions (no I/O), so the layout and the settings are unit-tested.
 *
 *   single   one Kafka broker (`kafka`) and one Redis server (`redis`), as the stack always was.
 *   cluster  three Kafka brokers in KRaft combined mode (`kafka-1..3`: each broker and controller,
 *            three controller voters) and a Redis Cluster of six servers (`redis-1..6`: three
 *            masters and three replicas once formed), on the ports of TOPOLOGY_DEFAULTS.cluster.
 *
 * Controller ports of the cluster: one per node, KAFKA_CONTROLLER_PORT + 100 × (n - 1), the same
 * step as the default broker ports (29092, 29192, 29292 → 29093, 29193, 29293).
 */
import type { Config } from '../../lib/config.ts';
import { jaas, KAFKA_ADMIN_USER, KAFKA_CONTROLLER_USER, propertyValue, type StackSecrets } from './secrets.ts';

/** Step between the controller ports of consecutive cluster nodes. */
export const CONTROLLER_PORT_STEP = 100;
/** Redis Cluster's failure detection: a master unreachable this long is failed over to its replica. */
export const REDIS_CLUSTER_NODE_TIMEOUT_MS = 2000;

/**
 * A cluster node's bus port is its port plus this. Redis' own default (+10000: 36379..36384 for
 * the cluster topology) lies inside Linux's ephemeral range (32768-60999), where any outgoing
 * connection may hold it: a CI run's Redis node failed to start with "bind: Address already in use"
 * on 36380. +1000 (27379..27384) is below that range and clear of the platform's other ports.
 */
export const REDIS_CLUSTER_BUS_OFFSET = 1000;
export const REDIS_CLUSTER_SLOTS = 16384;

export interface KafkaNode {
  /** Process and directory name: `kafka` (single) or `kafka-<id>`. */
  name: string;
  id: number;
  host: string;
  port: number;
  controllerPort: number;
}

export interface RedisNode {
  /** Process and directory name: `redis` (single) or `redis-<n>`. */
  name: string;
  host: string;
  port: number;
}

export interface Layout {
  topology: Config['stack']['topology'];
  kafka: KafkaNode[];
  redis: RedisNode[];
}

function split(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
}

/** Which Kafka and Redis processes the configured topology runs, on which ports. */
export function stackLayout(config: Pick<Config, 'stack' | 'kafka' | 'redis'>): Layout {
  if (config.stack.topology === 'single') {
    const { host, port } = split(config.kafka.brokers[0]!);
    return {
      topology: 'single',
      kafka: [{ name: 'kafka', id: 1, host, port, controllerPort: config.stack.kafkaControllerPort }],
      redis: [{ name: 'redis', host: config.redis.host, port: config.redis.port }],
    };
  }
  const seeds = config.redis.cluster ?? [];
  if (config.kafka.brokers.length < 3 || seeds.length < 6) {
    throw new Error(
      `STACK_TOPOLOGY=cluster runs 3 Kafka brokers and 6 Redis nodes: KAFKA_BROKERS names ${config.kafka.brokers.length}, REDIS_CLUSTER_NODES ${seeds.length}`,
    );
  }
  return {
    topology: 'cluster',
    kafka: config.kafka.brokers.map((b, i) => ({
      name: `kafka-${i + 1}`,
      id: i + 1,
      ...split(b),
      controllerPort: config.stack.kafkaControllerPort + CONTROLLER_PORT_STEP * i,
    })),
    redis: seeds.map((s, i) => ({ name: `redis-${i + 1}`, host: s.host, port: s.port })),
  };
}

/** Every node name of the layout a single-node operation (`kill`, `start`) accepts. */
export function nodeNames(layout: Layout): string[] {
  return ['postgres', ...layout.kafka.map((k) => k.name), ...layout.redis.map((r) => r.name), 'registry', 'connect'];
}

export const bindAddress = (host: string) => (host === 'localhost' ? '127.0.0.1' : host);

type KafkaSecrets = Pick<StackSecrets, 'kafkaAdminPassword' | 'kafkaControllerPassword' | 'kafkaKeystore' | 'truststore' | 'storePassword'>;

/**
 * server.properties of one KRaft node (broker and controller in one process). Clients and the
 * brokers among themselves use SASL/SCRAM over TLS on the one client listener; the controller
 * listener uses SASL/PLAIN over TLS (KRaft controllers cannot verify SCRAM: those credentials live
 * in the metadata they serve). With three voters the controllers also reach each other there.
 */
export function kafkaServerProperties(opts: { node: KafkaNode; voters: KafkaNode[]; dataDir: string; secrets: KafkaSecrets }): string[] {
  const { node, voters, secrets } = opts;
  const host = node.host;
  const n = voters.length;
  // Every replicated thing at full replication; a write needs a majority (2 of 3) in sync.
  const rf = n;
  const minIsr = Math.min(2, n);
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters.map((v) => `${v.id}@${v.host}:${v.controllerPort}`).join(',')}`,
    `listeners=SASL_SSL://${host}:${node.port},CONTROLLER://${host}:${node.controllerPort}`,
    `advertised.listeners=SASL_SSL://${host}:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL',
    'inter.broker.listener.name=SASL_SSL',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    'sasl.mechanism.controller.protocol=PLAIN',
    'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${propertyValue(jaas('scram', KAFKA_ADMIN_USER, secrets.kafkaAdminPassword))}`,
    'listener.name.controller.sasl.enabled.mechanisms=PLAIN',
    `listener.name.controller.plain.sasl.jaas.config=${propertyValue(
      jaas('plain', KAFKA_CONTROLLER_USER, secrets.kafkaControllerPassword, ` user_${KAFKA_CONTROLLER_USER}="${secrets.kafkaControllerPassword}"`),
    )}`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${secrets.kafkaKeystore}`,
    `ssl.keystore.password=${secrets.storePassword}`,
    'ssl.truststore.type=PKCS12',
    `ssl.truststore.location=${secrets.truststore}`,
    `ssl.truststore.password=${secrets.storePassword}`,
    'ssl.client.auth=none',
    `log.dirs=${opts.dataDir}`,
    'num.partitions=6',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=10',
    // Tests create consumer groups constantly: do not wait 3 s for more members.
    'group.initial.rebalance.delay.ms=0',
    // A killed consumer's partitions move after its session timeout; the platform's stages use
    // 3 s (KAFKA_SESSION_TIMEOUT_MS), below Kafka's default floor of 6 s.
    'group.min.session.timeout.ms=2000',
    'auto.create.topics.enable=true',
    'delete.topic.enable=true',
    'log.retention.hours=168',
    'log.segment.bytes=268435456',
    ...(n > 1
      ? [
          // A crashed broker's partitions get new leaders once the controller fences it, after
          // this long without a heartbeat (Kafka's default, 9 s, left produce stalled ~16 s in a
          // kill test; 6 s with 1 s heartbeats still tolerates a long GC pause on a busy machine).
          'broker.session.timeout.ms=6000',
          'broker.heartbeat.interval.ms=1000',
        ]
      : []),
    '',
  ];
}

/** JVM heap of one Kafka node: the single broker as before; three brokers share 2 cores and the machine. */
export function kafkaHeap(layout: Layout): string[] {
  return layout.topology === 'single' ? ['-Xms256m', '-Xmx1g'] : ['-Xms128m', '-Xmx384m'];
}

/**
 * redis.conf of one Redis node. In the cluster every node has the same ACL users as the single
 * server, and a replica authenticates to its master as the platform's user (masteruser).
 */
export function redisServerConf(opts: {
  node: RedisNode;
  dir: string;
  /** The default user's password: random, regenerated at every start, given to nobody. */
  defaultPassword: string;
  user: string;
  password: string;
  maxmemory: string;
  cluster: boolean;
}): string[] {
  return [
    `port ${opts.node.port}`,
    `bind ${bindAddress(opts.node.host)}`,
    // No anonymous access: the platform authenticates as its own user, and the default user has
    // a random password nobody is given (regenerated at every start). It must stay *on* with
    // every permission: Redis 7.0 replays the append-only file as the default user, and with
    // `user default off` it refuses every MULTI/EXEC in it (NOPERM), so the effects of every Lua
    // script (views, gate holds) were silently lost on restart (found by the chaos harness).
    `user default on >${opts.defaultPassword} ~* &* +@all`,
    `user ${opts.user} on >${opts.password} ~* &* +@all`,
    'protected-mode yes',
    `dir ${opts.dir}`,
    'daemonize no',
    // keep argv as is, so `down` can recognise the process by its config path
    'set-proc-title no',
    'save ""',
    'appendonly yes',
    'appendfsync everysec',
    // A memory budget, and never evict: the purchase gate's holds and counters and the views
    // are state, not cache (an evicted hold would oversell). At the budget, writes fail (OOM),
    // which the gateway answers with 503; bounding idempotency/ticket records is the purchase
    // path's job. See docs/security.md#authenticated-infrastructure-and-production-mode.
    `maxmemory ${opts.maxmemory}`,
    'maxmemory-policy noeviction',
    ...(opts.cluster
      ? [
          'cluster-enabled yes',
          `cluster-port ${opts.node.port + REDIS_CLUSTER_BUS_OFFSET}`,
          // Written by Redis itself (node id, epoch, peers), in this node's own directory.
          'cluster-config-file nodes.conf',
          // A dead master is failed over to its replica after about this long.
          `cluster-node-timeout ${REDIS_CLUSTER_NODE_TIMEOUT_MS}`,
          // Replicas authenticate to their master as the platform's user (the default user's
          // password is known to nobody).
          `masteruser ${opts.user}`,
          `masterauth ${opts.password}`,
          // A replica whose master died while it was itself away still takes over: better a
          // second of lost writes than a shard with no master (the processor replays from Kafka).
          'cluster-replica-validity-factor 0',
        ]
      : []),
    '',
  ];
}

// ---------------------------------------------------------------------------------------------
// what Redis Cluster reports

export interface ClusterNodeEntry {
  id: string;
  host: string;
  port: number;
  myself: boolean;
  role: 'master' | 'replica';
  /** Node id of the master, for a replica. */
  masterId: string | undefined;
  failed: boolean;
  connected: boolean;
  /** Slot ranges served (masters), inclusive. */
  slots: Array<[number, number]>;
}

/** Parses `CLUSTER NODES` (one line per node: id addr flags master ping pong epoch link slots...). */
export function parseClusterNodes(text: string): ClusterNodeEntry[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flags, master, , , , link, ...slots] = line.split(' ');
      const flagList = (flags ?? '').split(',');
      // addr is ip:port@cport[,hostname]
      const hostPort = (addr ?? '').split('@')[0]!;
      const at = hostPort.lastIndexOf(':');
      return {
        id: id!,
        host: hostPort.slice(0, at),
        port: Number(hostPort.slice(at + 1)),
        myself: flagList.includes('myself'),
        role: flagList.includes('slave') ? ('replica' as const) : ('master' as const),
        masterId: master && master !== '-' ? master : undefined,
        failed: flagList.includes('fail') || flagList.includes('fail?'),
        connected: link === 'connected',
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s): [number, number] => {
            const [a, b] = s.split('-');
            return [Number(a), Number(b ?? a)];
          }),
      };
    });
}

/** Parses `CLUSTER INFO` (key:value lines). */
export function parseClusterInfo(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}

export const slotCount = (ranges: Array<[number, number]>) => ranges.reduce((n, [a, b]) => n + b - a + 1, 0);

export function formatSlots(ranges: Array<[number, number]>): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}

/** The master serving `slot`, from a parsed `CLUSTER NODES`. */
export function masterForSlot(nodes: ClusterNodeEntry[], slot: number): ClusterNodeEntry | undefined {
  return nodes.find((n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
}

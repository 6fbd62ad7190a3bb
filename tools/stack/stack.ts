/**
 * The native stack: PostgreSQL (logical WAL), Redis, Kafka (KRaft), Kafka Connect with Debezium
 * and Apicurio Registry, each on loopback on the ports named by the configuration, with data in
 * `<STACK_DIR>` (default `.stack/`, gitignored). `up` is idempotent: what already runs is left
 * alone, what is missing is started, and it returns only when every part is healthy.
 * `down` stops exactly what `up` recorded (see proc.ts) and nothing else.
 *
 * STACK_TOPOLOGY=cluster runs 3 Kafka brokers and a 6-node Redis Cluster instead of one of each
 * (topology.ts: which nodes, on which ports, with which settings; redis-cluster.ts: forming and
 * probing the cluster), in its own STACK_DIR. stopNode/startNode act on one node by name.
 *
 * In `STACK=external` mode nothing is started or stopped; `up` checks the named services,
 * applies migrations and registers the connectors, and `status` reports their health.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Config, KafkaConnection } from '../../lib/config.ts';
import { isLoopbackHost, PROJECT_ROOT, redactUrl, reloadConfig } from '../../lib/config.ts';
import { PortInUseError, ServiceError, errorMessage } from '../../lib/errors.ts';
import { ensureTopics } from '../../lib/ensure-topics.ts';
import { createKafka } from '../../lib/kafka.ts';
import { migrate } from '../../lib/migrate.ts';
import { waitFor } from '../../lib/retry.ts';
import { ensureArtifacts, type Artifacts } from './artifacts.ts';
import {
  connectorStatuses,
  isRunning,
  loadConnectorSpecs,
  registerConnectors,
  restartFailed,
  SECRETS_DIR_TOKEN,
  waitConnectorsRunning,
  type ConnectorStatus,
} from './connectors.ts';
import { ensurePrerequisites, type Tools } from './prereqs.ts';
import { warmCdcPath } from './warm-cdc.ts';
import { killDaemon, lastLines, livePid, logDir, portOpen, readRecord, removeRecord, run, spawnDaemon, stopDaemon } from './proc.ts';
import { ensureRedisCluster, probeRedisCluster, probeRedisNode, redisMasterFor } from './redis-cluster.ts';
import { renderTable } from './table.ts';
import { kafkaHeap, kafkaServerProperties, nodeNames, REDIS_CLUSTER_BUS_OFFSET, redisServerConf, stackLayout, type KafkaNode, type Layout, type RedisNode } from './topology.ts';
import {
  ensureSecrets,
  isPreAuthStack,
  jaas,
  KAFKA_ADMIN_USER,
  KAFKA_CLIENT_USER,
  KAFKA_CONNECT_USER,
  propertyValue,
  scramFormatArgs,
  secretsDir,
  writeSecretFile,
  type StackSecrets,
} from './secrets.ts';

export type ComponentName = 'postgres' | 'redis' | 'kafka' | 'connect' | 'registry';
export const COMPONENTS: ComponentName[] = ['postgres', 'redis', 'kafka', 'registry', 'connect'];

export interface ComponentStatus {
  name: string;
  endpoint: string;
  pid: number | null;
  healthy: boolean;
  detail: string;
  /** Cluster topology, a Kafka node: its broker (and controller) id and ports. */
  broker?: { id: number; port: number; controllerPort: number };
  /** Cluster topology, a Redis node: its role and the slots it serves (masters). */
  redis?: { port: number; role: 'master' | 'replica' | 'unknown'; slots: number; slotRanges: string };
}

export interface StackStatus {
  mode: Config['stack']['mode'];
  topology: Config['stack']['topology'];
  healthy: boolean;
  components: ComponentStatus[];
  connectors: ConnectorStatus[];
}

export type Log = (line: string) => void;

export { redisMasterFor, stackLayout };
export type { Layout };

/** Second database on the same Postgres, where Apicurio keeps schemas (so ids survive restarts). */
export const REGISTRY_DATABASE = 'schema_registry';

function hostPort(urlString: string, fallbackPort: number): { host: string; port: number } {
  const u = new URL(urlString);
  return { host: u.hostname, port: Number(u.port || fallbackPort) };
}

export function endpoints(config: Config): Record<ComponentName, { host: string; port: number; display: string }> {
  const [kHost, kPort] = config.kafka.brokers[0]!.split(':') as [string, string];
  const connect = hostPort(config.connect.url, 80);
  const registry = hostPort(config.registry.url, 80);
  const protocol = `${config.kafka.sasl ? 'SASL_' : ''}${config.kafka.tls ? 'SSL' : 'PLAINTEXT'}`;
  return {
    postgres: { host: config.pg.host, port: config.pg.port, display: redactUrl(config.pg.url) },
    redis: { host: config.redis.host, port: config.redis.port, display: redactUrl(config.redis.url) },
    kafka: { host: kHost, port: Number(kPort), display: `${protocol}://${config.kafka.brokers.join(',')}` },
    connect: { ...connect, display: config.connect.url },
    registry: { ...registry, display: config.registry.url },
  };
}

/** What `npm run -s stack -- url <name>` prints. */
export const SERVICE_URLS = ['pg', 'redis', 'kafka', 'connect', 'registry'] as const;

/**
 * A service's connection string with its credentials (for psql, redis-cli; for Kafka the
 * bootstrap list: its tools take `<STACK_DIR>/secrets/kafka-client.properties`).
 */
export function serviceUrl(config: Config, name: (typeof SERVICE_URLS)[number]): string {
  switch (name) {
    case 'pg':
      return config.pg.url;
    case 'redis':
      return config.redis.url;
    case 'kafka':
      return config.kafka.brokers.join(',');
    case 'connect':
      return config.connect.url;
    case 'registry':
      return config.registry.url;
  }
}

// ---------------------------------------------------------------------------------------------
// health probes (used by up, status and the tests' global setup)

async function probePostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string; wal: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('wal_level') AS wal",
    );
    const row = rows[0]!;
    if (row.wal !== 'logical') throw new ServiceError(`wal_level is ${row.wal}, Debezium needs logical`);
    return `PostgreSQL ${row.v}, wal_level=logical`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function probeRedis(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const info = await redis.info('server');
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`;
  } finally {
    redis.disconnect();
  }
}

async function describeKafka(connection: KafkaConnection): Promise<{ brokers: number[]; controller: number | null }> {
  const admin = createKafka({
    connection,
    clientId: 'invsync-health',
    overrides: { retry: { retries: 0 }, connectionTimeout: 2000, requestTimeout: 5000 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return { brokers: cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b), controller: cluster.controller };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function probeKafka(config: Config): Promise<string> {
  const { brokers, controller } = await describeKafka(config.kafka);
  const expected = stackLayout(config).kafka.length;
  // The cluster counts as healthy only with every broker registered: `up` waits for it (topics
  // are created with replication 3), and a chaos test sees a killed broker as Kafka not back.
  if (config.stack.mode === 'native' && brokers.length < expected) {
    throw new ServiceError(`${brokers.length} of ${expected} brokers registered (ids ${brokers.join(',') || 'none'})`);
  }
  return `${brokers.length} broker(s)${brokers.length > 1 ? ` (ids ${brokers.join(',')})` : ''}, controller ${controller}`;
}

/** One broker of the cluster: it answers on its own port and is registered (not fenced). */
async function probeKafkaNode(config: Config, node: KafkaNode): Promise<string> {
  const { brokers } = await describeKafka({ ...config.kafka, brokers: [`${node.host}:${node.port}`] });
  if (!brokers.includes(node.id)) throw new ServiceError(`broker ${node.id} answers but is not registered (cluster lists ${brokers.join(',') || 'none'})`);
  // (No controller id here: KRaft brokers tell clients a random live broker as "controller".)
  return `broker ${node.id} registered (controller port ${node.controllerPort}); it sees ${brokers.length} broker(s): ${brokers.join(',')}`;
}

async function probeHttp(url: string, describe: (body: unknown) => string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000), headers: { accept: 'application/json' } });
  if (!res.ok) throw new ServiceError(`HTTP ${res.status} from ${url}`);
  return describe(await res.json().catch(() => undefined));
}

const probeConnect = (url: string) =>
  probeHttp(`${url}/`, (b) => `Kafka Connect ${(b as { version?: string } | undefined)?.version ?? ''}`.trim());

const probeRegistry = (url: string) =>
  probeHttp(`${url}/subjects`, (b) => `registry ok, ${Array.isArray(b) ? b.length : 0} subject(s)`);

/**
 * One component's health check (what `status` reports): resolves with a description, rejects
 * when it does not serve. In the cluster topology `kafka` and `redis` are the whole clusters
 * (every broker registered; cluster_state ok with every slot served), and each node can be
 * probed by its name (`kafka-2`, `redis-5`).
 */
export function probeComponent(config: Config, name: ComponentName | string): Promise<string> {
  const cluster = config.stack.topology === 'cluster';
  switch (name) {
    case 'postgres':
      return probePostgres(config.pg.url);
    case 'redis':
      return config.redis.cluster ? probeRedisCluster(config) : probeRedis(config.redis.url);
    case 'kafka':
      return probeKafka(config);
    case 'connect':
      return probeConnect(config.connect.url);
    case 'registry':
      return probeRegistry(config.registry.url);
  }
  const layout = stackLayout(config);
  const broker = cluster ? layout.kafka.find((k) => k.name === name) : undefined;
  if (broker) return probeKafkaNode(config, broker);
  if (cluster && layout.redis.some((r) => r.name === name)) return probeRedisNode(config, name).then((r) => r.detail);
  return Promise.reject(new ServiceError(`no stack component or node named ${name} (${nodeNames(layout).join(', ')})`));
}

// ---------------------------------------------------------------------------------------------
// status

export async function stackStatus(config: Config): Promise<StackStatus> {
  const eps = endpoints(config);
  const layout = stackLayout(config);
  const native = config.stack.mode === 'native';
  /** `process`: the recorded daemon behind it; none for a whole cluster (kafka, redis of the cluster). */
  const check = async (name: string, endpoint: string, process: string | undefined, extra: Partial<ComponentStatus> = {}): Promise<ComponentStatus> => {
    const pid = native && process ? (livePid(config.stack.dir, process) ?? null) : null;
    try {
      const detail = await probeComponent(config, name);
      return { name, endpoint, pid, healthy: true, detail, ...extra };
    } catch (err) {
      const detail = native && process && pid === null ? 'not running' : `unhealthy: ${errorMessage(err)}`;
      return { name, endpoint, pid, healthy: false, detail, ...extra };
    }
  };
  const redisNode = async (node: RedisNode): Promise<ComponentStatus> => {
    const endpoint = `redis://${node.host}:${node.port}`;
    const pid = native ? (livePid(config.stack.dir, node.name) ?? null) : null;
    try {
      const { detail, state } = await probeRedisNode(config, node.name);
      return { name: node.name, endpoint, pid, healthy: true, detail, redis: { port: node.port, role: state.role, slots: state.slots, slotRanges: state.slotRanges } };
    } catch (err) {
      // A node that answers but is unhappy (cluster_state fail, replica link down) still says what it is.
      const state = (err as { state?: Awaited<ReturnType<typeof probeRedisNode>>['state'] }).state;
      const detail = native && pid === null ? 'not running' : `unhealthy: ${errorMessage(err)}`;
      return {
        name: node.name, endpoint, pid, healthy: false, detail,
        redis: { port: node.port, role: state?.role ?? 'unknown', slots: state?.slots ?? 0, slotRanges: state?.slotRanges ?? '' },
      };
    }
  };
  const components =
    layout.topology === 'single'
      ? await Promise.all(COMPONENTS.map((name) => check(name, eps[name].display, name)))
      : await Promise.all([
          check('postgres', eps.postgres.display, 'postgres'),
          check('kafka', eps.kafka.display, undefined),
          ...layout.kafka.map((k) =>
            check(k.name, `SASL_SSL://${k.host}:${k.port}`, k.name, { broker: { id: k.id, port: k.port, controllerPort: k.controllerPort } }),
          ),
          check('redis', `cluster of ${layout.redis.length}: ${layout.redis.map((r) => r.port).join(',')}`, undefined),
          ...layout.redis.map(redisNode),
          check('registry', eps.registry.display, 'registry'),
          check('connect', eps.connect.display, 'connect'),
        ]);
  let connectors: ConnectorStatus[] = [];
  const connectUp = components.find((c) => c.name === 'connect')?.healthy;
  const expected = loadConnectorSpecs().map((s) => s.name);
  if (connectUp) {
    try {
      connectors = await connectorStatuses(config.connect.url);
    } catch {
      connectors = [];
    }
  }
  for (const name of expected) {
    if (!connectors.some((c) => c.name === name)) connectors.push({ name, state: 'MISSING', tasks: [] });
  }
  const healthy =
    components.every((c) => c.healthy) && expected.every((n) => connectors.some((c) => c.name === n && isRunning(c)));
  return { mode: config.stack.mode, topology: config.stack.topology, healthy, components, connectors };
}

export function renderStatus(status: StackStatus): string {
  const rows = status.components.map((c) => [
    c.name,
    c.endpoint,
    c.healthy ? 'healthy' : 'DOWN',
    c.pid === null ? '-' : String(c.pid),
    c.detail,
  ]);
  for (const c of status.connectors) {
    const tasks = c.tasks.map((t) => t.state).join(',') || '-';
    rows.push([`connector`, c.name, isRunning(c) ? 'healthy' : 'DOWN', '-', `${c.state}, tasks ${tasks}`]);
  }
  return renderTable(['COMPONENT', 'ENDPOINT', 'HEALTH', 'PID', 'DETAIL'], rows);
}

// ---------------------------------------------------------------------------------------------
// native components

interface Ctx {
  config: Config;
  tools: Tools;
  artifacts: Artifacts;
  secrets: StackSecrets;
  log: Log;
}

function dirFor(config: Config, name: string): string {
  return path.join(config.stack.dir, name);
}

function asPgUser(tools: Tools, command: string, args: string[]): [string, string[]] {
  return tools.pgOsUser ? ['runuser', ['-u', tools.pgOsUser, '--', command, ...args]] : [command, args];
}

function pgDataDir(config: Config): string {
  return path.join(dirFor(config, 'postgres'), 'data');
}

/** A daemon of the stack and the ports it binds (with the variable that moves each). */
interface Daemon {
  name: string;
  ports: Array<{ host: string; port: number; variable: string }>;
}

function daemons(config: Config, layout: Layout): Daemon[] {
  const eps = endpoints(config);
  const cluster = layout.topology === 'cluster';
  return [
    { name: 'postgres', ports: [{ ...eps.postgres, variable: 'PG_URL' }] },
    ...layout.redis.map((r) => ({
      name: r.name,
      // A cluster node also binds its cluster bus (topology.ts: REDIS_CLUSTER_BUS_OFFSET).
      ports: [
        { host: r.host, port: r.port, variable: cluster ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL' },
        ...(cluster ? [{ host: r.host, port: r.port + REDIS_CLUSTER_BUS_OFFSET, variable: 'REDIS_CLUSTER_NODES' }] : []),
      ],
    })),
    ...layout.kafka.map((k) => ({
      name: k.name,
      ports: [
        { host: k.host, port: k.port, variable: 'KAFKA_BROKERS' },
        { host: k.host, port: k.controllerPort, variable: 'KAFKA_CONTROLLER_PORT' },
      ],
    })),
    { name: 'registry', ports: [{ ...eps.registry, variable: 'SCHEMA_REGISTRY_URL' }] },
    { name: 'connect', ports: [{ ...eps.connect, variable: 'CONNECT_URL' }] },
  ];
}

/** How long a port may stay taken after its daemon died before it counts as someone else's. */
const PORT_GRACE_MS = 15_000;

/**
 * `died`: this stack ran the daemon and it is gone (its record is left, as after a SIGKILL). Such
 * a daemon may leave a forked child holding its port for a moment (Redis's AOF rewrite or RDB save
 * child outlives a SIGKILLed parent): the port gets a grace period before it counts as taken.
 */
async function ensurePortsFree(daemon: Daemon, died: boolean): Promise<void> {
  for (const { host, port, variable } of daemon.ports) {
    const until = Date.now() + (died ? PORT_GRACE_MS : 0);
    while ((await portOpen(port, host)) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    if (await portOpen(port, host)) {
      throw new PortInUseError(
        `port ${port} (${daemon.name}) is already in use by a process this stack did not start; free it or set ${variable} to another port`,
      );
    }
  }
}

async function startPostgres({ config, tools, secrets, log }: Ctx): Promise<void> {
  const base = dirFor(config, 'postgres');
  const data = pgDataDir(config);
  const logFile = path.join(base, 'postgres.log');
  fs.mkdirSync(base, { recursive: true });
  if (tools.pgOsUser) run('chown', ['-R', `${tools.pgOsUser}:`, base]);
  const pgCtl = path.join(tools.pgBin, 'pg_ctl');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    log(`  postgres  initdb ${data}${tools.pgOsUser ? ` (as OS user ${tools.pgOsUser}: initdb refuses root)` : ''}, scram-sha-256 passwords`);
    // The superuser's password comes from a file initdb reads (never the command line); the file
    // lives only for the duration of initdb, readable by the OS user initdb runs as.
    const pwfile = path.join(base, '.initdb-pw');
    writeSecretFile(pwfile, `${secrets.pgPassword}\n`);
    if (tools.pgOsUser) run('chown', [`${tools.pgOsUser}:`, pwfile]);
    const initdb = (locale: string) =>
      asPgUser(tools, path.join(tools.pgBin, 'initdb'), [
        '-D', data, '-U', config.pg.user, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', `--locale=${locale}`,
      ]);
    try {
      const [cmd, args] = initdb('C.UTF-8');
      try {
        run(cmd, args);
      } catch (err) {
        // Some systems lack the C.UTF-8 locale; plain C always exists.
        fs.rmSync(data, { recursive: true, force: true });
        const [cmd2, args2] = initdb('C');
        try {
          run(cmd2, args2);
        } catch {
          throw new ServiceError(`initdb failed: ${errorMessage(err)}`);
        }
      }
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
    fs.appendFileSync(
      path.join(data, 'postgresql.conf'),
      [
        '',
        '# --- invsync native stack ---',
        `listen_addresses = '${config.pg.host === 'localhost' ? '127.0.0.1' : config.pg.host}'`,
        "password_encryption = 'scram-sha-256'",
        "unix_socket_directories = ''",
        'wal_level = logical',
        'max_wal_senders = 16',
        'max_replication_slots = 16',
        "max_slot_wal_keep_size = '4GB'",
        'max_connections = 300',
        "shared_buffers = '256MB'",
        "wal_sender_timeout = '30s'",
        "log_min_messages = 'warning'",
        // A statement that waits for a lock longer than deadlock_timeout (1 s) is logged with who
        // holds it: the first thing to read when something in the platform or its tests hangs.
        'log_lock_waits = on',
        '',
      ].join('\n'),
    );
  }
  const [cmd, args] = asPgUser(tools, pgCtl, ['-D', data, '-l', logFile, '-o', `-p ${config.pg.port}`, '-w', '-t', '60', 'start']);
  try {
    run(cmd, args);
  } catch (err) {
    throw new ServiceError(`postgres failed to start: ${errorMessage(err)}\n${lastLines(logFile)}`);
  }
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  fs.mkdirSync(path.join(config.stack.dir, 'run'), { recursive: true });
  fs.writeFileSync(
    path.join(config.stack.dir, 'run', 'postgres.json'),
    JSON.stringify({ name: 'postgres', pid, command: [cmd, ...args], startedAt: new Date().toISOString(), marker: data, log: logFile }, null, 2),
  );
}

/** Creates the application and registry databases when they do not exist. */
async function ensureDatabases(config: Config): Promise<void> {
  const admin = new URL(config.pg.url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    for (const db of [config.pg.database, REGISTRY_DATABASE]) {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(db)}`);
    }
  } finally {
    await client.end();
  }
}

async function stopPostgres(config: Config, tools: Tools | undefined): Promise<boolean> {
  const pid = livePid(config.stack.dir, 'postgres');
  if (pid === undefined) return stopDaemon(config.stack.dir, 'postgres');
  const data = pgDataDir(config);
  const bin = tools?.pgBin;
  if (bin) {
    try {
      const owner = fs.statSync(data).uid;
      const cmd = path.join(bin, 'pg_ctl');
      const args = ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'];
      if (process.getuid?.() === 0 && owner !== 0) run('runuser', ['-u', userName(owner), '--', cmd, ...args]);
      else run(cmd, args);
    } catch {
      // fall through to signals
    }
  }
  return (await stopDaemon(config.stack.dir, 'postgres', 30_000)) || true;
}

function userName(uid: number): string {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(uid));
  return line?.split(':')[0] ?? String(uid);
}

function startRedis({ config, tools, secrets }: Ctx, node: RedisNode): void {
  const dir = dirFor(config, node.name);
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'redis.conf');
  // Holds the ACL password: written 0600 like the secrets it comes from.
  writeSecretFile(
    conf,
    redisServerConf({
      node,
      dir,
      defaultPassword: randomBytes(24).toString('hex'),
      user: secrets.redisUser,
      password: secrets.redisPassword,
      maxmemory: config.redis.maxmemory,
      cluster: config.stack.topology === 'cluster',
    }).join('\n'),
  );
  spawnDaemon({ name: node.name, command: tools.redisServer, args: [conf], marker: conf, stackDir: config.stack.dir });
}

function log4jConfig(file: string): void {
  fs.writeFileSync(
    file,
    [
      'log4j.rootLogger=INFO, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.org.apache.kafka.clients=WARN',
      'log4j.logger.org.reflections=ERROR',
      'log4j.logger.kafka.request.logger=WARN',
      'log4j.logger.state.change.logger=WARN',
      '',
    ].join('\n'),
  );
}

/**
 * The KRaft cluster id: the single node makes one up when it formats; the cluster's nodes must
 * all be formatted with the same one, so it is kept in `<STACK_DIR>/kafka-cluster-id`.
 */
function kafkaClusterId(config: Config): string {
  const file = path.join(config.stack.dir, 'kafka-cluster-id');
  if (config.stack.topology === 'cluster' && fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  // Kafka's own ids never start with '-' (it would read as a command-line flag): nor do ours.
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  if (config.stack.topology === 'cluster') fs.writeFileSync(file, `${clusterId}\n`);
  return clusterId;
}

function startKafka({ config, tools, artifacts, secrets, log }: Ctx, node: KafkaNode, layout: Layout): void {
  const dir = dirFor(config, node.name);
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const props = path.join(dir, 'server.properties');
  // Holds passwords (JAAS, key store): 0600.
  writeSecretFile(props, kafkaServerProperties({ node, voters: layout.kafka, dataDir: data, secrets }).join('\n'));
  const log4j = path.join(dir, 'log4j.properties');
  log4jConfig(log4j);
  const env = { ...process.env, CLASSPATH: artifacts.kafkaClasspath };
  if (!fs.existsSync(path.join(data, 'meta.properties'))) {
    const clusterId = kafkaClusterId(config);
    log(`  ${node.name.padEnd(9)} formatting KRaft storage (cluster ${clusterId}) with SCRAM users ${KAFKA_ADMIN_USER}, ${KAFKA_CLIENT_USER}, ${KAFKA_CONNECT_USER}`);
    const scram = scramFormatArgs([
      { name: KAFKA_ADMIN_USER, password: secrets.kafkaAdminPassword },
      { name: KAFKA_CLIENT_USER, password: secrets.kafkaPassword },
      { name: KAFKA_CONNECT_USER, password: secrets.connectKafkaPassword },
    ]);
    run(tools.java, [`-Dlog4j.configuration=file:${log4j}`, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, ...scram, '--ignore-formatted'], { env });
  }
  spawnDaemon({
    name: node.name,
    command: tools.java,
    args: [...kafkaHeap(layout), '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`, 'kafka.Kafka', props],
    env,
    marker: props,
    stackDir: config.stack.dir,
  });
}

/**
 * The file Kafka Connect's FileConfigProvider resolves `${file:<dir>/connect.properties:<key>}`
 * from: how Connect reaches Postgres and Kafka (shared key names with docker-compose).
 */
export function connectSecretProperties(config: Config, secrets: StackSecrets): Record<string, string> {
  const t = config.connect.pg;
  return {
    'kafka.bootstrap': config.kafka.brokers.join(','),
    'kafka.security.protocol': 'SASL_SSL',
    'kafka.sasl.mechanism': 'SCRAM-SHA-512',
    'kafka.sasl.jaas.config': jaas('scram', KAFKA_CONNECT_USER, secrets.connectKafkaPassword),
    'kafka.ssl.truststore.location': secrets.truststore,
    'kafka.ssl.truststore.password': secrets.storePassword,
    'pg.host': t.host,
    'pg.port': String(t.port),
    'pg.user': t.user,
    'pg.password': secrets.pgPassword,
    'pg.database': t.database,
  };
}

function startConnect({ config, tools, artifacts, secrets }: Ctx): void {
  const dir = dirFor(config, 'connect');
  fs.mkdirSync(dir, { recursive: true });
  const { host, port } = endpoints(config).connect;
  if (!isLoopbackHost(host)) {
    throw new ServiceError(`CONNECT_URL names ${host}: the native stack binds Kafka Connect's REST API (no authentication) to loopback only`);
  }
  writeSecretFile(
    secrets.connectProperties,
    `${Object.entries(connectSecretProperties(config, secrets))
      .map(([k, v]) => `${k}=${propertyValue(v)}`)
      .join('\n')}\n`,
  );
  const shared = fs.readFileSync(path.join(PROJECT_ROOT, 'debezium', 'connect-worker.properties'), 'utf8').replaceAll(SECRETS_DIR_TOKEN, secrets.dir);
  const props = path.join(dir, 'worker.properties');
  fs.writeFileSync(
    props,
    `${shared}\n# --- native stack ---\nlisteners=http://${host}:${port}\nrest.advertised.host.name=${host}\nrest.advertised.port=${port}\nplugin.path=${artifacts.pluginPath}\n` +
      `config.providers.file.param.allowed.paths=${secrets.dir}\n` +
      // The cluster: Connect's own topics on all three brokers, explicitly (the shared file's -1
      // takes the brokers' default, which is 3 there too; a later key wins in a properties file).
      (config.stack.topology === 'cluster'
        ? ['config', 'offset', 'status'].map((t) => `${t}.storage.replication.factor=${stackLayout(config).kafka.length}\n`).join('')
        : ''),
  );
  const log4j = path.join(dir, 'log4j.properties');
  log4jConfig(log4j);
  spawnDaemon({
    name: 'connect',
    command: tools.java,
    args: ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`, 'org.apache.kafka.connect.cli.ConnectDistributed', props],
    env: { ...process.env, CLASSPATH: artifacts.kafkaClasspath },
    marker: props,
    stackDir: config.stack.dir,
  });
}

function startRegistry({ config, tools, artifacts, secrets }: Ctx): void {
  const dir = dirFor(config, 'registry');
  fs.mkdirSync(dir, { recursive: true });
  const { host, port } = endpoints(config).registry;
  const marker = `-Dinvsync.stack=${config.stack.dir}`;
  spawnDaemon({
    name: 'registry',
    command: tools.java,
    args: [
      '-Xms128m', '-Xmx512m', '-Djava.awt.headless=true', marker,
      `-Dquarkus.http.host=${host}`, `-Dquarkus.http.port=${port}`,
      '-Dquarkus.http.access-log.enabled=false',
      '-Dapicurio.storage.kind=sql', '-Dapicurio.storage.sql.kind=postgresql',
      `-Dapicurio.datasource.url=jdbc:postgresql://${config.pg.host}:${config.pg.port}/${REGISTRY_DATABASE}`,
      '-Dapicurio.storage.snapshot.location=' + dir,
      '-jar', artifacts.apicurioJar,
    ],
    // The database credentials go through the environment (Quarkus maps APICURIO_DATASOURCE_*
    // to apicurio.datasource.*), never the command line, which every local user can read.
    env: { ...process.env, APICURIO_DATASOURCE_USERNAME: config.pg.user, APICURIO_DATASOURCE_PASSWORD: secrets.pgPassword },
    cwd: path.dirname(artifacts.apicurioJar),
    marker,
    stackDir: config.stack.dir,
  });
}

/** The recorded processes behind a component: the cluster's `kafka` and `redis` are several. */
function processesOf(config: Config, name: string): string[] {
  if (config.stack.mode !== 'native' || name === 'postgres') return [];
  const layout = stackLayout(config);
  if (name === 'kafka') return layout.kafka.map((k) => k.name);
  if (name === 'redis') return layout.redis.map((r) => r.name);
  return [name];
}

async function awaitHealthy(config: Config, name: string, log: Log, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let lastErr = '';
  const processes = processesOf(config, name);
  const exited = () => processes.find((p) => livePid(config.stack.dir, p) === undefined);
  const ok = await waitFor(
    async () => {
      try {
        await probeComponent(config, name);
        return true;
      } catch (err) {
        lastErr = errorMessage(err);
        if (exited() !== undefined) throw new ServiceError(`${exited()} exited during start-up`);
        return false;
      }
    },
    { timeoutMs, intervalMs: 250 },
  );
  const gone = exited();
  if (!ok || gone !== undefined) {
    const proc = gone ?? processes[0] ?? name;
    const logFile = readRecord(config.stack.dir, proc)?.log ?? path.join(logDir(config.stack.dir), `${proc}.log`);
    throw new ServiceError(
      `${gone !== undefined ? `${gone} exited during start-up` : `${name} not healthy after ${Math.round(timeoutMs / 1000)}s (${lastErr})`}` +
        (config.stack.mode === 'native' ? `; last lines of ${logFile}:\n${lastLines(logFile)}` : ''),
    );
  }
  log(`  ${name.padEnd(9)} healthy after ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

// ---------------------------------------------------------------------------------------------
// up / down

export interface UpResult {
  status: StackStatus;
  seconds: number;
  /** `config` reloaded after `up`: with the credentials the native stack generated. */
  config: Readonly<Config>;
}

/** Where Kafka Connect finds its secrets file: the native stack's, or CONNECT_SECRETS_DIR. */
export function connectSecretsDir(config: Config): string | undefined {
  return config.connect.secretsDir ?? (config.stack.mode === 'native' ? secretsDir(config.stack.dir) : undefined);
}

/**
 * Files for the command-line tools (docs/stack.md): a libpq password file (PGPASSFILE) and a
 * Kafka client properties file (--command-config / --consumer.config), both 0600.
 */
function writeToolFiles(config: Config, secrets: StackSecrets): void {
  writeSecretFile(path.join(secrets.dir, 'pgpass'), `${config.pg.host}:${config.pg.port}:*:${config.pg.user}:${secrets.pgPassword.replaceAll('\\', '\\\\').replaceAll(':', '\\:')}\n`);
  writeSecretFile(
    path.join(secrets.dir, 'kafka-client.properties'),
    [
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-512',
      `sasl.jaas.config=${propertyValue(jaas('scram', KAFKA_CLIENT_USER, config.kafka.sasl?.password ?? ''))}`,
      'ssl.truststore.type=PKCS12',
      `ssl.truststore.location=${secrets.truststore}`,
      `ssl.truststore.password=${secrets.storePassword}`,
      '',
    ].join('\n'),
  );
}

function keytoolFor(tools: Tools): string {
  const beside = path.join(path.dirname(fs.realpathSync(tools.java)), 'keytool');
  return fs.existsSync(beside) ? beside : 'keytool';
}

/** What starting a native process needs: programs, downloaded artifacts, the stack's secrets. */
async function nativeContext(given: Readonly<Config>, log: Log): Promise<Ctx> {
  const tools = ensurePrerequisites({ pgBinDir: given.stack.pgBinDir, autoInstall: given.stack.autoInstall, log });
  const artifacts = await ensureArtifacts({ cacheDir: given.stack.cacheDir, mvn: tools.mvn, mavenRepoUrl: given.stack.mavenRepoUrl, log });
  if (isPreAuthStack(given.stack.dir)) {
    throw new ServiceError(
      `the stack in ${given.stack.dir} was created before the stack had credentials (trust auth, PLAINTEXT Kafka); ` +
        `recreate it: npm run stack -- down && rm -rf ${given.stack.dir} && npm run stack -- up`,
    );
  }
  fs.mkdirSync(given.stack.dir, { recursive: true });
  const brokerHost = stackLayout(given).kafka[0]!.host;
  const secrets = ensureSecrets({ stackDir: given.stack.dir, keytool: keytoolFor(tools), brokerHost, log });
  return { config: reloadConfig(given), tools, artifacts, secrets, log };
}

/**
 * Brings the stack up (native) or checks it (external), applies migrations and registers the
 * connectors. Resolves only when everything is healthy.
 */
export async function stackUp(given: Readonly<Config>, log: Log): Promise<UpResult> {
  let config = given;
  const t0 = Date.now();
  const timeout = config.stack.upTimeoutMs;
  let connectStarted = false;
  if (config.stack.mode === 'external') {
    log('STACK=external: using the services named in the environment');
    await Promise.all(COMPONENTS.filter((c) => c !== 'connect').map((c) => awaitHealthy(config, c, log, timeout)));
  } else {
    fs.mkdirSync(config.stack.dir, { recursive: true });
    const layout = stackLayout(config);
    if (layout.topology === 'cluster') log(`  topology  cluster: ${layout.kafka.length} Kafka brokers, Redis Cluster of ${layout.redis.length} nodes`);
    const need = (name: string) => livePid(config.stack.dir, name) === undefined;
    for (const daemon of daemons(config, layout)) {
      if (need(daemon.name)) await ensurePortsFree(daemon, readRecord(config.stack.dir, daemon.name) !== undefined);
      else log(`  ${daemon.name.padEnd(9)} already running (pid ${livePid(config.stack.dir, daemon.name)})`);
    }
    // Credentials: generated on the first up (only once the ports are known to be free), then
    // the configuration is reloaded so everything below uses them.
    const ctx = await nativeContext(config, log);
    config = ctx.config;
    writeToolFiles(config, ctx.secrets);

    for (const node of layout.redis) if (need(node.name)) startRedis(ctx, node);
    for (const node of layout.kafka) if (need(node.name)) startKafka(ctx, node, layout);
    if (need('postgres')) await startPostgres(ctx);
    if (!(await waitFor(() => ensureDatabases(config).then(() => true), { timeoutMs: 30_000 }))) {
      await ensureDatabases(config); // surfaces the error
    }
    await awaitHealthy(config, 'postgres', log, timeout);
    if (need('registry')) startRegistry(ctx);
    await applyMigrations(config, log);
    await awaitHealthy(config, 'kafka', log, timeout);
    if (need('connect')) {
      startConnect(ctx);
      connectStarted = true;
    }
    if (layout.topology === 'cluster') await ensureRedisCluster({ config, redisServer: ctx.tools.redisServer, log, timeoutMs: timeout });
    await Promise.all([awaitHealthy(config, 'redis', log, timeout), awaitHealthy(config, 'registry', log, timeout)]);
  }
  if (config.stack.mode === 'external') await applyMigrations(config, log);
  const created = await ensureTopics(createKafka({ connection: config.kafka, clientId: 'invsync-stack' }), undefined, config.topics);
  if (created.length) log(`  kafka     created topics: ${created.join(', ')}`);
  await awaitHealthy(config, 'connect', log, timeout);
  await registerConnectors(config.connect.url, loadConnectorSpecs(), connectSecretsDir(config));
  await restartFailed(config.connect.url).catch(() => undefined);
  const names = loadConnectorSpecs().map((s) => s.name);
  await waitConnectorsRunning(config.connect.url, names, timeout);
  log(`  connect   connectors RUNNING: ${names.join(', ')}`);
  // A freshly started Connect is seconds slow per change until its JVM has done the work a few
  // thousand times; do that work now, before anything reports ready (warm-cdc.ts). A Connect that
  // was already running is as warm as its traffic made it.
  if (connectStarted) await warmCdcPath(config, log);
  const status = await stackStatus(config);
  fs.mkdirSync(config.stack.dir, { recursive: true });
  return { status, seconds: (Date.now() - t0) / 1000, config };
}

async function applyMigrations(config: Config, log: Log): Promise<void> {
  const res = await migrate(config.pg.url);
  log(
    `  postgres  migrations: ${res.applied.length ? `applied ${res.applied.join(', ')}` : 'none pending'}` +
      (res.alreadyApplied.length ? ` (${res.alreadyApplied.length} already applied)` : ''),
  );
}

/** Stops, in reverse dependency order, exactly the processes `up` recorded. */
export async function stackDown(config: Config, log: Log): Promise<void> {
  if (config.stack.mode === 'external') {
    log('STACK=external: nothing to stop (the services are not ours)');
    return;
  }
  let tools: Tools | undefined;
  try {
    tools = ensurePrerequisites({ pgBinDir: config.stack.pgBinDir, autoInstall: false, log });
  } catch {
    tools = undefined;
  }
  const layout = stackLayout(config);
  // Reverse dependency order; the nodes of one engine together (a KRaft node stopping alone
  // after its peers would wait for a quorum that is gone).
  const groups: string[][] = [['connect'], ['registry'], layout.kafka.map((k) => k.name), layout.redis.map((r) => r.name), ['postgres']];
  for (const group of groups) {
    await Promise.all(
      group.map(async (name) => {
        const stopped = name === 'postgres' ? await stopPostgres(config, tools) : await stopDaemon(config.stack.dir, name);
        log(`  ${name.padEnd(9)} ${stopped ? 'stopped' : 'not running'}`);
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// one node at a time (chaos and scale tests; `npm run stack -- kill|stop|start <node>`)

function checkNode(config: Config, name: string): Layout {
  if (config.stack.mode !== 'native') throw new ServiceError('STACK=external: the stack does not own any process to stop or start');
  const layout = stackLayout(config);
  if (!nodeNames(layout).includes(name)) throw new ServiceError(`no node named ${name} in the ${layout.topology} topology (${nodeNames(layout).join(', ')})`);
  return layout;
}

/**
 * Stops one node of the native stack: `hard` is SIGKILL of its process group (a crash: no
 * controlled shutdown, no AOF flush), otherwise SIGTERM with a grace period. Resolves with the
 * pid it stopped. Postgres stops with `pg_ctl -m fast` (soft) or `-m immediate` (hard).
 */
export async function stopNode(config: Config, name: string, opts: { hard?: boolean } = {}): Promise<number> {
  checkNode(config, name);
  const pid = livePid(config.stack.dir, name);
  if (pid === undefined) throw new ServiceError(`${name} is not running (no live pid recorded in ${config.stack.dir}/run)`);
  if (name === 'postgres') {
    const tools = ensurePrerequisites({ pgBinDir: config.stack.pgBinDir, autoInstall: false, log: () => undefined });
    if (opts.hard) {
      const [cmd, args] = asPgUser(tools, path.join(tools.pgBin, 'pg_ctl'), ['-D', pgDataDir(config), '-m', 'immediate', '-w', '-t', '30', 'stop']);
      run(cmd, args);
      removeRecord(config.stack.dir, 'postgres');
    } else await stopPostgres(config, tools);
    return pid;
  }
  if (opts.hard) await killDaemon(config.stack.dir, name);
  else await stopDaemon(config.stack.dir, name);
  return pid;
}

/**
 * Starts one node that is not running and resolves when it serves again: a broker registered
 * with the cluster, a Redis node back in the cluster (a restarted master comes back as a replica
 * of the node that took over) with cluster_state ok.
 */
export async function startNode(given: Readonly<Config>, name: string, log: Log = () => undefined): Promise<{ pid: number; seconds: number }> {
  const t0 = Date.now();
  const layout = checkNode(given, name);
  const ctx = await nativeContext(given, log);
  const { config } = ctx;
  const running = livePid(config.stack.dir, name);
  if (running !== undefined) {
    log(`  ${name.padEnd(9)} already running (pid ${running})`);
  } else {
    await ensurePortsFree(daemons(config, layout).find((d) => d.name === name)!, readRecord(config.stack.dir, name) !== undefined);
    const kafka = layout.kafka.find((k) => k.name === name);
    const redis = layout.redis.find((r) => r.name === name);
    if (kafka) startKafka(ctx, kafka, layout);
    else if (redis) startRedis(ctx, redis);
    else if (name === 'postgres') await startPostgres(ctx);
    else if (name === 'registry') startRegistry(ctx);
    else startConnect(ctx);
  }
  // The single topology's nodes are its components; a cluster node has its own probe.
  await awaitHealthy(config, name, log, config.stack.upTimeoutMs);
  return { pid: livePid(config.stack.dir, name) ?? -1, seconds: (Date.now() - t0) / 1000 };
}

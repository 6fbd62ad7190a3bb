/**
 * The native stack: PostgreSQL (logical WAL), Redis, Kafka (KRaft), Kafka Connect with Debezium
 * and Apicurio Registry, each on loopback on the ports named by the configuration, with data in
 * `<STACK_DIR>` (default `.stack/`, gitignored). `up` is idempotent: what already runs is left
 * alone, what is missing is started, and it returns only when every part is healthy.
 * `down` stops exactly what `up` recorded (see proc.ts) and nothing else.
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
import { lastLines, livePid, logDir, portOpen, readRecord, run, spawnDaemon, stopDaemon } from './proc.ts';
import { renderTable } from './table.ts';
import {
  ensureSecrets,
  isPreAuthStack,
  jaas,
  KAFKA_ADMIN_USER,
  KAFKA_CLIENT_USER,
  KAFKA_CONNECT_USER,
  KAFKA_CONTROLLER_USER,
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
}

export interface StackStatus {
  mode: Config['stack']['mode'];
  healthy: boolean;
  components: ComponentStatus[];
  connectors: ConnectorStatus[];
}

export type Log = (line: string) => void;

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

async function probeKafka(connection: KafkaConnection): Promise<string> {
  const admin = createKafka({
    connection,
    clientId: 'invsync-health',
    overrides: { retry: { retries: 0 }, connectionTimeout: 2000, requestTimeout: 5000 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return `${cluster.brokers.length} broker(s), controller ${cluster.controller}`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
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

/** One component's health check (what `status` reports): resolves with a description, rejects when it does not serve. */
export function probeComponent(config: Config, name: ComponentName): Promise<string> {
  switch (name) {
    case 'postgres':
      return probePostgres(config.pg.url);
    case 'redis':
      return probeRedis(config.redis.url);
    case 'kafka':
      return probeKafka(config.kafka);
    case 'connect':
      return probeConnect(config.connect.url);
    case 'registry':
      return probeRegistry(config.registry.url);
  }
}

// ---------------------------------------------------------------------------------------------
// status

export async function stackStatus(config: Config): Promise<StackStatus> {
  const eps = endpoints(config);
  const components = await Promise.all(
    COMPONENTS.map(async (name): Promise<ComponentStatus> => {
      const pid = config.stack.mode === 'native' ? (livePid(config.stack.dir, name) ?? null) : null;
      try {
        const detail = await probeComponent(config, name);
        return { name, endpoint: eps[name].display, pid, healthy: true, detail };
      } catch (err) {
        const detail = config.stack.mode === 'native' && pid === null ? 'not running' : `unhealthy: ${errorMessage(err)}`;
        return { name, endpoint: eps[name].display, pid, healthy: false, detail };
      }
    }),
  );
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
  return { mode: config.stack.mode, healthy, components, connectors };
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

async function ensurePortFree(config: Config, name: ComponentName, port: number, host: string): Promise<void> {
  if (await portOpen(port, host)) {
    const variable = { postgres: 'PG_URL', redis: 'REDIS_URL', kafka: 'KAFKA_BROKERS', connect: 'CONNECT_URL', registry: 'SCHEMA_REGISTRY_URL' }[name];
    throw new PortInUseError(
      `port ${port} (${name}) is already in use by a process this stack did not start; free it or set ${variable} to another port`,
    );
  }
  void config;
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

function startRedis({ config, tools, secrets }: Ctx): void {
  const dir = dirFor(config, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'redis.conf');
  // Holds the ACL password: written 0600 like the secrets it comes from.
  writeSecretFile(
    conf,
    [
      `port ${config.redis.port}`,
      `bind ${config.redis.host === 'localhost' ? '127.0.0.1' : config.redis.host}`,
      // No anonymous access: the platform authenticates as its own user, and the default user has
      // a random password nobody is given (regenerated at every start). It must stay *on* with
      // every permission: Redis 7.0 replays the append-only file as the default user, and with
      // `user default off` it refuses every MULTI/EXEC in it (NOPERM), so the effects of every Lua
      // script (views, gate holds) were silently lost on restart (found by the chaos harness).
      `user default on >${randomBytes(24).toString('hex')} ~* &* +@all`,
      `user ${secrets.redisUser} on >${secrets.redisPassword} ~* &* +@all`,
      'protected-mode yes',
      `dir ${dir}`,
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
      `maxmemory ${config.redis.maxmemory}`,
      'maxmemory-policy noeviction',
      '',
    ].join('\n'),
  );
  spawnDaemon({ name: 'redis', command: tools.redisServer, args: [conf], marker: conf, stackDir: config.stack.dir });
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

function startKafka({ config, tools, artifacts, secrets, log }: Ctx): void {
  const dir = dirFor(config, 'kafka');
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const { host, port } = endpoints(config).kafka;
  const cport = config.stack.kafkaControllerPort;
  const props = path.join(dir, 'server.properties');
  // Holds passwords (JAAS, key store): 0600. Clients and the broker itself use SASL/SCRAM over
  // TLS on the one client listener; the controller listener uses SASL/PLAIN over TLS (KRaft
  // controllers cannot verify SCRAM: those credentials live in the metadata they serve).
  writeSecretFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@${host}:${cport}`,
      `listeners=SASL_SSL://${host}:${port},CONTROLLER://${host}:${cport}`,
      `advertised.listeners=SASL_SSL://${host}:${port}`,
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
      `log.dirs=${data}`,
      'num.partitions=6',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=10',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=10',
      // Single broker, tests create consumer groups constantly: do not wait 3 s for more members.
      'group.initial.rebalance.delay.ms=0',
      // A killed consumer's partitions move after its session timeout; the platform's stages use
      // 3 s (KAFKA_SESSION_TIMEOUT_MS), below Kafka's default floor of 6 s.
      'group.min.session.timeout.ms=2000',
      'auto.create.topics.enable=true',
      'delete.topic.enable=true',
      'log.retention.hours=168',
      'log.segment.bytes=268435456',
      '',
    ].join('\n'),
  );
  const log4j = path.join(dir, 'log4j.properties');
  log4jConfig(log4j);
  const env = { ...process.env, CLASSPATH: artifacts.kafkaClasspath };
  if (!fs.existsSync(path.join(data, 'meta.properties'))) {
    // Kafka's own ids never start with '-' (it would read as a command-line flag): nor do ours.
    let clusterId = randomBytes(16).toString('base64url');
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
    log(`  kafka     formatting KRaft storage (cluster ${clusterId}) with SCRAM users ${KAFKA_ADMIN_USER}, ${KAFKA_CLIENT_USER}, ${KAFKA_CONNECT_USER}`);
    const scram = scramFormatArgs([
      { name: KAFKA_ADMIN_USER, password: secrets.kafkaAdminPassword },
      { name: KAFKA_CLIENT_USER, password: secrets.kafkaPassword },
      { name: KAFKA_CONNECT_USER, password: secrets.connectKafkaPassword },
    ]);
    run(tools.java, [`-Dlog4j.configuration=file:${log4j}`, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, ...scram, '--ignore-formatted'], { env });
  }
  spawnDaemon({
    name: 'kafka',
    command: tools.java,
    args: ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`, 'kafka.Kafka', props],
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
      `config.providers.file.param.allowed.paths=${secrets.dir}\n`,
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

async function awaitHealthy(config: Config, name: ComponentName, log: Log, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let lastErr = '';
  const ok = await waitFor(
    async () => {
      try {
        await probeComponent(config, name);
        return true;
      } catch (err) {
        lastErr = errorMessage(err);
        if (config.stack.mode === 'native' && name !== 'postgres' && livePid(config.stack.dir, name) === undefined) {
          throw new ServiceError(`${name} exited during start-up`);
        }
        return false;
      }
    },
    { timeoutMs, intervalMs: 250 },
  );
  if (!ok || (config.stack.mode === 'native' && name !== 'postgres' && livePid(config.stack.dir, name) === undefined)) {
    const logFile = readRecord(config.stack.dir, name)?.log ?? path.join(logDir(config.stack.dir), `${name}.log`);
    const exited = config.stack.mode === 'native' && livePid(config.stack.dir, name) === undefined;
    throw new ServiceError(
      `${name} ${exited ? 'exited during start-up' : `not healthy after ${Math.round(timeoutMs / 1000)}s (${lastErr})`}` +
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

/**
 * Brings the stack up (native) or checks it (external), applies migrations and registers the
 * connectors. Resolves only when everything is healthy.
 */
export async function stackUp(given: Readonly<Config>, log: Log): Promise<UpResult> {
  let config = given;
  const t0 = Date.now();
  const timeout = config.stack.upTimeoutMs;
  if (config.stack.mode === 'external') {
    log('STACK=external: using the services named in the environment');
    await Promise.all(COMPONENTS.filter((c) => c !== 'connect').map((c) => awaitHealthy(config, c, log, timeout)));
  } else {
    const tools = ensurePrerequisites({ pgBinDir: config.stack.pgBinDir, autoInstall: config.stack.autoInstall, log });
    const artifacts = await ensureArtifacts({ cacheDir: config.stack.cacheDir, mvn: tools.mvn, mavenRepoUrl: config.stack.mavenRepoUrl, log });
    if (isPreAuthStack(config.stack.dir)) {
      throw new ServiceError(
        `the stack in ${config.stack.dir} was created before the stack had credentials (trust auth, PLAINTEXT Kafka); ` +
          `recreate it: npm run stack -- down && rm -rf ${config.stack.dir} && npm run stack -- up`,
      );
    }
    fs.mkdirSync(config.stack.dir, { recursive: true });
    const eps = endpoints(config);
    const need = (name: ComponentName) => livePid(config.stack.dir, name) === undefined;
    for (const name of COMPONENTS) {
      if (need(name)) await ensurePortFree(config, name, eps[name].port, eps[name].host);
      else log(`  ${name.padEnd(9)} already running (pid ${livePid(config.stack.dir, name)})`);
    }
    if (need('kafka')) await ensurePortFree(config, 'kafka', config.stack.kafkaControllerPort, eps.kafka.host);
    // Credentials: generated on the first up (only once the ports are known to be free), then
    // the configuration is reloaded so everything below uses them.
    const secrets = ensureSecrets({ stackDir: config.stack.dir, keytool: keytoolFor(tools), brokerHost: eps.kafka.host, log });
    config = reloadConfig(config);
    writeToolFiles(config, secrets);
    const ctx: Ctx = { config, tools, artifacts, secrets, log };

    if (need('redis')) startRedis(ctx);
    if (need('kafka')) startKafka(ctx);
    if (need('postgres')) await startPostgres(ctx);
    if (!(await waitFor(() => ensureDatabases(config).then(() => true), { timeoutMs: 30_000 }))) {
      await ensureDatabases(config); // surfaces the error
    }
    await awaitHealthy(config, 'postgres', log, timeout);
    if (need('registry')) startRegistry(ctx);
    await applyMigrations(config, log);
    await awaitHealthy(config, 'kafka', log, timeout);
    if (need('connect')) startConnect(ctx);
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
  const order: ComponentName[] = ['connect', 'registry', 'kafka', 'redis', 'postgres'];
  for (const name of order) {
    const stopped = name === 'postgres' ? await stopPostgres(config, tools) : await stopDaemon(config.stack.dir, name);
    log(`  ${name.padEnd(9)} ${stopped ? 'stopped' : 'not running'}`);
  }
}

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
import type { Config } from '../lib/config.ts';
import { PROJECT_ROOT } from '../lib/config.ts';
import { PortInUseError, ServiceError, errorMessage } from '../lib/errors.ts';
import { ensureTopics } from '../lib/ensure-topics.ts';
import { createKafka } from '../lib/kafka.ts';
import { migrate } from '../lib/migrate.ts';
import { waitFor } from '../lib/retry.ts';
import { ensureArtifacts, type Artifacts } from './artifacts.ts';
import {
  connectorStatuses,
  isRunning,
  loadConnectorSpecs,
  registerConnectors,
  restartFailed,
  waitConnectorsRunning,
  type ConnectorStatus,
} from './connectors.ts';
import { ensurePrerequisites, type Tools } from './prereqs.ts';
import { lastLines, livePid, logDir, portOpen, readRecord, run, spawnDaemon, stopDaemon } from './proc.ts';
import { renderTable } from './table.ts';

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
  const safePg = new URL(config.pg.url);
  safePg.password = '';
  return {
    postgres: { host: config.pg.host, port: config.pg.port, display: safePg.toString().replace(':@', '@') },
    redis: { host: config.redis.host, port: config.redis.port, display: config.redis.url },
    kafka: { host: kHost, port: Number(kPort), display: config.kafka.brokers.join(',') },
    connect: { ...connect, display: config.connect.url },
    registry: { ...registry, display: config.registry.url },
  };
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

async function probeKafka(brokers: string[]): Promise<string> {
  const admin = createKafka({
    brokers,
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

function probe(config: Config, name: ComponentName): Promise<string> {
  switch (name) {
    case 'postgres':
      return probePostgres(config.pg.url);
    case 'redis':
      return probeRedis(config.redis.url);
    case 'kafka':
      return probeKafka(config.kafka.brokers);
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
        const detail = await probe(config, name);
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

async function startPostgres({ config, tools, log }: Ctx): Promise<void> {
  const base = dirFor(config, 'postgres');
  const data = pgDataDir(config);
  const logFile = path.join(base, 'postgres.log');
  fs.mkdirSync(base, { recursive: true });
  if (tools.pgOsUser) run('chown', ['-R', `${tools.pgOsUser}:`, base]);
  const pgCtl = path.join(tools.pgBin, 'pg_ctl');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    log(`  postgres  initdb ${data}${tools.pgOsUser ? ` (as OS user ${tools.pgOsUser}: initdb refuses root)` : ''}`);
    const [cmd, args] = asPgUser(tools, path.join(tools.pgBin, 'initdb'), [
      '-D', data, '-U', config.pg.user, '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8',
    ]);
    try {
      run(cmd, args);
    } catch (err) {
      // Some systems lack the C.UTF-8 locale; plain C always exists.
      fs.rmSync(data, { recursive: true, force: true });
      const [cmd2, args2] = asPgUser(tools, path.join(tools.pgBin, 'initdb'), ['-D', data, '-U', config.pg.user, '--auth=trust', '-E', 'UTF8', '--locale=C']);
      try {
        run(cmd2, args2);
      } catch {
        throw new ServiceError(`initdb failed: ${errorMessage(err)}`);
      }
    }
    fs.appendFileSync(
      path.join(data, 'postgresql.conf'),
      [
        '',
        '# --- invsync native stack ---',
        "listen_addresses = '127.0.0.1'",
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

function startRedis({ config, tools }: Ctx): void {
  const dir = dirFor(config, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'redis.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${config.redis.port}`,
      'bind 127.0.0.1',
      'protected-mode yes',
      `dir ${dir}`,
      'daemonize no',
      // keep argv as is, so `down` can recognise the process by its config path
      'set-proc-title no',
      'save ""',
      'appendonly yes',
      'appendfsync everysec',
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

function startKafka({ config, tools, artifacts, log }: Ctx): void {
  const dir = dirFor(config, 'kafka');
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const { host, port } = endpoints(config).kafka;
  const cport = config.stack.kafkaControllerPort;
  const props = path.join(dir, 'server.properties');
  fs.writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@${host}:${cport}`,
      `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${cport}`,
      `advertised.listeners=PLAINTEXT://${host}:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
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
    log(`  kafka     formatting KRaft storage (cluster ${clusterId})`);
    run(tools.java, [`-Dlog4j.configuration=file:${log4j}`, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--ignore-formatted'], { env });
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

function startConnect({ config, tools, artifacts }: Ctx): void {
  const dir = dirFor(config, 'connect');
  fs.mkdirSync(dir, { recursive: true });
  const { host, port } = endpoints(config).connect;
  const shared = fs.readFileSync(path.join(PROJECT_ROOT, 'debezium', 'connect-worker.properties'), 'utf8');
  const props = path.join(dir, 'worker.properties');
  fs.writeFileSync(
    props,
    `${shared}\n# --- native stack ---\nlisteners=http://${host}:${port}\nrest.advertised.host.name=${host}\nrest.advertised.port=${port}\nplugin.path=${artifacts.pluginPath}\n`,
  );
  const log4j = path.join(dir, 'log4j.properties');
  log4jConfig(log4j);
  spawnDaemon({
    name: 'connect',
    command: tools.java,
    args: ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`, 'org.apache.kafka.connect.cli.ConnectDistributed', props],
    env: { ...process.env, CLASSPATH: artifacts.kafkaClasspath, ...connectWorkerEnv(config) },
    marker: props,
    stackDir: config.stack.dir,
  });
}

/** The environment the Connect worker resolves `${env:...}` from (shared with docker-compose). */
export function connectWorkerEnv(config: Config): Record<string, string> {
  const t = config.connect.pg;
  return {
    INVSYNC_KAFKA_BOOTSTRAP: config.kafka.brokers.join(','),
    INVSYNC_PG_HOST: t.host,
    INVSYNC_PG_PORT: String(t.port),
    INVSYNC_PG_USER: t.user,
    INVSYNC_PG_PASSWORD: t.password || 'unused',
    INVSYNC_PG_DATABASE: t.database,
  };
}

function startRegistry({ config, tools, artifacts }: Ctx): void {
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
      `-Dapicurio.datasource.username=${config.pg.user}`,
      `-Dapicurio.datasource.password=${config.pg.password || 'unused'}`,
      '-Dapicurio.storage.snapshot.location=' + dir,
      '-jar', artifacts.apicurioJar,
    ],
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
        await probe(config, name);
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
}

/**
 * Brings the stack up (native) or checks it (external), applies migrations and registers the
 * connectors. Resolves only when everything is healthy.
 */
export async function stackUp(config: Config, log: Log): Promise<UpResult> {
  const t0 = Date.now();
  const timeout = config.stack.upTimeoutMs;
  if (config.stack.mode === 'external') {
    log('STACK=external: using the services named in the environment');
    await Promise.all(COMPONENTS.filter((c) => c !== 'connect').map((c) => awaitHealthy(config, c, log, timeout)));
  } else {
    const tools = ensurePrerequisites({ pgBinDir: config.stack.pgBinDir, autoInstall: config.stack.autoInstall, log });
    const artifacts = await ensureArtifacts({ cacheDir: config.stack.cacheDir, mvn: tools.mvn, mavenRepoUrl: config.stack.mavenRepoUrl, log });
    const ctx: Ctx = { config, tools, artifacts, log };
    fs.mkdirSync(config.stack.dir, { recursive: true });
    const eps = endpoints(config);
    const need = (name: ComponentName) => livePid(config.stack.dir, name) === undefined;
    for (const name of COMPONENTS) {
      if (need(name)) await ensurePortFree(config, name, eps[name].port, eps[name].host);
      else log(`  ${name.padEnd(9)} already running (pid ${livePid(config.stack.dir, name)})`);
    }
    if (need('kafka')) await ensurePortFree(config, 'kafka', config.stack.kafkaControllerPort, eps.kafka.host);

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
  const created = await ensureTopics(createKafka({ brokers: config.kafka.brokers, clientId: 'invsync-stack' }));
  if (created.length) log(`  kafka     created topics: ${created.join(', ')}`);
  await awaitHealthy(config, 'connect', log, timeout);
  await registerConnectors(config.connect.url);
  await restartFailed(config.connect.url).catch(() => undefined);
  const names = loadConnectorSpecs().map((s) => s.name);
  await waitConnectorsRunning(config.connect.url, names, timeout);
  log(`  connect   connectors RUNNING: ${names.join(', ')}`);
  const status = await stackStatus(config);
  fs.mkdirSync(config.stack.dir, { recursive: true });
  return { status, seconds: (Date.now() - t0) / 1000 };
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

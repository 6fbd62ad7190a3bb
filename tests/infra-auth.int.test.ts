/**
 * Authenticated infrastructure (issue 10, finding 9 and item 7): every part of the native stack
 * refuses a client without the right credential, listens on loopback only, keeps its secrets in
 * 0600 files and never shows them on a command line, in `stack status` or through Connect's API.
 * Each test logs in (or tries to) with the real clients the platform uses.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type Config } from '../lib/config.ts';
import { ConnectorError } from '../lib/errors.ts';
import { createKafka, kafkaSecurity } from '../lib/kafka.ts';
import { connectorStatuses, loadConnectorSpecs, registerConnectors } from '../tools/stack/connectors.ts';
import { livePid } from '../tools/stack/proc.ts';
import { connectSecretsDir, endpoints, renderStatus, stackStatus, stackUp } from '../tools/stack/stack.ts';
import { testConfig, unique } from './helpers.ts';

const config = testConfig();
const native = config.stack.mode === 'native';
const secretsDir = path.join(config.stack.dir, 'secrets');

/** Every secret value the stack generated (for "never shown" checks). */
function secretValues(): string[] {
  const out: string[] = [];
  for (const f of ['clients.env', 'internal.env']) {
    for (const line of fs.readFileSync(path.join(secretsDir, f), 'utf8').split('\n')) {
      const m = /^[A-Z_]*PASSWORD=(.+)$/.exec(line);
      if (m) out.push(m[1]!);
    }
  }
  return out;
}

async function pgConnect(options: pg.ClientConfig): Promise<void> {
  const client = new pg.Client({ host: config.pg.host, port: config.pg.port, database: config.pg.database, connectionTimeoutMillis: 5000, ...options });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisPing(options: { username?: string; password?: string }): Promise<string> {
  const redis = new Redis({ host: config.redis.host, port: config.redis.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  // A refused AUTH during connect surfaces as an 'error' event; the promise only says "closed".
  const errors: string[] = [];
  redis.on('error', (err: Error) => errors.push(err.message));
  try {
    await redis.connect();
    return await redis.ping();
  } catch (err) {
    throw new Error([(err as Error).message, ...errors].join('; '));
  } finally {
    redis.disconnect();
  }
}

async function kafkaDescribe(settings: Pick<KafkaConfig, 'ssl' | 'sasl'>): Promise<number> {
  const admin = new Kafka({
    clientId: unique('auth-test'),
    brokers: config.kafka.brokers,
    connectionTimeout: 3000,
    authenticationTimeout: 3000,
    requestTimeout: 5000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
    ...settings,
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe.runIf(native)('native stack: secrets on disk', () => {
  it('keeps its secrets in a 0700 directory of 0600 files, and the files holding passwords are 0600 too', () => {
    expect(fs.statSync(secretsDir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(secretsDir);
    expect(files).toEqual(expect.arrayContaining(['clients.env', 'internal.env', 'connect.properties', 'ca.pem', 'kafka.keystore.p12', 'truststore.p12']));
    for (const f of files) expect(fs.statSync(path.join(secretsDir, f)).mode & 0o777, f).toBe(0o600);
    for (const f of ['redis/redis.conf', 'kafka/server.properties']) {
      expect(fs.statSync(path.join(config.stack.dir, f)).mode & 0o777, f).toBe(0o600);
    }
    expect(config.stack.secretsFile).toBe(path.join(secretsDir, 'clients.env'));
  });

  it('puts no secret on any command line (the registry takes its database password from its environment)', () => {
    const secrets = secretValues();
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    const registryPid = livePid(config.stack.dir, 'registry');
    expect(registryPid).toBeDefined();
    const registryArgs = fs.readFileSync(`/proc/${registryPid}/cmdline`, 'utf8');
    expect(registryArgs).toContain('apicurio.datasource.url');
    expect(registryArgs).not.toContain('datasource.password');
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let args: string;
      try {
        args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      for (const s of secrets) expect(args.includes(s), `pid ${pid} has a secret on its command line`).toBe(false);
    }
  });

  it('shows no secret in `stack status` (table and --json) and redacts the URLs it prints', async () => {
    const status = await stackStatus(config);
    const printed = `${renderStatus(status)}\n${JSON.stringify(status)}`;
    for (const s of secretValues()) expect(printed).not.toContain(s);
    expect(endpoints(config).postgres.display).toMatch(/^postgres:\/\/invsync:\*\*\*@/);
    expect(endpoints(config).redis.display).toMatch(/^redis:\/\/invsync:\*\*\*@/);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'tools', 'stack', 'cli.ts'), 'status', '--json'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(cli.status).toBe(0);
    for (const s of secretValues()) expect(cli.stdout + cli.stderr).not.toContain(s);
  });

  it('writes no secret into the stack logs or its process records', () => {
    const dirs = [path.join(config.stack.dir, 'logs'), path.join(config.stack.dir, 'run')];
    const files = dirs.flatMap((d) => fs.readdirSync(d).map((f) => path.join(d, f)));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      for (const s of secretValues()) expect(text.includes(s), `${f} contains a secret`).toBe(false);
    }
  });

  it('`stack url pg` prints a connection string that logs in (for psql), and nothing else does', async () => {
    const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'tools', 'stack', 'cli.ts'), 'url', 'pg'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(cli.status).toBe(0);
    await expect(pgConnect({ connectionString: cli.stdout.trim() })).resolves.toBeUndefined();
  });
});

describe.runIf(native)('native stack: every service refuses a missing or wrong credential', () => {
  it('Postgres: no password and a wrong password are refused (scram-sha-256, no trust rule)', async () => {
    await expect(pgConnect({ user: config.pg.user, password: undefined })).rejects.toThrow(/password/);
    await expect(pgConnect({ user: config.pg.user, password: 'wrong' })).rejects.toThrow(/password authentication failed/);
    await expect(pgConnect({ user: config.pg.user, password: config.pg.password })).resolves.toBeUndefined();
    const client = new pg.Client({ connectionString: config.pg.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ type: string; auth_method: string }>('SELECT type, auth_method FROM pg_hba_file_rules');
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.filter((r) => r.auth_method !== 'scram-sha-256')).toEqual([]);
      const enc = await client.query<{ v: string }>("SELECT current_setting('password_encryption') AS v");
      expect(enc.rows[0]!.v).toBe('scram-sha-256');
    } finally {
      await client.end();
    }
  });

  it('Redis: no credentials, the default user and a wrong password are refused; the platform user gets in', async () => {
    await expect(redisPing({})).rejects.toThrow(/NOAUTH/);
    await expect(redisPing({ password: new URL(config.redis.url).password })).rejects.toThrow(/WRONGPASS|disabled/);
    await expect(redisPing({ username: 'invsync', password: 'wrong' })).rejects.toThrow(/WRONGPASS/);
    const u = new URL(config.redis.url);
    await expect(redisPing({ username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) })).resolves.toBe('PONG');
  });

  it('Redis has a memory budget from REDIS_MAXMEMORY and never evicts (gate state is not cache)', async () => {
    const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1 });
    try {
      const [, maxmemory] = (await redis.config('GET', 'maxmemory')) as [string, string];
      const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
      const units: Record<string, number> = { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
      const m = /^(\d+)(kb|mb|gb)?$/.exec(config.redis.maxmemory)!;
      expect(Number(maxmemory)).toBe(Number(m[1]) * (m[2] ? units[m[2]]! : 1));
      expect(policy).toBe('noeviction');
    } finally {
      redis.disconnect();
    }
  });

  it('Redis keeps what Lua scripts wrote across a SIGKILL and restart (the append-only file replays as the default user)', async () => {
    // With `user default off`, Redis 7.0 refused every MULTI/EXEC of its own append-only file on
    // restart (NOPERM): everything a script wrote (views, gate holds) was gone, silently.
    const key = unique('aof');
    const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1 });
    try {
      await redis.eval("redis.call('SET', KEYS[1], 'a'); redis.call('SET', KEYS[2], 'b'); return 1", 2, `{${key}}:1`, `{${key}}:2`);
      await new Promise((r) => setTimeout(r, 1500)); // appendfsync everysec
    } finally {
      redis.disconnect();
    }
    const pid = livePid(config.stack.dir, 'redis');
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    for (let i = 0; i < 100 && livePid(config.stack.dir, 'redis') !== undefined; i++) await new Promise((r) => setTimeout(r, 50));
    await stackUp(config, () => undefined);
    const again = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
    try {
      expect(await again.mget(`{${key}}:1`, `{${key}}:2`)).toEqual(['a', 'b']);
    } finally {
      again.disconnect();
    }
  }, 120_000);

  it('Kafka: PLAINTEXT, TLS without SASL, an untrusted CA and a wrong SCRAM password are refused', async () => {
    const security = kafkaSecurity(config.kafka);
    expect(config.kafka.sasl?.mechanism).toBe('scram-sha-512');
    expect(config.kafka.tls?.caFile).toBe(path.join(secretsDir, 'ca.pem'));
    await expect(kafkaDescribe({})).rejects.toThrow();
    await expect(kafkaDescribe({ ssl: security.ssl })).rejects.toThrow();
    await expect(kafkaDescribe({ ssl: true, sasl: security.sasl })).rejects.toThrow(/certificate/i);
    await expect(kafkaDescribe({ ssl: security.ssl, sasl: { ...config.kafka.sasl!, password: 'wrong' } as SASLOptions })).rejects.toThrow(/SASL|[Aa]uthentication/);
    await expect(kafkaDescribe(security)).resolves.toBe(1);
  });

  it('Kafka: the platform client (createKafka with config.kafka) produces and reads over SASL_SSL', async () => {
    const kafka = createKafka({ connection: config.kafka, clientId: unique('auth-test') });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      expect(topics).toContain('stock.levels');
    } finally {
      await admin.disconnect();
    }
  });
});

describe.runIf(native)('native stack: loopback only, and Connect locked down', () => {
  it('no service port answers on a non-loopback address of this machine', async () => {
    const eps = endpoints(config);
    const ports = [...Object.values(eps).map((e) => e.port), config.stack.kafkaControllerPort];
    for (const p of ports) expect(await canConnect('127.0.0.1', p), `loopback ${p}`).toBe(true);
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    for (const address of external) {
      for (const p of ports) expect(await canConnect(address, p), `${address}:${p}`).toBe(false);
    }
  });

  it('Connect refuses a connector that overrides its Kafka clients (override policy None)', async () => {
    const name = unique('override');
    const cdc = loadConnectorSpecs().find((s) => s.name === 'invsync-stock-cdc')!;
    const attempt = { ...cdc.config, 'slot.name': name.replaceAll('-', '_'), 'producer.override.bootstrap.servers': 'attacker.example:9092' };
    const registering = registerConnectors(config.connect.url, [{ name, config: attempt }], connectSecretsDir(config));
    await expect(registering).rejects.toBeInstanceOf(ConnectorError);
    await expect(registering).rejects.toThrow(/override|policy/i);
    expect((await connectorStatuses(config.connect.url)).map((s) => s.name)).not.toContain(name);
  });

  it('Connect stores and shows secret references, never the passwords', async () => {
    const res = await fetch(`${config.connect.url}/connectors/invsync-stock-cdc/config`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(body['database.password']).toBe(`\${file:${secretsDir}/connect.properties:pg.password}`);
    const text = JSON.stringify(body);
    for (const s of secretValues()) expect(text).not.toContain(s);
  });
});

// Type-only use: keeps the import list honest when the describe blocks above are skipped.
export type { Config };

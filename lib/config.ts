/**
 * The platform's configuration: `process.env` parsed once, against one schema, into a frozen
 * typed object that is passed down as a dependency. Nothing else in the code base reads
 * `process.env` for settings. A bad value stops start-up with one line naming the variable.
 *
 * Every variable is listed, with its default, in `.env.example` (a unit test keeps the two in
 * step).
 */
import { CHANNEL_ID } from './contracts/channels.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { CHANNELS, type Channel } from './contracts/protocol.ts';
import { ConfigError } from './errors.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const port = z.coerce
  .number({ message: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

const positiveInt = (max: number) =>
  z.coerce.number({ message: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);

const nonNegativeInt = (max: number) =>
  z.coerce.number({ message: 'must be a number (0 disables)' }).int('must be a whole number').min(0, 'must be 0 or more').max(max, `must be at most ${max}`);

const brokers = z
  .string()
  .min(1, 'must name at least one broker')
  .transform((value) => value.split(',').map((b) => b.trim()).filter(Boolean))
  .refine((list) => list.length > 0 && list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)), {
    message: 'must be a comma-separated list of host:port',
  });

/** The WebSocket channels a service credential may be granted (lib/contracts/protocol.ts). */
export type { Channel };

/** How to reach Redis: one server (`url`), or a Redis Cluster (`cluster`: seed nodes; credentials from `url`). */
export interface RedisTarget {
  url: string;
  cluster: Array<{ host: string; port: number }> | undefined;
}

/**
 * Defaults of the `cluster` topology (STACK_TOPOLOGY=cluster): its own block of loopback ports
 * and its own STACK_DIR, so it runs beside the single-node stack. A variable given wins.
 */
export const TOPOLOGY_DEFAULTS: Record<'cluster', Record<string, string>> = {
  cluster: {
    STACK_DIR: path.join(PROJECT_ROOT, '.stack-cluster'),
    PG_URL: 'postgres://invsync@127.0.0.1:25432/inventory',
    REDIS_URL: 'redis://127.0.0.1:26379',
    REDIS_CLUSTER_NODES: '127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381,127.0.0.1:26382,127.0.0.1:26383,127.0.0.1:26384',
    KAFKA_BROKERS: '127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292',
    KAFKA_CONTROLLER_PORT: '29093',
    KAFKA_TOPIC_REPLICATION_FACTOR: '3',
    KAFKA_TOPIC_MIN_INSYNC_REPLICAS: '2',
    CONNECT_URL: 'http://127.0.0.1:28083',
    SCHEMA_REGISTRY_URL: 'http://127.0.0.1:28081/apis/ccompat/v7',
    GATEWAY_PORT: '28080',
    GATEWAY_METRICS_PORT: '28089',
    PROCESSOR_METRICS_PORT: '28091',
    CONNECTOR_METRICS_PORT: '28092',
  },
};

export interface ApiKey {
  name: string;
  key: string;
  channels: Channel[];
  /** Everything the key may do: its channels (`wms`, `erp`) and scopes (docs/security.md#credentials-who-may-do-what). */
  scopes: string[];
  /** The sales channels the key may sell on (grants `sales:<id>`, docs/channels.md). */
  salesChannels?: string[];
}

/** The grant prefix naming a sales channel a credential may sell on: `sales:<channel id>`. */
export const SALES_GRANT = 'sales:';

// --- identity: credentials and scopes (gateway/auth.ts, docs/security.md#credentials-who-may-do-what) ---
/** Scopes a service credential may hold, besides the WebSocket channels `wms` and `erp`. */
export const SCOPES = ['purchase:act-for', 'orders:read', 'orders:confirm', 'orders:cancel', 'stock:read-locations', 'adjustments:write', 'movements:read', 'receipts:write', 'backorder-policy:write'] as const;
const GRANTS: readonly string[] = [...CHANNELS, ...SCOPES];

/** `name:key:grant+grant;...` — a grant is a channel or a scope, e.g. `acme-wms:s3cret:wms+adjustments:write`. */
const apiKeys = z
  .string()
  .transform((value, ctx): ApiKey[] => {
    const out: ApiKey[] = [];
    for (const entry of value.split(';').map((e) => e.trim()).filter(Boolean)) {
      const [name, key, ...rest] = entry.split(':');
      const list = rest.join(':').split('+').filter(Boolean);
      const sales = list.filter((c) => c.startsWith(SALES_GRANT));
      const grants = list.filter((c) => !c.startsWith(SALES_GRANT));
      if (!name || !key || key.length < 8 || list.length === 0 || !grants.every((c) => GRANTS.includes(c)) || !sales.every((c) => CHANNEL_ID.test(c.slice(SALES_GRANT.length)))) {
        ctx.addIssue({ code: 'custom', message: `must be name:key:grant[+grant] entries separated by ";" (key at least 8 characters, grants ${GRANTS.join('|')} or sales:<sales channel id>)` });
        return z.NEVER;
      }
      out.push({ name, key, channels: grants.filter((c) => (CHANNELS as readonly string[]).includes(c)) as Channel[], scopes: grants, ...(sales.length ? { salesChannels: sales.map((c) => c.slice(SALES_GRANT.length)) } : {}) });
    }
    return out;
  });

/** Development keys, public and loopback-only (docs/security.md#credentials-who-may-do-what). */
const DEV_KEYS: ApiKey[] = [
  { name: 'dev-wms', key: 'dev-wms-key', channels: ['wms'], scopes: ['wms', 'adjustments:write', 'receipts:write'] },
  { name: 'dev-erp', key: 'dev-erp-key', channels: ['erp'], scopes: ['erp', 'adjustments:write', 'receipts:write', 'backorder-policy:write'] },
  { name: 'dev-storefront', key: 'dev-storefront-key', channels: [], scopes: ['purchase:act-for'] },
  { name: 'dev-payments', key: 'dev-payments-key', channels: [], scopes: ['orders:read', 'orders:confirm'] },
  { name: 'dev-support', key: 'dev-support-key', channels: [], scopes: ['orders:read', 'orders:cancel', 'stock:read-locations'] },
];

/** Variable name → schema. Defaults are the native stack's own block of loopback ports. */
const schema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  STACK: z.enum(['native', 'external']).default('native'),
  /** `single`: one node of each engine; `cluster`: 3 Kafka brokers and a Redis Cluster, on their own ports (TOPOLOGY_DEFAULTS). */
  STACK_TOPOLOGY: z.enum(['single', 'cluster']).default('single'),
  STACK_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, '.stack')),
  STACK_CACHE_DIR: z.string().min(1).optional(),
  STACK_UP_TIMEOUT_S: positiveInt(3600).default(240),
  STACK_AUTO_INSTALL: z.enum(['0', '1']).default('1'),
  PG_BIN_DIR: z.string().min(1).optional(),
  MAVEN_REPO_URL: url(['https:', 'http:']).default('https://repo.maven.apache.org/maven2'),
  PG_URL: url(['postgres:', 'postgresql:']).default('postgres://invsync@127.0.0.1:15432/inventory'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:16379'),
  /** Seed nodes of a Redis Cluster (host:port,...): set, every client is a cluster client; credentials still come from REDIS_URL / REDIS_USERNAME / REDIS_PASSWORD. */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((value) => value.split(',').map((b) => b.trim()).filter(Boolean))
    .refine((list) => list.length > 0 && list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)), { message: 'must be a comma-separated list of host:port' })
    .optional(),
  KAFKA_BROKERS: brokers.default(['127.0.0.1:19092']),
  KAFKA_CONTROLLER_PORT: port.default(19093),
  KAFKA_SESSION_TIMEOUT_MS: positiveInt(300_000).default(3000),
  KAFKA_TOPIC_REPLICATION_FACTOR: z.coerce.number({ message: 'must be a number' }).int('must be a whole number').min(-1, 'must be -1 (the brokers\' default) or at least 1').max(32, 'must be at most 32').refine((n) => n !== 0, 'must be -1 (the brokers\' default) or at least 1').default(-1),
  KAFKA_TOPIC_MIN_INSYNC_REPLICAS: positiveInt(32).optional(),
  CONNECT_URL: url(['http:', 'https:']).default('http://127.0.0.1:18083'),
  SCHEMA_REGISTRY_URL: url(['http:', 'https:']).default('http://127.0.0.1:18081/apis/ccompat/v7'),
  CONNECT_PG_HOST: z.string().min(1).optional(),
  CONNECT_PG_PORT: port.optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[a-z0-9_.-]{1,32}$/, 'must be 1-32 characters of a-z, 0-9, _ . -')
    .default('inv'),
  PROCESSOR_GROUP_ID: z.string().min(1).max(200).default('invsync-stock-processor'),
  PROCESSOR_START_FROM: z.enum(['earliest', 'latest']).default('earliest'),
  PROCESSOR_METRICS_PORT: z.coerce
    .number({ message: 'must be a port number (0 disables)' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535')
    .default(18091),
  PROCESSOR_RECONCILE_INTERVAL_S: z.coerce
    .number({ message: 'must be a number of seconds (0 disables)' })
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .default(300),
  PROCESSOR_COALESCE: z.enum(['0', '1'], { message: 'must be 0 or 1' }).default('1'),
  FEED_MAXLEN: positiveInt(100_000_000).default(100_000),
  // --- stock alerts (docs/stream-processors.md, "Stock alerts") ---
  ALERT_LOW_STOCK_DEFAULT: nonNegativeInt(1_000_000_000).default(0),
  ALERT_THRESHOLDS_REFRESH_MS: nonNegativeInt(3_600_000).default(10_000),
  ALERT_STREAM_MAXLEN: positiveInt(100_000_000).default(10_000),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: port.default(18080),
  GATEWAY_TICK_MS: positiveInt(1000).default(25),
  GATEWAY_WORKERS: positiveInt(64).default(1),
  GATEWAY_MAX_SUBSCRIPTIONS: positiveInt(1_000_000).default(1000),
  GATEWAY_MAX_FRAME_BYTES: positiveInt(16 * 1024 * 1024).default(65536),
  GATEWAY_MAX_BUFFERED_BYTES: positiveInt(1024 * 1024 * 1024).default(4 * 1024 * 1024),
  GATEWAY_MAX_INVALID_FRAMES: positiveInt(1000).default(10),
  GATEWAY_API_KEYS: apiKeys.default(DEV_KEYS),
  GATEWAY_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 secret)').optional(),
  // --- Gateway limits (issue 10: crash safety and limits; docs/security.md#gateway-crash-safety-and-limits) ---
  GATEWAY_MAX_CONNECTIONS: positiveInt(10_000_000).default(50_000),
  GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: positiveInt(10_000_000).default(100),
  /** Comma-separated remote addresses counted in the total only (a local proxy, benchmarks); `none`: no exemptions. */
  GATEWAY_LIMIT_EXEMPT_ADDRESSES: z
    .string()
    .transform((value) => (value.trim() === 'none' ? [] : value.split(',').map((s) => s.trim()).filter(Boolean)))
    .default(['127.0.0.1', '::1', '::ffff:127.0.0.1']),
  GATEWAY_WS_FRAMES_PER_SEC: positiveInt(1_000_000).default(50),
  GATEWAY_WS_FRAME_BURST: positiveInt(1_000_000).default(100),
  GATEWAY_WS_SUBSCRIBE_SKUS_PER_SEC: positiveInt(100_000_000).default(2000),
  /** Unset: twice GATEWAY_MAX_SUBSCRIPTIONS (a full subscription, then a full resume, at once). */
  GATEWAY_WS_SUBSCRIBE_SKUS_BURST: positiveInt(100_000_000).optional(),
  GATEWAY_MAX_RESUME_ENTRIES: positiveInt(10_000_000).default(10_000),
  GATEWAY_RESUME_CONCURRENCY: positiveInt(1000).default(4),
  GATEWAY_MAX_REPLY_FRAME_BYTES: positiveInt(64 * 1024 * 1024).default(256 * 1024),
  GATEWAY_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_METRICS_PORT: z.coerce
    .number({ message: 'must be a port number (0 disables)' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535')
    .default(18089),
  // --- identity (gateway/auth.ts, docs/security.md#credentials-who-may-do-what) ---
  GATEWAY_JWT_JWKS: z
    .string()
    .refine((v) => /^https?:\/\//.test(v) || !v.includes('://'), 'must be a path to a JWKS file or an http(s):// URL')
    .optional(),
  GATEWAY_JWT_ISSUER: z.string().min(1).optional(),
  GATEWAY_JWT_AUDIENCE: z.string().min(1).optional(),
  GATEWAY_JWT_MAX_LIFETIME_S: positiveInt(30 * 24 * 3600).default(86_400),
  /** Unset: on in development, off in production (where 1 is refused). */
  PURCHASE_ALLOW_ANONYMOUS: z.enum(['0', '1']).optional(),
  PURCHASE_REFUSAL_TTL_S: positiveInt(86_400).default(300),
  PURCHASE_HOLD_TTL_S: positiveInt(7 * 24 * 3600).default(900),
  PURCHASE_HOLD_MAX_LIFETIME_S: positiveInt(30 * 24 * 3600).default(3600),
  PURCHASE_SETTLE_TIMEOUT_S: positiveInt(3600).default(30),
  PURCHASE_MAX_PER_CUSTOMER: nonNegativeInt(1_000_000).default(10),
  PURCHASE_RATE_CUSTOMER_PER_SEC: nonNegativeInt(1_000_000).default(5),
  PURCHASE_RATE_CUSTOMER_BURST: positiveInt(1_000_000).default(10),
  PURCHASE_RATE_ADDRESS_PER_SEC: nonNegativeInt(10_000_000).default(2000),
  PURCHASE_RATE_ADDRESS_BURST: positiveInt(10_000_000).default(4000),
  PURCHASE_IDEMPOTENCY_TTL_S: positiveInt(30 * 24 * 3600).default(86_400),
  PURCHASE_EXPIRY_INTERVAL_MS: nonNegativeInt(3_600_000).default(1000),
  PURCHASE_PG_POOL: positiveInt(200).default(10),
  PURCHASE_HOT_SKUS: z
    .string()
    .transform((value) => value.split(',').map((s) => s.trim()).filter(Boolean))
    .default([]),
  PURCHASE_WAITING_ROOM_FACTOR: z.coerce.number({ message: 'must be a number' }).min(1, 'must be at least 1').max(100, 'must be at most 100').default(1.5),
  SEED_SKUS: positiveInt(10_000_000).default(1000),
  SEED_LOCATIONS: positiveInt(1000).default(3),
  // Outbound connector mappings (connectors/outbound, docs/outbound-mappings.md).
  CONNECTOR_MAPPINGS_FILE: z.string().min(1).optional(),
  CONNECTOR_OUTBOUND_GROUP_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,120}$/, 'must be 1-120 characters of A-Z, a-z, 0-9, . _ -')
    .default('invsync-outbound'),
  // Inbound adjustments and the connectors service (connectors/, docs/connectors.md).
  CONNECTOR_INBOUND_GROUP_ID: z.string().min(1).max(200).default('invsync-connectors-inbound'),
  CONNECTOR_INBOUND_START_FROM: z.enum(['earliest', 'latest']).default('earliest'),
  CONNECTOR_INBOUND_BATCH_MAX: positiveInt(10_000).default(500),
  // The movement relay (connectors/ledger/relay.ts, docs/ledger.md).
  CONNECTOR_MOVEMENTS_GROUP_ID: z.string().min(1).max(200).default('invsync-movement-relay'),
  CONNECTOR_MOVEMENTS_START_FROM: z.enum(['earliest', 'latest']).default('earliest'),
  CONNECTOR_MOVEMENTS_BATCH_WAIT_MS: nonNegativeInt(10_000).default(250),
  CONNECTOR_INBOUND_PG_POOL: positiveInt(200).default(8),
  CONNECTOR_METRICS_PORT: z.coerce
    .number({ message: 'must be a port number (0 disables)' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535')
    .default(18092),
  // --- lifecycle, supervisor, housekeeping (lib/process-policy.ts, lib/supervisor.ts,
  // lib/housekeeping.ts; docs/operations.md) ---
  SHUTDOWN_DRAIN_TIMEOUT_MS: positiveInt(600_000).default(10_000),
  SHUTDOWN_READINESS_DELAY_MS: nonNegativeInt(600_000).default(0),
  SUPERVISOR_BACKOFF_INITIAL_MS: positiveInt(600_000).default(500),
  SUPERVISOR_BACKOFF_MAX_MS: positiveInt(3_600_000).default(30_000),
  SUPERVISOR_STABLE_AFTER_MS: positiveInt(86_400_000).default(30_000),
  SUPERVISOR_MAX_START_FAILURES: positiveInt(1000).default(5),
  // --- CDC watchdog and slot metrics (stream-processors/cdc-watchdog.ts; docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery) ---
  CDC_WATCHDOG_INTERVAL_MS: nonNegativeInt(3_600_000).default(5000),
  CDC_SNAPSHOT_SETTLE_MS: positiveInt(3_600_000).default(5000),
  CDC_SNAPSHOT_TIMEOUT_MS: positiveInt(86_400_000).default(600_000),
  CDC_SLOT_RETAINED_WARN_MB: positiveInt(10_000_000).default(1024),
  CDC_SLOT_RETAINED_CRITICAL_MB: positiveInt(10_000_000).default(8192),
  // --- end CDC ---
  HOUSEKEEPING_INTERVAL_S: nonNegativeInt(7 * 86_400).default(3600),
  HOUSEKEEPING_OUTBOX_RETENTION_S: positiveInt(365 * 86_400).default(3600),
  HOUSEKEEPING_ADJUSTMENTS_RETENTION_DAYS: positiveInt(3650).default(30),
  HOUSEKEEPING_MOVEMENTS_RETENTION_DAYS: positiveInt(3650).default(90),
  HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS: positiveInt(3650).default(30),
  // --- Authenticated infrastructure and production mode (docs/security.md#authenticated-infrastructure-and-production-mode) ---
  // With STACK=native, a credential not given here is taken from the stack's generated secrets
  // (<STACK_DIR>/secrets/clients.env). Explicit values always win.
  INVSYNC_ENV: z.enum(['development', 'production']).default('development'),
  PG_PASSWORD: z.string().min(1).optional(),
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_MAXMEMORY: z
    .string()
    .regex(/^[1-9][0-9]*(?:kb|mb|gb)?$/i, 'must be a size such as 1gb, 512mb or a number of bytes')
    .default('1gb'),
  KAFKA_SASL_MECHANISM: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  KAFKA_TLS: z.enum(['0', '1']).optional(),
  KAFKA_TLS_CA_FILE: z.string().min(1).optional(),
  SCHEMA_REGISTRY_USERNAME: z.string().min(1).optional(),
  SCHEMA_REGISTRY_PASSWORD: z.string().min(1).optional(),
  GATEWAY_TLS_PROXY: z.enum(['0', '1']).default('0'),
  CONNECT_SECRETS_DIR: z.string().min(1).optional(),
  // --- fault tolerance (issue 11, docs/reliability.md) ---
  PROCESSOR_EPOCH_CHECK_MS: positiveInt(3_600_000).default(1000),
  PROCESSOR_CONNECT_WATCHDOG_MS: nonNegativeInt(3_600_000).default(1000),
  // --- sales channels (issue 13, docs/channels.md) ---
  /** How often processors and gateways check the sales-channel configuration's version. */
  CHANNEL_CONFIG_POLL_MS: positiveInt(600_000).default(250),
});

export type RawConfig = z.infer<typeof schema>;

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How clients reach Kafka: brokers plus optional TLS (a CA file; none: the system CAs) and SASL. */
/** Replication of the topics the platform creates: -1 and undefined leave the brokers' defaults. */
export interface TopicPolicy {
  replicationFactor: number;
  minInsyncReplicas: number | undefined;
}

export interface KafkaConnection {
  brokers: string[];
  /** The processor's and inbound connector's group session: a dead member's partitions move after it (KAFKA_SESSION_TIMEOUT_MS). */
  sessionTimeoutMs: number;
  tls: { caFile: string | undefined } | undefined;
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: string } | undefined;
}

/** How clients reach the schema registry (Confluent API); basic auth when configured. */
export interface RegistryConnection {
  url: string;
  auth: { username: string; password: string } | undefined;
}

export interface Config {
  /** production: start-up refuses development settings (see productionProblems). */
  env: 'development' | 'production';
  logLevel: RawConfig['LOG_LEVEL'];
  stack: {
    mode: RawConfig['STACK'];
    /** `single` (one node of each engine) or `cluster` (TOPOLOGY_DEFAULTS). */
    topology: RawConfig['STACK_TOPOLOGY'];
    dir: string;
    cacheDir: string;
    upTimeoutMs: number;
    autoInstall: boolean;
    pgBinDir: string | undefined;
    mavenRepoUrl: string;
    kafkaControllerPort: number;
    /** The generated secrets file this configuration took credentials from, if any. */
    secretsFile: string | undefined;
  };
  /** `url` carries the password (from PG_URL, PG_PASSWORD or the native stack's secrets). */
  pg: { url: string } & PgTarget;
  /** `url` carries the credentials (from REDIS_URL, REDIS_USERNAME/PASSWORD or the stack's secrets). */
  redis: RedisTarget & { host: string; port: number; prefix: string; maxmemory: string };
  processor: {
    groupId: string;
    /** Where a consumer group with no committed offsets starts. */
    startFrom: 'earliest' | 'latest';
    /** 0: no metrics endpoint. */
    metricsPort: number;
    /** 0: no periodic reconciliation. */
    reconcileIntervalMs: number;
    /** Approximate length the gateway feed stream is trimmed to. */
    feedMaxLen: number;
    /** How often the processor checks that Redis still has its epoch (data not lost). */
    epochCheckMs: number;
    /** How often the processor restarts FAILED Debezium connectors; 0: never. */
    connectWatchdogMs: number;
    /** Fold a SKU's changes of one transaction within a batch into one apply call and one set of effects. */
    coalesce: boolean;
    alerts: {
      /** Low-stock threshold of a SKU without a row in stock_alert_thresholds; 0: no low-stock alerts. */
      lowStockDefault: number;
      /** How often the thresholds are reloaded from Postgres; 0: loaded once at start. */
      thresholdsRefreshMs: number;
      /** Approximate number of entries kept in the gateways' alert stream (<prefix>:alerts). */
      streamMaxLen: number;
    };
  };
  channels: {
    /** How often the sales-channel configuration's version is checked (docs/channels.md). */
    pollMs: number;
  };
  kafka: KafkaConnection;
  /** How the platform creates its topics (lib/ensure-topics.ts): replication, and the in-sync replicas a write needs. */
  topics: TopicPolicy;
  connect: {
    url: string;
    /** How Kafka Connect reaches Postgres; differs from `pg` when Connect runs in a container. */
    pg: PgTarget;
    /**
     * Directory, as the Connect worker sees it, holding `connect.properties` for its
     * FileConfigProvider (CONNECT_SECRETS_DIR; the native stack: <STACK_DIR>/secrets).
     */
    secretsDir: string | undefined;
  };
  registry: RegistryConnection;
  gateway: {
    host: string;
    port: number;
    tickMs: number;
    /** Processes sharing the port (node:cluster); each is a complete gateway. */
    workers: number;
    maxSubscriptions: number;
    maxFrameBytes: number;
    maxBufferedBytes: number;
    maxInvalidFrames: number;
    apiKeys: ApiKey[];
    jwtSecret: string | undefined;
    /** True while the built-in development keys are in use. */
    devKeys: boolean;
    /** Limits against abuse (docs/security.md#gateway-crash-safety-and-limits). */
    limits: {
      maxConnections: number;
      maxConnectionsPerAddress: number;
      /** Remote addresses counted in the total only. */
      exemptAddresses: string[];
      framesPerSec: number;
      frameBurst: number;
      /** SKUs named in subscribe/unsubscribe frames, per connection. */
      subscribeSkusPerSec: number;
      subscribeSkusBurst: number;
      /** A resume further behind than this many feed entries gets a snapshot instead. */
      maxResumeEntries: number;
      /** Resume reads running at once in one gateway process. */
      resumeConcurrency: number;
      /** Snapshots and deltas are split into frames of at most about this many bytes. */
      maxReplyFrameBytes: number;
    };
    /** /metrics, /healthz, /readyz on their own listener; port 0: no metrics listener. */
    metrics: { host: string; port: number };
    /** A TLS-terminating proxy stands in front of a non-loopback GATEWAY_HOST. */
    tlsProxy: boolean;
  };
  /** Identity (gateway/auth.ts): JWT verification beyond the HS256 secret, anonymous purchases. */
  auth: {
    /** JWKS for RS256/ES256 tokens: an absolute file path or an http(s) URL; undefined: none. */
    jwks: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    /** Longest accepted token lifetime (exp - iat, or exp - now without iat), seconds. */
    maxLifetimeS: number;
    /** Development only: purchases without a credential, as customer `anon:<customerId>`. */
    allowAnonymous: boolean;
  };
  purchase: {
    holdTtlMs: number;
    /** An extended hold never outlives its creation by more than this (POST /v1/orders/:id/extend). */
    holdMaxLifetimeMs: number;
    /** After this long without a write-back outcome, a hold is settled against Postgres (the reaper). */
    settleTimeoutMs: number;
    /** Units per customer per SKU; 0: no limit. */
    maxPerCustomer: number;
    /** Token buckets; perSec 0: no limit. */
    rateCustomer: { perSec: number; burst: number };
    rateAddress: { perSec: number; burst: number };
    idempotencyTtlS: number;
    /** 0: no expiry worker / reaper in this process. */
    expiryIntervalMs: number;
    pgPool: number;
    /** SKUs that go through the waiting room. */
    hotSkus: string[];
    waitingRoomFactor: number;
    /** How long a refusal decided for a waitlisted ticket is kept (successes: idempotencyTtlS). */
    refusalTtlS: number;
  };
  seed: { skus: number; locations: number };
  outbound: {
    /** YAML mapping file (absolute; a relative value is resolved against the project directory); undefined: no outbound mappings run. */
    mappingsFile: string | undefined;
    /** Each mapping consumes in its own group, `<groupIdPrefix>.<mapping name>`. */
    groupIdPrefix: string;
  };
  movements: {
    /** Consumer group of the movement relay on the stock CDC topic; instances in one group share the partitions. */
    groupId: string;
    /** Where a group without committed offsets starts. */
    startFrom: 'earliest' | 'latest';
    /** How long a fetch may wait to gather a batch (it returns sooner once 64 KiB are there); 0: at once. */
    batchWaitMs: number;
  };
  inbound: {
    /** Consumer group of the inbound adjustment consumers; instances in one group share the partitions. */
    groupId: string;
    /** Where a group without committed offsets starts. */
    startFrom: 'earliest' | 'latest';
    /** Most adjustments applied in one Postgres transaction. */
    batchMax: number;
    /** Postgres connections of one connectors process. */
    pgPool: number;
  };
  connectors: {
    /** Port of the connectors service's /metrics, /healthz, /readyz; 0: none. */
    metricsPort: number;
  };
  lifecycle: {
    /** Bound on a graceful stop's drain (in-flight purchases, the current batch). */
    drainTimeoutMs: number;
    /** How long readiness is red before a gateway stops accepting (load balancers notice). */
    readinessDelayMs: number;
  };
  supervisor: {
    backoff: { initialMs: number; maxMs: number; stableMs: number };
    maxStartFailures: number;
  };
  cdc: {
    /** Period of the slot metrics and the lost-slot watchdog in the processor; 0: off. */
    watchdogIntervalMs: number;
    /** Quiet time after the last incremental-snapshot watermark before reconciling. */
    snapshotSettleMs: number;
    /** Reconcile anyway this long after requesting the snapshot. */
    snapshotTimeoutMs: number;
    /** Retained-WAL alert thresholds (metrics and docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery). */
    retainedWarnBytes: number;
    retainedCriticalBytes: number;
  };
  housekeeping: {
    /** 0: no housekeeping job in this process. */
    intervalMs: number;
    outboxRetentionMs: number;
    adjustmentsRetentionMs: number;
    movementsRetentionMs: number;
    idempotencyRetentionMs: number;
  };
}

/** Every variable the platform reads, for `.env.example` and the docs. */
export const CONFIG_VARIABLES = Object.keys(schema.shape) as Array<keyof RawConfig>;

function pgTarget(pgUrl: string): PgTarget {
  const u = new URL(pgUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || 'postgres'),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '') || 'postgres'),
  };
}

/** Where the native stack writes the credentials its clients use, relative to STACK_DIR. */
/** KAFKA_TOPIC_REPLICATION_FACTOR / KAFKA_TOPIC_MIN_INSYNC_REPLICAS, checked against each other. */
export function topicPolicy(replicationFactor: number, minInsyncReplicas: number | undefined): TopicPolicy {
  if (minInsyncReplicas !== undefined && replicationFactor > 0 && minInsyncReplicas > replicationFactor) {
    throw new ConfigError(
      `invalid configuration: KAFKA_TOPIC_MIN_INSYNC_REPLICAS (${minInsyncReplicas}) is more than KAFKA_TOPIC_REPLICATION_FACTOR (${replicationFactor}): no write could ever be acknowledged`,
      { variable: 'KAFKA_TOPIC_MIN_INSYNC_REPLICAS' },
    );
  }
  return { replicationFactor, minInsyncReplicas };
}

export const STACK_CLIENT_SECRETS = path.join('secrets', 'clients.env');

/** The variables `<STACK_DIR>/secrets/clients.env` may provide (nothing else is taken from it). */
const SECRET_VARIABLES = [
  'PG_PASSWORD',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_TLS',
  'KAFKA_TLS_CA_FILE',
] as const;

/** Reads a `KEY=value` secrets file; undefined when it does not exist. */
export function readSecretsFile(file: string): Record<string, string> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`invalid configuration: STACK_DIR secrets file ${file} is not readable (${(err as Error).message})`, {
      variable: 'STACK_DIR',
      cause: err,
    });
  }
  return parseEnv(text) as Record<string, string>;
}

export interface LoadOptions {
  /** Reads the native stack's secrets file (tests replace it). */
  readSecrets?: (file: string) => Record<string, string> | undefined;
}

const LOOPBACK = /^(?:127(?:\.\d{1,3}){3}|localhost|::1|\[::1\])$/i;

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host);
}

/** `url` with its password replaced by `***` (for anything printed or logged). */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (!u.password) return value;
    u.password = '***';
    return u.toString();
  } catch {
    return value.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

function withCredentials(value: string, username: string | undefined, password: string | undefined): string {
  const u = new URL(value);
  if (username !== undefined) u.username = encodeURIComponent(username);
  if (password !== undefined) u.password = encodeURIComponent(password);
  return u.toString();
}

function configError(variable: string, message: string): ConfigError {
  return new ConfigError(`invalid configuration: ${variable} ${message}`, { variable });
}

/**
 * What INVSYNC_ENV=production refuses, one line per problem, each naming its variable. Pure:
 * `_given` (the variables set explicitly, after empty values are dropped) is not consulted yet.
 */
export function productionProblems(config: Config, _given: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const devKeys = DEV_KEYS.map((k) => k.key);
  if (config.gateway.devKeys || config.gateway.apiKeys.some((k) => devKeys.includes(k.key))) {
    problems.push(`GATEWAY_API_KEYS: the built-in development keys (${devKeys.join(', ')}) are in use; name your own keys`);
  }
  // Anonymous purchases default to off in production; only an explicit PURCHASE_ALLOW_ANONYMOUS=1 gets here.
  if (config.auth.allowAnonymous) {
    problems.push('PURCHASE_ALLOW_ANONYMOUS: anonymous purchases are a development mode; purchases must carry a verified customer');
  }
  if (!config.pg.password) {
    problems.push('PG_URL: no Postgres password (the server would have to trust every connection); give one in PG_URL or PG_PASSWORD');
  }
  const redis = new URL(config.redis.url);
  if (!redis.password) problems.push('REDIS_URL: no Redis password; give credentials in REDIS_URL or REDIS_USERNAME/REDIS_PASSWORD');
  if (!config.kafka.sasl) problems.push('KAFKA_SASL_MECHANISM: Kafka clients do not authenticate; set a SASL mechanism, user and password');
  if (!config.kafka.tls && config.kafka.brokers.some((b) => !isLoopbackHost(b.slice(0, b.lastIndexOf(':'))))) {
    problems.push('KAFKA_TLS: brokers off loopback are reached without TLS; set KAFKA_TLS=1 (and KAFKA_TLS_CA_FILE for a private CA)');
  }
  if (!isLoopbackHost(config.gateway.host) && !config.gateway.tlsProxy) {
    problems.push(
      `GATEWAY_HOST: ${config.gateway.host} is not loopback and no TLS is in front; put a TLS-terminating proxy in front and set GATEWAY_TLS_PROXY=1`,
    );
  }
  return problems;
}

/**
 * Parses the environment. Empty strings count as unset so that a `.env` line like `PG_URL=`
 * falls back to the default instead of failing. With STACK=native, credentials not given are
 * taken from the native stack's generated secrets (`<STACK_DIR>/secrets/clients.env`), read
 * here each time the configuration is loaded (so a process that started the stack reloads).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Readonly<Config> {
  const input: Record<string, string> = {};
  for (const key of CONFIG_VARIABLES) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value.trim();
  }
  const config = buildConfig(input, env, options);
  sources.set(config, { input, xdg: env.XDG_CACHE_HOME, options });
  return config;
}

/** What each loaded configuration was built from, so it can be rebuilt (see reloadConfig). */
const sources = new WeakMap<object, { input: Record<string, string>; xdg: string | undefined; options: LoadOptions }>();

/**
 * The same configuration loaded again from the same variables: picks up the native stack's
 * secrets when they were generated after `config` was loaded (the first `stack up`).
 */
export function reloadConfig(config: Readonly<Config>): Readonly<Config> {
  const source = sources.get(config);
  if (!source) return config;
  const again = buildConfig(source.input, { ...source.input, XDG_CACHE_HOME: source.xdg }, source.options);
  sources.set(again, source);
  return again;
}

function buildConfig(given: Record<string, string>, env: NodeJS.ProcessEnv, options: LoadOptions): Readonly<Config> {
  const input = given.STACK_TOPOLOGY === 'cluster' ? { ...TOPOLOGY_DEFAULTS.cluster, ...given } : given;
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const given = input[variable];
    throw new ConfigError(
      `invalid configuration: ${variable} ${issue.message}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`,
      { variable },
    );
  }
  let raw = parsed.data;
  const stackDir = path.resolve(raw.STACK_DIR);
  let secretsFile: string | undefined;
  if (raw.STACK === 'native') {
    const file = path.join(stackDir, STACK_CLIENT_SECRETS);
    const secrets = (options.readSecrets ?? readSecretsFile)(file);
    if (secrets) {
      const merged: Record<string, string> = { ...input };
      for (const key of SECRET_VARIABLES) {
        const value = secrets[key];
        if (merged[key] !== undefined || value === undefined || value === '') continue;
        merged[key] = key === 'KAFKA_TLS_CA_FILE' ? path.resolve(path.dirname(file), value) : value;
      }
      const again = schema.safeParse(merged);
      if (!again.success) throw configError('STACK_DIR', `secrets file ${file} is invalid: ${again.error.issues[0]!.message}`);
      raw = again.data;
      secretsFile = file;
    }
  }
  // Postgres: PG_PASSWORD, else the URL's own password, else the stack's secret.
  const pgUrlGiven = new URL(raw.PG_URL);
  const pgPassword = input.PG_PASSWORD ?? (pgUrlGiven.password ? undefined : raw.PG_PASSWORD);
  const pgUrl = pgPassword === undefined ? raw.PG_URL : withCredentials(raw.PG_URL, undefined, pgPassword);
  const pg = pgTarget(pgUrl);
  // Redis: REDIS_USERNAME/REDIS_PASSWORD, else the URL's credentials, else the stack's secret.
  const redisGiven = new URL(raw.REDIS_URL);
  const redisFromUrl = redisGiven.password !== '' || redisGiven.username !== '';
  const redisUser = input.REDIS_USERNAME ?? (redisFromUrl ? undefined : raw.REDIS_USERNAME);
  const redisPassword = input.REDIS_PASSWORD ?? (redisFromUrl ? undefined : raw.REDIS_PASSWORD);
  const redisUrl = redisUser === undefined && redisPassword === undefined ? raw.REDIS_URL : withCredentials(raw.REDIS_URL, redisUser, redisPassword);
  const redisParsed = new URL(redisUrl);
  // Kafka: SASL and TLS.
  const mechanism = raw.KAFKA_SASL_MECHANISM ?? 'none';
  let sasl: KafkaConnection['sasl'];
  if (mechanism !== 'none') {
    if (!raw.KAFKA_SASL_USERNAME) throw configError('KAFKA_SASL_USERNAME', `must be set when KAFKA_SASL_MECHANISM is ${mechanism}`);
    if (!raw.KAFKA_SASL_PASSWORD) throw configError('KAFKA_SASL_PASSWORD', `must be set when KAFKA_SASL_MECHANISM is ${mechanism}`);
    sasl = { mechanism, username: raw.KAFKA_SASL_USERNAME, password: raw.KAFKA_SASL_PASSWORD };
  }
  const caFile = raw.KAFKA_TLS_CA_FILE === undefined ? undefined : path.resolve(PROJECT_ROOT, raw.KAFKA_TLS_CA_FILE);
  if (caFile !== undefined && !fs.existsSync(caFile)) throw configError('KAFKA_TLS_CA_FILE', `names a file that does not exist (${caFile})`);
  const tlsOn = raw.KAFKA_TLS === '1' || (raw.KAFKA_TLS === undefined && caFile !== undefined);
  if ((raw.SCHEMA_REGISTRY_USERNAME === undefined) !== (raw.SCHEMA_REGISTRY_PASSWORD === undefined)) {
    throw configError(raw.SCHEMA_REGISTRY_USERNAME === undefined ? 'SCHEMA_REGISTRY_USERNAME' : 'SCHEMA_REGISTRY_PASSWORD', 'must be set together with its pair');
  }
  const cacheDir =
    raw.STACK_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'invsync');
  const config: Config = {
    env: raw.INVSYNC_ENV,
    logLevel: raw.LOG_LEVEL,
    stack: {
      mode: raw.STACK,
      topology: raw.STACK_TOPOLOGY,
      dir: stackDir,
      cacheDir: path.resolve(cacheDir),
      upTimeoutMs: raw.STACK_UP_TIMEOUT_S * 1000,
      autoInstall: raw.STACK_AUTO_INSTALL === '1',
      pgBinDir: raw.PG_BIN_DIR,
      mavenRepoUrl: raw.MAVEN_REPO_URL.replace(/\/+$/, ''),
      kafkaControllerPort: raw.KAFKA_CONTROLLER_PORT,
      secretsFile,
    },
    pg: { url: pgUrl, ...pg },
    redis: {
      url: redisUrl,
      cluster: raw.REDIS_CLUSTER_NODES?.map((node) => {
        const at = node.lastIndexOf(':');
        return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
      }),
      host: redisParsed.hostname,
      port: Number(redisParsed.port || 6379),
      prefix: raw.REDIS_PREFIX,
      maxmemory: raw.REDIS_MAXMEMORY.toLowerCase(),
    },
    processor: {
      groupId: raw.PROCESSOR_GROUP_ID,
      startFrom: raw.PROCESSOR_START_FROM,
      metricsPort: raw.PROCESSOR_METRICS_PORT,
      reconcileIntervalMs: raw.PROCESSOR_RECONCILE_INTERVAL_S * 1000,
      feedMaxLen: raw.FEED_MAXLEN,
      epochCheckMs: raw.PROCESSOR_EPOCH_CHECK_MS,
      connectWatchdogMs: raw.PROCESSOR_CONNECT_WATCHDOG_MS,
      coalesce: raw.PROCESSOR_COALESCE === '1',
      alerts: {
        lowStockDefault: raw.ALERT_LOW_STOCK_DEFAULT,
        thresholdsRefreshMs: raw.ALERT_THRESHOLDS_REFRESH_MS,
        streamMaxLen: raw.ALERT_STREAM_MAXLEN,
      },
    },
    channels: { pollMs: raw.CHANNEL_CONFIG_POLL_MS },
    kafka: { brokers: raw.KAFKA_BROKERS, sessionTimeoutMs: raw.KAFKA_SESSION_TIMEOUT_MS, tls: tlsOn ? { caFile } : undefined, sasl },
    topics: topicPolicy(raw.KAFKA_TOPIC_REPLICATION_FACTOR, raw.KAFKA_TOPIC_MIN_INSYNC_REPLICAS),
    connect: {
      url: raw.CONNECT_URL.replace(/\/+$/, ''),
      pg: { ...pg, host: raw.CONNECT_PG_HOST ?? pg.host, port: raw.CONNECT_PG_PORT ?? pg.port },
      secretsDir: raw.CONNECT_SECRETS_DIR,
    },
    registry: {
      url: raw.SCHEMA_REGISTRY_URL.replace(/\/+$/, ''),
      auth:
        raw.SCHEMA_REGISTRY_USERNAME !== undefined && raw.SCHEMA_REGISTRY_PASSWORD !== undefined
          ? { username: raw.SCHEMA_REGISTRY_USERNAME, password: raw.SCHEMA_REGISTRY_PASSWORD }
          : undefined,
    },
    gateway: {
      host: raw.GATEWAY_HOST,
      port: raw.GATEWAY_PORT,
      tickMs: raw.GATEWAY_TICK_MS,
      workers: raw.GATEWAY_WORKERS,
      maxSubscriptions: raw.GATEWAY_MAX_SUBSCRIPTIONS,
      maxFrameBytes: raw.GATEWAY_MAX_FRAME_BYTES,
      maxBufferedBytes: raw.GATEWAY_MAX_BUFFERED_BYTES,
      maxInvalidFrames: raw.GATEWAY_MAX_INVALID_FRAMES,
      apiKeys: raw.GATEWAY_API_KEYS,
      jwtSecret: raw.GATEWAY_JWT_SECRET,
      devKeys: input.GATEWAY_API_KEYS === undefined,
      limits: {
        maxConnections: raw.GATEWAY_MAX_CONNECTIONS,
        maxConnectionsPerAddress: raw.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS,
        exemptAddresses: raw.GATEWAY_LIMIT_EXEMPT_ADDRESSES,
        framesPerSec: raw.GATEWAY_WS_FRAMES_PER_SEC,
        frameBurst: raw.GATEWAY_WS_FRAME_BURST,
        subscribeSkusPerSec: raw.GATEWAY_WS_SUBSCRIBE_SKUS_PER_SEC,
        subscribeSkusBurst: raw.GATEWAY_WS_SUBSCRIBE_SKUS_BURST ?? 2 * raw.GATEWAY_MAX_SUBSCRIPTIONS,
        maxResumeEntries: raw.GATEWAY_MAX_RESUME_ENTRIES,
        resumeConcurrency: raw.GATEWAY_RESUME_CONCURRENCY,
        maxReplyFrameBytes: raw.GATEWAY_MAX_REPLY_FRAME_BYTES,
      },
      metrics: { host: raw.GATEWAY_METRICS_HOST, port: raw.GATEWAY_METRICS_PORT },
      tlsProxy: raw.GATEWAY_TLS_PROXY === '1',
    },
    auth: {
      jwks: raw.GATEWAY_JWT_JWKS === undefined ? undefined : /^https?:\/\//.test(raw.GATEWAY_JWT_JWKS) ? raw.GATEWAY_JWT_JWKS : path.resolve(PROJECT_ROOT, raw.GATEWAY_JWT_JWKS),
      issuer: raw.GATEWAY_JWT_ISSUER,
      audience: raw.GATEWAY_JWT_AUDIENCE,
      maxLifetimeS: raw.GATEWAY_JWT_MAX_LIFETIME_S,
      allowAnonymous: (raw.PURCHASE_ALLOW_ANONYMOUS ?? (raw.INVSYNC_ENV === 'production' ? '0' : '1')) === '1',
    },
    purchase: {
      holdTtlMs: raw.PURCHASE_HOLD_TTL_S * 1000,
      holdMaxLifetimeMs: raw.PURCHASE_HOLD_MAX_LIFETIME_S * 1000,
      settleTimeoutMs: raw.PURCHASE_SETTLE_TIMEOUT_S * 1000,
      maxPerCustomer: raw.PURCHASE_MAX_PER_CUSTOMER,
      rateCustomer: { perSec: raw.PURCHASE_RATE_CUSTOMER_PER_SEC, burst: raw.PURCHASE_RATE_CUSTOMER_BURST },
      rateAddress: { perSec: raw.PURCHASE_RATE_ADDRESS_PER_SEC, burst: raw.PURCHASE_RATE_ADDRESS_BURST },
      idempotencyTtlS: raw.PURCHASE_IDEMPOTENCY_TTL_S,
      expiryIntervalMs: raw.PURCHASE_EXPIRY_INTERVAL_MS,
      pgPool: raw.PURCHASE_PG_POOL,
      hotSkus: raw.PURCHASE_HOT_SKUS,
      waitingRoomFactor: raw.PURCHASE_WAITING_ROOM_FACTOR,
      refusalTtlS: raw.PURCHASE_REFUSAL_TTL_S,
    },
    seed: { skus: raw.SEED_SKUS, locations: raw.SEED_LOCATIONS },
    outbound: {
      mappingsFile: raw.CONNECTOR_MAPPINGS_FILE === undefined ? undefined : path.resolve(PROJECT_ROOT, raw.CONNECTOR_MAPPINGS_FILE),
      groupIdPrefix: raw.CONNECTOR_OUTBOUND_GROUP_ID,
    },
    movements: { groupId: raw.CONNECTOR_MOVEMENTS_GROUP_ID, startFrom: raw.CONNECTOR_MOVEMENTS_START_FROM, batchWaitMs: raw.CONNECTOR_MOVEMENTS_BATCH_WAIT_MS },
    inbound: {
      groupId: raw.CONNECTOR_INBOUND_GROUP_ID,
      startFrom: raw.CONNECTOR_INBOUND_START_FROM,
      batchMax: raw.CONNECTOR_INBOUND_BATCH_MAX,
      pgPool: raw.CONNECTOR_INBOUND_PG_POOL,
    },
    connectors: { metricsPort: raw.CONNECTOR_METRICS_PORT },
    lifecycle: { drainTimeoutMs: raw.SHUTDOWN_DRAIN_TIMEOUT_MS, readinessDelayMs: raw.SHUTDOWN_READINESS_DELAY_MS },
    supervisor: {
      backoff: { initialMs: raw.SUPERVISOR_BACKOFF_INITIAL_MS, maxMs: raw.SUPERVISOR_BACKOFF_MAX_MS, stableMs: raw.SUPERVISOR_STABLE_AFTER_MS },
      maxStartFailures: raw.SUPERVISOR_MAX_START_FAILURES,
    },
    cdc: {
      watchdogIntervalMs: raw.CDC_WATCHDOG_INTERVAL_MS,
      snapshotSettleMs: raw.CDC_SNAPSHOT_SETTLE_MS,
      snapshotTimeoutMs: raw.CDC_SNAPSHOT_TIMEOUT_MS,
      retainedWarnBytes: raw.CDC_SLOT_RETAINED_WARN_MB * 1024 * 1024,
      retainedCriticalBytes: raw.CDC_SLOT_RETAINED_CRITICAL_MB * 1024 * 1024,
    },
    housekeeping: {
      intervalMs: raw.HOUSEKEEPING_INTERVAL_S * 1000,
      outboxRetentionMs: raw.HOUSEKEEPING_OUTBOX_RETENTION_S * 1000,
      adjustmentsRetentionMs: raw.HOUSEKEEPING_ADJUSTMENTS_RETENTION_DAYS * 86_400_000,
      movementsRetentionMs: raw.HOUSEKEEPING_MOVEMENTS_RETENTION_DAYS * 86_400_000,
      idempotencyRetentionMs: raw.HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS * 86_400_000,
    },
  };
  if (config.supervisor.backoff.maxMs < config.supervisor.backoff.initialMs) {
    throw new ConfigError('invalid configuration: SUPERVISOR_BACKOFF_MAX_MS must be at least SUPERVISOR_BACKOFF_INITIAL_MS', { variable: 'SUPERVISOR_BACKOFF_MAX_MS' });
  }
  // The Postgres idempotency records are the second line of defence behind Redis's: they must
  // outlive them, or a replay after a Redis loss could create a second order.
  if (config.housekeeping.idempotencyRetentionMs < config.purchase.idempotencyTtlS * 1000) {
    throw new ConfigError(
      `invalid configuration: HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS (${raw.HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS}) must cover PURCHASE_IDEMPOTENCY_TTL_S (${config.purchase.idempotencyTtlS} s)`,
      { variable: 'HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS' },
    );
  }
  // A hold's first expiry is its TTL; extending it can only move the expiry later.
  if (config.purchase.holdMaxLifetimeMs < config.purchase.holdTtlMs) {
    throw new ConfigError(
      `invalid configuration: PURCHASE_HOLD_MAX_LIFETIME_S (${raw.PURCHASE_HOLD_MAX_LIFETIME_S}) must be at least PURCHASE_HOLD_TTL_S (${raw.PURCHASE_HOLD_TTL_S})`,
      { variable: 'PURCHASE_HOLD_MAX_LIFETIME_S' },
    );
  }
  if (config.gateway.devKeys && !isLoopbackHost(config.gateway.host)) {
    throw new ConfigError(
      `invalid configuration: GATEWAY_API_KEYS must be set when GATEWAY_HOST (${config.gateway.host}) is not loopback: the built-in development keys are public`,
      { variable: 'GATEWAY_API_KEYS' },
    );
  }
  if (config.env === 'production') {
    const problems = productionProblems(config, input);
    if (problems.length > 0) {
      throw new ConfigError(
        `INVSYNC_ENV=production refuses to start (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  ${p}`).join('\n')}`,
        { variable: problems[0]!.split(':')[0]! },
      );
    }
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Entry points call this: a bad value prints one line naming the variable and exits 2. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  // A `.env` in the project root is honoured; variables already set in the shell win.
  const dotenv = path.join(PROJECT_ROOT, '.env');
  if (env === process.env && fs.existsSync(dotenv)) process.loadEnvFile(dotenv);
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig, PROJECT_ROOT } from './config.ts';

/** A native stack that has not generated its secrets yet. */
const noSecrets = { readSecrets: () => undefined };
import { ConfigError } from './errors.ts';

describe('loadConfig', () => {
  it('defaults to the native stack on its own loopback ports, away from 5432/6379', () => {
    const c = loadConfig({}, noSecrets);
    expect(c.stack.mode).toBe('native');
    expect(c.pg).toMatchObject({ host: '127.0.0.1', port: 15432, user: 'invsync', database: 'inventory' });
    expect(c.redis.port).toBe(16379);
    expect(c.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(c.connect.pg).toEqual({ host: '127.0.0.1', port: 15432, user: 'invsync', password: '', database: 'inventory' });
    expect(c.kafka).toEqual({ brokers: ['127.0.0.1:19092'], sessionTimeoutMs: 3000, tls: undefined, sasl: undefined });
    expect(c.redis.maxmemory).toBe('1gb');
    expect(c.env).toBe('development');
    expect(c.seed).toEqual({ skus: 1000, locations: 3 });
  });

  it('parses lists and overrides, and lets Connect reach Postgres under another name', () => {
    const c = loadConfig({
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      CONNECT_PG_HOST: 'postgres',
      CONNECT_PG_PORT: '5432',
      PG_URL: 'postgresql://u:p%40ss@db.example:6000/stock',
      STACK: 'external',
    });
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.pg).toMatchObject({ host: 'db.example', port: 6000, user: 'u', password: 'p@ss', database: 'stock' });
    expect(c.connect.pg).toMatchObject({ host: 'postgres', port: 5432, database: 'stock' });
    expect(c.stack.mode).toBe('external');
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PG_URL: '  ', SEED_SKUS: '' }).pg.port).toBe(15432);
  });

  it.each([
    ['PG_URL', 'mysql://x', /PG_URL must be a URL starting with postgres:\/\/ or postgresql:\/\//],
    ['REDIS_URL', 'not a url', /REDIS_URL must be a URL/],
    ['KAFKA_BROKERS', 'localhost', /KAFKA_BROKERS must be a comma-separated list of host:port/],
    ['KAFKA_CONTROLLER_PORT', '70000', /KAFKA_CONTROLLER_PORT must be between 1 and 65535/],
    ['SEED_SKUS', 'lots', /SEED_SKUS must be a number/],
    ['STACK', 'docker', /STACK .*"docker"/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL/],
    ['PURCHASE_HOLD_MAX_LIFETIME_S', '0', /PURCHASE_HOLD_MAX_LIFETIME_S must be at least 1/],
    ['PURCHASE_HOLD_MAX_LIFETIME_S', '600', /PURCHASE_HOLD_MAX_LIFETIME_S \(600\) must be at least PURCHASE_HOLD_TTL_S \(900\)/],
  ])('a bad %s stops start-up with one line naming it', (variable, value, pattern) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.variable).toBe(variable);
    expect(e.message).toMatch(pattern);
    expect(e.message).not.toContain('\n');
  });

  it('parses gateway API keys and refuses the development keys off loopback', () => {
    const c = loadConfig({ GATEWAY_API_KEYS: 'acme-wms:0123456789:wms; acme-both:abcdefghij:wms+erp' });
    expect(c.gateway.apiKeys).toEqual([
      { name: 'acme-wms', key: '0123456789', channels: ['wms'], scopes: ['wms'] },
      { name: 'acme-both', key: 'abcdefghij', channels: ['wms', 'erp'], scopes: ['wms', 'erp'] },
    ]);
    // Scopes contain ':' themselves: everything after name:key: is the grant list.
    expect(loadConfig({ GATEWAY_API_KEYS: 'shop:0123456789:purchase:act-for+wms+adjustments:write' }).gateway.apiKeys).toEqual([
      { name: 'shop', key: '0123456789', channels: ['wms'], scopes: ['purchase:act-for', 'wms', 'adjustments:write'] },
    ]);
    expect(() => loadConfig({ GATEWAY_API_KEYS: 'shop:0123456789:purchase:everything' })).toThrow(/GATEWAY_API_KEYS must be name:key:grant/);
    expect(c.gateway.devKeys).toBe(false);
    expect(loadConfig({}).gateway.devKeys).toBe(true);
    expect(() => loadConfig({ GATEWAY_API_KEYS: 'acme:short:wms' })).toThrow(/GATEWAY_API_KEYS must be name:key:grant/);
    expect(() => loadConfig({ GATEWAY_API_KEYS: 'acme:0123456789:pos' })).toThrow(/GATEWAY_API_KEYS/);
    expect(() => loadConfig({ GATEWAY_HOST: '0.0.0.0' })).toThrow(/GATEWAY_API_KEYS must be set when GATEWAY_HOST \(0.0.0.0\) is not loopback/);
    expect(loadConfig({ GATEWAY_HOST: '0.0.0.0', GATEWAY_API_KEYS: 'a:0123456789:erp' }).gateway.host).toBe('0.0.0.0');
    expect(() => loadConfig({ GATEWAY_JWT_SECRET: 'short' })).toThrow(/GATEWAY_JWT_SECRET must be at least 32 characters/);
  });

  it('identity: JWKS file or URL, issuer/audience, maximum lifetime, anonymous purchases as a development default', () => {
    const d = loadConfig({});
    expect(d.auth).toEqual({ jwks: undefined, issuer: undefined, audience: undefined, maxLifetimeS: 86_400, allowAnonymous: true });
    expect(d.purchase.refusalTtlS).toBe(300);
    const c = loadConfig({ GATEWAY_JWT_JWKS: 'https://id.example/.well-known/jwks.json', GATEWAY_JWT_ISSUER: 'https://id.example', GATEWAY_JWT_AUDIENCE: 'invsync', PURCHASE_ALLOW_ANONYMOUS: '0' });
    expect(c.auth).toMatchObject({ jwks: 'https://id.example/.well-known/jwks.json', issuer: 'https://id.example', audience: 'invsync', allowAnonymous: false });
    expect(loadConfig({ GATEWAY_JWT_JWKS: 'keys/jwks.json' }).auth.jwks).toBe(path.join(PROJECT_ROOT, 'keys', 'jwks.json'));
    expect(() => loadConfig({ GATEWAY_JWT_JWKS: 'ftp://x/jwks' })).toThrow(/GATEWAY_JWT_JWKS/);
    expect(() => loadConfig({ PURCHASE_ALLOW_ANONYMOUS: 'yes' })).toThrow(/PURCHASE_ALLOW_ANONYMOUS/);
  });

  it('gateway limits: defaults, the exempt-address list (none), the burst derived from the subscription cap, bad values named', () => {
    const d = loadConfig({}).gateway;
    expect(d.limits).toEqual({
      maxConnections: 50_000,
      maxConnectionsPerAddress: 100,
      exemptAddresses: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
      framesPerSec: 50,
      frameBurst: 100,
      subscribeSkusPerSec: 2000,
      subscribeSkusBurst: 2000,
      maxResumeEntries: 10_000,
      resumeConcurrency: 4,
      maxReplyFrameBytes: 256 * 1024,
    });
    expect(d.metrics).toEqual({ host: '127.0.0.1', port: 18089 });
    const c = loadConfig({ GATEWAY_LIMIT_EXEMPT_ADDRESSES: 'none', GATEWAY_MAX_SUBSCRIPTIONS: '50', GATEWAY_METRICS_PORT: '0' }).gateway;
    expect(c.limits.exemptAddresses).toEqual([]);
    expect(c.limits.subscribeSkusBurst).toBe(100);
    expect(c.metrics.port).toBe(0);
    expect(loadConfig({ GATEWAY_LIMIT_EXEMPT_ADDRESSES: '10.0.0.1, 10.0.0.2' }).gateway.limits.exemptAddresses).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(() => loadConfig({ GATEWAY_MAX_CONNECTIONS: '0' })).toThrow(/GATEWAY_MAX_CONNECTIONS must be at least 1/);
    expect(() => loadConfig({ GATEWAY_WS_FRAMES_PER_SEC: 'lots' })).toThrow(/GATEWAY_WS_FRAMES_PER_SEC must be a number/);
    expect(() => loadConfig({ GATEWAY_METRICS_PORT: '70000' })).toThrow(/GATEWAY_METRICS_PORT must be between 0 and 65535/);
  });

  it('stock alerts: no low-stock default, a 10 s reload, and a negative or fractional threshold refused by name', () => {
    expect(loadConfig({}).processor.alerts).toEqual({ lowStockDefault: 0, thresholdsRefreshMs: 10_000, streamMaxLen: 10_000 });
    expect(loadConfig({ ALERT_LOW_STOCK_DEFAULT: '5' }).processor.alerts.lowStockDefault).toBe(5);
    expect(() => loadConfig({ ALERT_LOW_STOCK_DEFAULT: '-1' })).toThrow(/ALERT_LOW_STOCK_DEFAULT must be 0 or more/);
    expect(() => loadConfig({ ALERT_LOW_STOCK_DEFAULT: '2.5' })).toThrow(/ALERT_LOW_STOCK_DEFAULT must be a whole number/);
    expect(() => loadConfig({ ALERT_THRESHOLDS_REFRESH_MS: 'often' })).toThrow(/ALERT_THRESHOLDS_REFRESH_MS/);
  });

  it('returns a frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.pg)).toBe(true);
    expect(() => {
      (c.kafka.brokers as string[]).push('x:1');
    }).toThrow();
  });

  it('lifecycle, supervisor and housekeeping settings: defaults, and retention that must cover the Redis idempotency TTL', () => {
    const c = loadConfig({});
    expect(c.lifecycle).toEqual({ drainTimeoutMs: 10_000, readinessDelayMs: 0 });
    expect(c.supervisor).toEqual({ backoff: { initialMs: 500, maxMs: 30_000, stableMs: 30_000 }, maxStartFailures: 5 });
    expect(c.housekeeping).toEqual({ intervalMs: 3_600_000, outboxRetentionMs: 3_600_000, adjustmentsRetentionMs: 30 * 86_400_000, idempotencyRetentionMs: 30 * 86_400_000, movementsRetentionMs: 90 * 86_400_000 });
    expect(() => loadConfig({ HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS: '1', PURCHASE_IDEMPOTENCY_TTL_S: String(2 * 86_400) })).toThrow(/HOUSEKEEPING_IDEMPOTENCY_RETENTION_DAYS/);
    expect(() => loadConfig({ SUPERVISOR_BACKOFF_INITIAL_MS: '5000', SUPERVISOR_BACKOFF_MAX_MS: '1000' })).toThrow(/SUPERVISOR_BACKOFF_MAX_MS/);
    expect(() => loadConfig({ SHUTDOWN_DRAIN_TIMEOUT_MS: '0' })).toThrow(/SHUTDOWN_DRAIN_TIMEOUT_MS/);
  });

  it('movement relay: its group, where it starts, and a 250 ms batch-gathering wait (0 allowed, negative refused)', () => {
    expect(loadConfig({}).movements).toEqual({ groupId: 'invsync-movement-relay', startFrom: 'earliest', batchWaitMs: 250 });
    expect(loadConfig({ CONNECTOR_MOVEMENTS_BATCH_WAIT_MS: '0' }).movements.batchWaitMs).toBe(0);
    expect(() => loadConfig({ CONNECTOR_MOVEMENTS_BATCH_WAIT_MS: '-1' })).toThrow(/CONNECTOR_MOVEMENTS_BATCH_WAIT_MS/);
  });

  it('.env.example lists every variable the code reads, and only those', () => {
    const text = fs.readFileSync(path.join(PROJECT_ROOT, '.env.example'), 'utf8');
    const listed = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(new Set(listed)).toEqual(new Set(CONFIG_VARIABLES));
  });
});

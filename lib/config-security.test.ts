/**
 * Credentials in the configuration: the native stack's generated secrets, explicit values that
 * win over them, TLS/SASL settings for Kafka, redaction, and what INVSYNC_ENV=production refuses.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, loadConfig, productionProblems, redactUrl, reloadConfig, STACK_CLIENT_SECRETS } from './config.ts';
import { ConfigError } from './errors.ts';

const SECRETS = {
  PG_PASSWORD: 'pg-secret',
  REDIS_USERNAME: 'invsync',
  REDIS_PASSWORD: 'redis-secret',
  KAFKA_SASL_MECHANISM: 'scram-sha-512',
  KAFKA_SASL_USERNAME: 'invsync',
  KAFKA_SASL_PASSWORD: 'kafka-secret',
  KAFKA_TLS: '1',
};
const withSecrets = { readSecrets: () => SECRETS };
const noSecrets = { readSecrets: () => undefined };

/** A production configuration with nothing to refuse. */
const PRODUCTION = {
  INVSYNC_ENV: 'production',
  STACK: 'external',
  PG_URL: 'postgres://app:pw@db.internal:5432/inventory?sslmode=require',
  REDIS_URL: 'rediss://app:pw@redis.internal:6380',
  KAFKA_BROKERS: 'k1.internal:9093',
  KAFKA_SASL_MECHANISM: 'scram-sha-512',
  KAFKA_SASL_USERNAME: 'app',
  KAFKA_SASL_PASSWORD: 'pw',
  KAFKA_TLS: '1',
  GATEWAY_API_KEYS: 'acme-wms:0123456789abcdef:wms',
};

describe('credentials from the native stack secrets', () => {
  it('fills every credential the environment does not give, into the URLs and the Kafka connection', () => {
    const c = loadConfig({}, withSecrets);
    expect(c.pg.password).toBe('pg-secret');
    expect(new URL(c.pg.url).password).toBe('pg-secret');
    expect(c.redis.url).toBe('redis://invsync:redis-secret@127.0.0.1:16379');
    expect(c.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'invsync', password: 'kafka-secret' });
    expect(c.kafka.tls).toEqual({ caFile: undefined });
    expect(c.connect.pg.password).toBe('pg-secret');
  });

  it('explicit values win: PG_PASSWORD, a password in PG_URL, credentials in REDIS_URL, KAFKA_SASL_MECHANISM=none', () => {
    expect(loadConfig({ PG_PASSWORD: 'mine' }, withSecrets).pg.password).toBe('mine');
    expect(loadConfig({ PG_URL: 'postgres://invsync:fromurl@127.0.0.1:15432/inventory' }, withSecrets).pg.password).toBe('fromurl');
    expect(loadConfig({ REDIS_URL: 'redis://u:p@127.0.0.1:16379' }, withSecrets).redis.url).toBe('redis://u:p@127.0.0.1:16379');
    expect(loadConfig({ REDIS_PASSWORD: 'x y' }, withSecrets).redis.url).toBe('redis://invsync:x%20y@127.0.0.1:16379');
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'none' }, withSecrets).kafka.sasl).toBeUndefined();
  });

  it('takes nothing from the secrets with STACK=external', () => {
    const c = loadConfig({ STACK: 'external' }, withSecrets);
    expect(c.pg.password).toBe('');
    expect(c.kafka.sasl).toBeUndefined();
    expect(c.stack.secretsFile).toBeUndefined();
  });

  it('reads <STACK_DIR>/secrets/clients.env, resolving the CA file against it, and reloadConfig picks up secrets written later', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'invsync-cfg-'));
    try {
      const before = loadConfig({ STACK_DIR: dir });
      expect(before.kafka.sasl).toBeUndefined();
      fs.mkdirSync(path.join(dir, 'secrets'));
      fs.writeFileSync(path.join(dir, 'secrets', 'ca.pem'), 'not checked here');
      fs.writeFileSync(
        path.join(dir, STACK_CLIENT_SECRETS),
        ['# comment', ...Object.entries({ ...SECRETS, KAFKA_TLS_CA_FILE: 'ca.pem' }).map(([k, v]) => `${k}=${v}`), ''].join('\n'),
      );
      const after = reloadConfig(before);
      expect(after.kafka.tls).toEqual({ caFile: path.join(dir, 'secrets', 'ca.pem') });
      expect(after.pg.password).toBe('pg-secret');
      expect(after.stack.secretsFile).toBe(path.join(dir, STACK_CLIENT_SECRETS));
      expect(loadConfig({ STACK_DIR: dir }).redis.url).toContain('redis-secret');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses SASL without a user or password, a missing CA file, half the registry credentials', () => {
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain' }, noSecrets)).toThrow(/KAFKA_SASL_USERNAME must be set when KAFKA_SASL_MECHANISM is plain/);
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }, noSecrets)).toThrow(/KAFKA_SASL_PASSWORD/);
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi' }, noSecrets)).toThrow(/KAFKA_SASL_MECHANISM/);
    expect(() => loadConfig({ KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' }, noSecrets)).toThrow(/KAFKA_TLS_CA_FILE names a file that does not exist/);
    expect(() => loadConfig({ SCHEMA_REGISTRY_USERNAME: 'u' }, noSecrets)).toThrow(/SCHEMA_REGISTRY_PASSWORD/);
    expect(() => loadConfig({ REDIS_MAXMEMORY: 'lots' }, noSecrets)).toThrow(/REDIS_MAXMEMORY must be a size/);
    expect(loadConfig({ SCHEMA_REGISTRY_USERNAME: 'u', SCHEMA_REGISTRY_PASSWORD: 'p' }, noSecrets).registry.auth).toEqual({ username: 'u', password: 'p' });
  });
});

describe('redactUrl', () => {
  it('hides passwords and leaves URLs without one alone', () => {
    expect(redactUrl('postgres://invsync:s3cret@127.0.0.1:15432/inventory')).toBe('postgres://invsync:***@127.0.0.1:15432/inventory');
    expect(redactUrl('redis://:s3cret@h:1')).not.toContain('s3cret');
    expect(redactUrl('redis://127.0.0.1:16379')).toBe('redis://127.0.0.1:16379');
  });
});

describe('INVSYNC_ENV=production', () => {
  it('accepts a configuration with real keys, passwords, SASL over TLS and loopback binds', () => {
    const c = loadConfig(PRODUCTION, noSecrets);
    expect(c.env).toBe('production');
    expect(productionProblems(c, PRODUCTION)).toEqual([]);
  });

  it('lists one line per problem, each naming its variable', () => {
    const dev = loadConfig({ STACK: 'external', GATEWAY_HOST: '0.0.0.0', GATEWAY_API_KEYS: 'x:dev-wms-key:wms', KAFKA_BROKERS: 'kafka.internal:9092' }, noSecrets);
    const problems = productionProblems(dev, { PURCHASE_ALLOW_ANONYMOUS: '1' });
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'GATEWAY_API_KEYS',
      'PURCHASE_ALLOW_ANONYMOUS',
      'PG_URL',
      'REDIS_URL',
      'KAFKA_SASL_MECHANISM',
      'KAFKA_TLS',
      'GATEWAY_HOST',
    ]);
  });

  it('anonymous purchases: on by default in development, off by default in production, refused there when asked for', () => {
    expect(loadConfig({ ...PRODUCTION, INVSYNC_ENV: 'development' }, noSecrets).auth.allowAnonymous).toBe(true);
    expect(loadConfig(PRODUCTION, noSecrets).auth.allowAnonymous).toBe(false);
    expect(() => loadConfig({ ...PRODUCTION, PURCHASE_ALLOW_ANONYMOUS: '1' }, noSecrets)).toThrow(/PURCHASE_ALLOW_ANONYMOUS/);
  });

  it('refuses to load, naming every problem; development loads the same settings', () => {
    const env = { ...PRODUCTION, GATEWAY_API_KEYS: '', PG_URL: 'postgres://app@db.internal:5432/inventory', KAFKA_SASL_MECHANISM: 'none' };
    let error: unknown;
    try {
      loadConfig(env, noSecrets);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const lines = (error as Error).message.split('\n');
    expect(lines[0]).toBe('INVSYNC_ENV=production refuses to start (3 problems):');
    expect(lines.slice(1).map((l) => l.trim().split(':')[0])).toEqual(['GATEWAY_API_KEYS', 'PG_URL', 'KAFKA_SASL_MECHANISM']);
    expect((error as ConfigError).variable).toBe('GATEWAY_API_KEYS');
    expect(loadConfig({ ...env, INVSYNC_ENV: 'development' }, noSecrets).env).toBe('development');
  });

  it('accepts a public bind when a TLS proxy is declared in front, and the native stack secrets satisfy the password checks', () => {
    const c = loadConfig({ INVSYNC_ENV: 'production', GATEWAY_API_KEYS: 'a:0123456789ab:wms', GATEWAY_HOST: '0.0.0.0', GATEWAY_TLS_PROXY: '1' }, withSecrets);
    expect(productionProblems(c, {})).toEqual([]);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', 'kafka', '::']) expect(isLoopbackHost(h)).toBe(false);
  });
});

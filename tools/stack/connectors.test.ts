/** The connector JSON shared by the native stack and docker-compose, checked without I/O. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../lib/config.ts';
import { outboxTopic, TOPICS } from '../../lib/topics.ts';
import { loadConnectorSpecs, resolveSecretsDir, SECRETS_DIR_TOKEN } from './connectors.ts';
import type { StackSecrets } from './secrets.ts';
import { connectSecretProperties } from './stack.ts';

const specs = loadConnectorSpecs();
const byName = Object.fromEntries(specs.map((s) => [s.name, s.config]));
const cdc = byName['invsync-stock-cdc']!;
const outbox = byName['invsync-outbox']!;

describe('debezium connector configs', () => {
  const worker = fs.readFileSync(path.join(PROJECT_ROOT, 'debezium', 'connect-worker.properties'), 'utf8');
  const workerProps = worker.split('\n').filter((l) => l.trim() && !/^\s*[#!]/.test(l));

  it('every ${file:...} reference is to the secrets file and provided by the native stack', () => {
    const text = JSON.stringify(specs) + workerProps.join('\n');
    const refs = [...text.matchAll(/\$\{file:([^:}]*):([^}]*)\}/g)];
    const secrets = { dir: '/s', pgPassword: 'p', connectKafkaPassword: 'k', storePassword: 't', truststore: '/s/truststore.p12' } as StackSecrets;
    const provided = new Set(Object.keys(connectSecretProperties(loadConfig({}, { readSecrets: () => undefined }), secrets)));
    expect(refs.length).toBeGreaterThan(0);
    for (const [, file, key] of refs) {
      expect(file).toBe(`${SECRETS_DIR_TOKEN}/connect.properties`);
      expect(provided).toContain(key);
    }
  });

  it('names no password and no environment variable, and lets no connector override its clients', () => {
    expect(JSON.stringify(specs) + workerProps.join('\n')).not.toMatch(/\$\{env:/);
    expect(workerProps).toContain('connector.client.config.override.policy=None');
    expect(workerProps).toContain('config.providers=file');
    for (const spec of specs) {
      expect(spec.config['database.password']).toMatch(/^\$\{file:/);
      expect(Object.keys(spec.config).filter((k) => /^(producer|consumer|admin)\.override\./.test(k))).toEqual([]);
    }
  });

  it('replaces the secrets directory token, and refuses to register with it unresolved', () => {
    const cdc = specs.find((s) => s.name === 'invsync-stock-cdc')!;
    expect(resolveSecretsDir(cdc, '/x/secrets').config['database.password']).toBe('${file:/x/secrets/connect.properties:pg.password}');
    expect(() => resolveSecretsDir(cdc, undefined)).toThrow(/CONNECT_SECRETS_DIR/);
  });

  it('the CDC connector writes the topic the code reads', () => {
    expect(`${cdc['topic.prefix']}.public.stock_levels`).toBe(TOPICS.cdcStockLevels);
    expect(cdc['table.include.list']!.split(',')).toContain('public.stock_levels');
    expect(cdc['plugin.name']).toBe('pgoutput');
  });

  it('polls the change queue far more often than the 500 ms default: stock changes tightly, order events less so', () => {
    expect(Number(cdc['poll.interval.ms'])).toBeLessThanOrEqual(50);
    expect(Number(outbox['poll.interval.ms'])).toBeLessThanOrEqual(200);
  });

  it('routes outbox rows by aggregatetype to <type>.events, so orders -> orders.events', () => {
    expect(outbox['transforms.outbox.type']).toBe('io.debezium.transforms.outbox.EventRouter');
    const replacement = outbox['transforms.outbox.route.topic.replacement']!;
    expect(replacement.replace('${routedByValue}', 'orders')).toBe(TOPICS.ordersEvents);
    expect(outboxTopic('orders')).toBe(TOPICS.ordersEvents);
    expect(outbox['skipped.operations']).toContain('d');
  });

  it('each connector has its own replication slot and publication', () => {
    const slots = specs.map((s) => s.config['slot.name']);
    expect(new Set(slots).size).toBe(specs.length);
  });
});

describe('isTransientConnectReply', () => {
  it('retries a busy worker, not a broken config', async () => {
    const { isTransientConnectReply } = await import('./connectors.ts');
    expect(isTransientConnectReply(409, 'Cannot complete request momentarily due to stale configuration')).toBe(true);
    expect(isTransientConnectReply(500, 'Request timed out')).toBe(true);
    expect(isTransientConnectReply(503, '')).toBe(true);
    expect(isTransientConnectReply(500, 'Failed to find any class that implements Connector')).toBe(false);
    expect(isTransientConnectReply(400, 'Connector configuration is invalid')).toBe(false);
  });
});

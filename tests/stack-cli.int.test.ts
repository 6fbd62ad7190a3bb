/**
 * Bad input to the stack command: a bad variable, a port already taken, a download that fails,
 * a connector that cannot be registered. Each gives one clear message and a non-zero exit, and
 * changes nothing that was running.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { ConnectorError } from '../lib/errors.ts';
import { connectorStatuses, loadConnectorSpecs, registerConnectors } from '../tools/stack/connectors.ts';
import { freePort } from '../tools/stack/proc.ts';
import { connectSecretsDir, stackStatus } from '../tools/stack/stack.ts';
import { testConfig, unique } from './helpers.ts';

const config = testConfig();
const native = config.stack.mode === 'native';

function stackCli(args: string[], env: Record<string, string>) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'tools', 'stack', 'cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'invsync-test-'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

describe('stack command, bad input', () => {
  it('a malformed variable stops it with one line naming the variable (exit 2)', () => {
    const res = stackCli(['status'], { PG_URL: 'mysql://nope' });
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^error: invalid configuration: PG_URL must be a URL/);
  });

  it('an unknown command prints usage (exit 2)', () => {
    const res = stackCli(['explode'], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('usage: npm run stack -- up|down|status');
  });

  it.skipIf(!native)('a port held by another process is named, with the variable to change, and nothing is started', async () => {
    // A second stack directory on the same ports: the running stack is "someone else" to it.
    const dir = tempDir();
    try {
      const res = stackCli(['up'], { STACK_DIR: dir });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`port ${config.pg.port} \\(postgres\\) is already in use by a process this stack did not start; .* set PG_URL`));
      expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
      const down = stackCli(['down'], { STACK_DIR: dir });
      expect(down.code).toBe(0);
      expect((await stackStatus(config)).healthy).toBe(true); // the real stack was not touched
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!native)('a download that fails is named, with the URL, and exits non-zero', async () => {
    const dir = tempDir();
    try {
      // Ports of its own, free now: `up` checks that every port is free before it downloads anything.
      const [pg, redis, kafka, controller, connect, registry] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
      const res = stackCli(['up'], {
        STACK_DIR: path.join(dir, 'stack'),
        STACK_CACHE_DIR: path.join(dir, 'cache'),
        MAVEN_REPO_URL: 'http://127.0.0.1:9/maven2',
        PG_URL: `postgres://invsync@127.0.0.1:${pg}/inventory`,
        REDIS_URL: `redis://127.0.0.1:${redis}`,
        KAFKA_BROKERS: `127.0.0.1:${kafka}`,
        KAFKA_CONTROLLER_PORT: String(controller),
        CONNECT_URL: `http://127.0.0.1:${connect}`,
        SCHEMA_REGISTRY_URL: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/error: download of http:\/\/127\.0\.0\.1:9\/maven2\/io\/apicurio\/.* failed/);
      // Nothing half-downloaded is left marked as complete.
      const cached = fs.existsSync(path.join(dir, 'cache')) ? fs.readdirSync(path.join(dir, 'cache')) : [];
      expect(cached.filter((f) => f.startsWith('apicurio-registry-') && !f.endsWith('.part'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a connector Connect refuses is reported with Connect\'s reason, and not created', async () => {
    const name = unique('broken');
    await expect(
      registerConnectors(config.connect.url, [{ name, config: { 'connector.class': 'com.example.DoesNotExist', 'tasks.max': '1' } }]),
    ).rejects.toThrow(ConnectorError);
    await expect(
      registerConnectors(config.connect.url, [{ name, config: { 'connector.class': 'com.example.DoesNotExist' } }]),
    ).rejects.toThrow(new RegExp(`connector ${name} failed to register: .*DoesNotExist`));
    // A real connector class with a bad value is refused per field by Connect's validation.
    const cdc = loadConnectorSpecs().find((s) => s.name === 'invsync-stock-cdc')!;
    await expect(
      registerConnectors(config.connect.url, [{ name, config: { ...cdc.config, 'snapshot.mode': 'sometimes', 'slot.name': name.replaceAll('-', '_') } }], connectSecretsDir(config)),
    ).rejects.toThrow(/invalid config: snapshot.mode: /);
    const names = (await connectorStatuses(config.connect.url)).map((s) => s.name);
    expect(names).not.toContain(name);
  });
});
